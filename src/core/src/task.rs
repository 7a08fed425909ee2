//! What a request asks for (`task`) and whether it holds code (`has_code`): word scores in English and Chinese,
//! no model. The instruction (the prompt up to its first colon or line break, when that comes early) weighs more
//! than the text it quotes, so "summarize this: <code>" is a summary, not code. Measured on tests/data/tasks.jsonl
//! (docs/policy-language.md, "Attributes").

/// The tasks a request can be, as the policy names them (in this order: `WORDS` follows it).
pub use gateway_policy::scheme::TASKS;

/// Words that point at each task (lower case; matched as substrings, so stems work: `summar`).
const WORDS: &[(&str, &[&str])] = &[
    (
        "code",
        &[
            "python",
            "java",
            "javascript",
            "typescript",
            "rust",
            "golang",
            " go ",
            "c++",
            "c#",
            "sql",
            "bash",
            "shell",
            "docker",
            "kubernetes",
            "yaml",
            "react",
            "vue",
            "css",
            "regex",
            "function",
            "函数",
            "代码",
            "code",
            "bug",
            "compile",
            "编译",
            "报错",
            "git ",
            "api",
            "http",
            "class",
            "thread",
            "线程",
            "进程",
            "async",
            "unit test",
            "单元测试",
            "算法",
            "implement",
            "实现",
            "linked list",
            "binary search",
            "排序",
            "sort",
            "pandas",
            "redis",
            "mysql",
            "spring",
            "node",
            "npm",
            "cargo",
            "github",
            "debug",
            "refactor",
            "review",
            "脚本",
            "script",
            "爬虫",
            "正则",
            "数组",
            "dict",
            "指针",
            "pointer",
            "索引",
            "slow query",
            "慢查询",
            "lru",
            "二叉树",
            "deploy",
            "部署",
            "dockerfile",
            "html",
        ],
    ),
    (
        "math",
        &[
            "solve",
            "equation",
            "方程",
            "derivative",
            "导数",
            "integral",
            "integrate",
            "积分",
            "probability",
            "概率",
            "prime",
            "质数",
            "素数",
            "matrix",
            "矩阵",
            "eigen",
            "特征值",
            "limit",
            "极限",
            "sum of",
            "之和",
            "加到",
            "gcd",
            "公约数",
            "factorial",
            "阶乘",
            "sqrt",
            "开平方",
            "平方",
            "area",
            "面积",
            "perimeter",
            "周长",
            "percent",
            "%",
            "prove",
            "证明",
            "simplify",
            "化简",
            "average speed",
            "速度",
            "expected value",
            "期望",
            "standard deviation",
            "interest",
            "利率",
            "diagonal",
            "对角线",
            "minimum",
            "最小值",
            "log",
            "fraction",
            "分数",
            "乘以",
            "等于多少",
            "times",
            "多少种",
            "how many ways",
            "鸡兔",
        ],
    ),
    (
        "translation",
        &[
            "translate",
            "translation",
            "翻译",
            "译成",
            "how do you say",
            "how would you say",
            "怎么说",
            "用英语",
            "用日语",
            "用韩语",
            "in french",
            "into",
            "英译中",
            "中译英",
            "what does",
            "是什么意思",
        ],
    ),
    (
        "summarization",
        &[
            "summar",
            "tl;dr",
            "总结",
            "概括",
            "摘要",
            "key points",
            "要点",
            "takeaway",
            "condense",
            "压缩",
            "缩写",
            "boil this down",
            "recap",
            "回顾",
            "synopsis",
            "梗概",
            "abstract",
            "sum up",
            "in short",
            "简单来说",
            "shorten",
            "核心观点",
            "executive summary",
        ],
    ),
    (
        "extraction",
        &[
            "extract",
            "提取",
            "抽取",
            "pull out",
            "parse",
            "解析",
            "json",
            "find all",
            "找出",
            "list every",
            "列出",
            "identify",
            "classify",
            "判断",
            "schema",
            "key-value",
            "键值",
            "tag each",
            "标注",
            "return only",
            "只输出",
            "which companies",
            "哪些公司",
            "which amounts",
            "哪些金额",
            "structured",
            "结构化",
            "table of",
            "表格",
            "fill",
        ],
    ),
    (
        "creative",
        &[
            "poem",
            "诗",
            "story",
            "故事",
            "haiku",
            "绝句",
            "lyrics",
            "歌词",
            "novel",
            "小说",
            "limerick",
            "段子",
            "toast",
            "祝酒",
            "dialogue",
            "对话",
            "sonnet",
            "name",
            "名字",
            "slogan",
            "广告语",
            "description",
            "文案",
            "fairy tale",
            "童话",
            "describe",
            "描写",
            "letter",
            "信",
            "backstory",
            "背景故事",
            "rap",
            "说唱",
            "screenplay",
            "剧本",
            "speech",
            "演讲",
            "caption",
            "儿歌",
            "rhyme",
            "imagine",
            "想象",
            "fable",
            "寓言",
            "blog",
            "博客",
            "ad script",
            "广告词",
            "构思",
            "outline",
        ],
    ),
];

/// The instruction of a prompt: up to its first colon or line break when that comes within this many bytes.
const HEAD_BYTES: usize = 120;
const HEAD_WEIGHT: f32 = 3.0;
const TAIL_WEIGHT: f32 = 0.5;
const SYSTEM_WEIGHT: f32 = 1.0;
/// `chat` wins when nothing points elsewhere.
const CHAT_PRIOR: f32 = 0.3;

/// The request's task: from the last user turn (its instruction most), the system prompt, and whether it offers
/// tools or asks for JSON.
pub fn classify(prompt: &str, system: &str, json_mode: bool) -> &'static str {
    let mut scores = [0f32; 7];
    debug_assert_eq!(TASKS.len(), scores.len());
    scores[6] = CHAT_PRIOR;
    let cut = prompt
        .char_indices()
        .find(|(_, c)| matches!(c, ':' | '：' | '\n'))
        .map(|(i, _)| i)
        .filter(|i| *i < HEAD_BYTES);
    let (head, tail) = match cut {
        Some(i) => prompt.split_at(i),
        None => (prompt, ""),
    };
    add_words(&mut scores, head, HEAD_WEIGHT);
    add_words(&mut scores, tail, TAIL_WEIGHT);
    add_words(&mut scores, system, SYSTEM_WEIGHT);
    if has_code(prompt) {
        scores[0] += 2.0;
    }
    if has_arithmetic(head) {
        scores[1] += 1.5;
    }
    if json_mode {
        scores[4] += 1.0;
    }
    let mut best = 6;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
        }
    }
    TASKS[best]
}

fn add_words(scores: &mut [f32; 7], text: &str, weight: f32) {
    if text.is_empty() {
        return;
    }
    let lower = text.to_lowercase();
    for (i, (_, words)) in WORDS.iter().enumerate() {
        for w in *words {
            if lower.contains(w) {
                scores[i] += weight;
            }
        }
    }
}

/// The text holds code: a fenced block, or lines that read like code (a statement ending in `;`, `def`/`fn`
/// definitions, arrows, empty calls, `SELECT … FROM`).
pub fn has_code(text: &str) -> bool {
    if text.contains("```") {
        return true;
    }
    let lower = text.to_lowercase();
    if let Some(i) = lower.find("select ") {
        if lower[i..].contains(" from ") {
            return true;
        }
    }
    text.lines().any(|line| {
        let l = line.trim();
        l.starts_with("def ")
            || l.starts_with("fn ")
            || l.starts_with("for ") && l.ends_with(':')
            || l.contains("=>")
            || l.contains("()")
            || (l.ends_with(';') && l.contains(['(', '=', '{']))
            || l.starts_with('`') && l.ends_with('`') && l.len() > 2
            || l.contains(" { ") && l.contains('}')
    })
}

/// `17 * 23`, `x^2`, `3x + 7 = 22`: arithmetic in the instruction.
fn has_arithmetic(text: &str) -> bool {
    let b = text.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    (0..b.len()).any(|i| {
        let op = matches!(b[i], b'+' | b'-' | b'*' | b'/' | b'^' | b'=');
        let before = (i >= 1 && digit(i - 1)) || (i >= 2 && b[i - 1] == b' ' && digit(i - 2));
        let after = digit(i + 1) || (b.get(i + 1) == Some(&b' ') && digit(i + 2));
        op && before && after
    }) || text.contains("x^")
        || text.contains("x²")
        || text.contains('×')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_lists_follow_the_task_list() {
        for (i, (task, _)) in WORDS.iter().enumerate() {
            assert_eq!(TASKS[i], *task);
        }
        assert_eq!(TASKS.len(), WORDS.len() + 1);
        assert_eq!(TASKS[TASKS.len() - 1], "chat");
    }

    #[test]
    fn the_instruction_decides_over_what_it_quotes() {
        assert_eq!(
            classify("Summarize this: fn main() { println!(\"hi\"); }", "", false),
            "summarization"
        );
        assert_eq!(
            classify("用 Python 写一个判断素数的函数。", "", false),
            "code"
        );
        assert_eq!(
            classify("Translate 'Good morning' into French.", "", false),
            "translation"
        );
        assert_eq!(classify("Hi!", "", false), "chat");
        assert_eq!(classify("17 乘以 23 等于多少？", "", false), "math");
        assert!(has_code("Why?\n```python\nprint(1)\n```"));
        assert!(has_code("SELECT * FROM users WHERE id = 1"));
        assert!(!has_code("Write a Python function that reverses a string."));
    }

    /// The labelled set (tests/data/tasks.jsonl): accuracy on each split, the confusion matrix on `test`, and
    /// `has_code`'s precision and recall (run with `--nocapture` to see them; the docs quote them).
    #[test]
    fn measured_on_the_labelled_set() {
        let rows: Vec<serde_json::Value> = include_str!("../../../tests/data/tasks.jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut report = String::new();
        for split in ["dev", "test"] {
            let sub: Vec<&serde_json::Value> =
                rows.iter().filter(|r| r["split"] == split).collect();
            let mut confusion = vec![vec![0u32; TASKS.len()]; TASKS.len()];
            let mut right = 0;
            for r in &sub {
                let got = classify(r["prompt"].as_str().unwrap(), "", false);
                let want = r["task"].as_str().unwrap();
                let (w, g) = (
                    TASKS.iter().position(|t| *t == want).unwrap(),
                    TASKS.iter().position(|t| *t == got).unwrap(),
                );
                confusion[w][g] += 1;
                right += usize::from(w == g);
            }
            let accuracy = right as f64 / sub.len() as f64;
            report += &format!(
                "{split}: {right}/{} = {:.1}%\n",
                sub.len(),
                accuracy * 100.0
            );
            for (i, row) in confusion.iter().enumerate() {
                report += &format!("  {:>13} {:?}\n", TASKS[i], row);
            }
            if split == "test" {
                assert!(accuracy >= 0.90, "{report}");
            }
        }
        for split in ["dev", "test"] {
            let (mut tp, mut fp, mut fneg) = (0, 0, 0);
            for r in rows.iter().filter(|r| r["split"] == split) {
                match (
                    has_code(r["prompt"].as_str().unwrap()),
                    r["has_code"] == true,
                ) {
                    (true, true) => tp += 1,
                    (true, false) => fp += 1,
                    (false, true) => {
                        fneg += 1;
                        report += &format!("  has_code missed ({split}): {}\n", r["prompt"]);
                    }
                    _ => {}
                }
            }
            report += &format!(
                "has_code {split}: precision {tp}/{}, recall {tp}/{}\n",
                tp + fp,
                tp + fneg
            );
            // Tuned on `dev`: all of it is found there, and nothing is taken for code on either split.
            assert_eq!(fp, 0, "{report}");
            if split == "dev" {
                assert_eq!(fneg, 0, "{report}");
            }
        }
        println!("{report}");
    }
}
