//! What a request asks for (`task`) and whether it holds code (`has_code`): word scores in English and Chinese,
//! no model. The instruction (the prompt up to its first colon or line break, when that comes early) weighs more
//! than the text it quotes, so "summarize this: <code>" is a summary, not code; words that name an operation on a
//! text (translate, summarise, extract, recommend) weigh more there than words that name a subject (Python, a
//! poem, an integral). Measured on tests/data/tasks.jsonl (docs/policy-language.md, "Attributes").

use std::sync::OnceLock;

use crate::fixed_map::FixedMap;

mod model;

/// The tasks a request can be, as the policy names them (in this order: `WORDS` follows it).
pub use gateway_policy::scheme::TASKS;

/// Words that point at each task, `|`-separated, lower case. An ASCII word matches whole words only, unless it
/// ends in `*` (a stem: `summar*` is "summary", "summarize"); a Chinese word matches anywhere. A word ending in
/// `!` names an operation on a text (translate, summarise, extract, recommend) rather than its subject (Python, a
/// poem, an integral): it weighs double in the instruction.
const WORDS: &[(&str, &str)] = &[
    (
        "code",
        "python|java|javascript|js|typescript|rust|golang|in go|用 go|go 语言|c|c++|c#|kotlin|swift|php|ruby|scala|\
         sql|bash|shell|powershell|docker|dockerfile|kubernetes|kubectl|k8s|nginx|yaml|react|vue|angular|flask|\
         django|spring|node|node.js|npm|pip|cargo|git|github|css|html|regex|regexp|function*|函数|代码|code|coding|\
         bug*|compil*|编译|报错|异常|exception|stack trace|api|apis|endpoint|接口|http|class|classes|thread*|线程|\
         进程|async|await|异步|unit test*|单元测试|测试用例|算法|implement*|实现|linked list|binary search|排序|\
         sort*|pandas|numpy|redis|mysql|postgres*|mongodb|数据库|database|debug*|refactor*|code review|脚本|\
         script*|爬虫|正则|数组|array*|dict*|指针|pointer*|索引|slow query|慢查询|lru|二叉树|deploy*|部署|ci|\
         pipeline|repo|repository|变量|variable*|编程|programming|程序|program|组件|component*|closure*|闭包|并发|\
         concurren*|websocket|数据类|data class|struct|enum|interface|命令|command|terminal|终端|segfault|\
         null pointer|syntax|语法|framework|框架|library|sdk|cli|test suite|tests|测试|patch|diff|commit|merge|\
         branch|接口文档|config*|配置",
    ),
    (
        "math",
        "solve|equation*|方程|derivative|differentiate|导数|求导|integral|integrate|积分|∫|probability|概率|\
         prime|质数|素数|matrix|matrices|矩阵|determinant|行列式|inverse|逆矩阵|eigen*|特征值|limit|lim|极限|\
         sum of|之和|加到|gcd|最大公约数|公约数|公倍数|least common multiple|lcm|factorial|阶乘|sqrt|√|开平方|\
         平方|square root|area|面积|volume|体积|perimeter|周长|percent|%|prove|proof|证明|simplify|化简|\
         average speed|速度|speed|km/h|expected value|期望|standard deviation|方差|interest|利率|复利|本金|\
         diagonal*|对角线|minimum|maximum|最小值|最大值|fraction*|分数|乘以|除以|等于多少|是多少|多少种|\
         how many ways|arrange*|排列|组合|鸡兔|divisible|整除|odd numbers|even numbers|奇数|偶数|数列|等差|等比|\
         公差|公比|inequality|不等式|ln|log|log2|log10|sin|cos|tan|圆柱|cylinder|radius|半径|triangle|三角形|相遇|\
         calculate|compute|计算|how much is|解方程|求解",
    ),
    (
        "translation",
        "translat*!|翻译!|翻成!|译成!|译文!|how do you say!|how would you say!|怎么说!|用英语!|用日语!|用韩语!|\
         用法语!|in french|in spanish|in german|in japanese|in korean|in italian|in chinese|in vietnamese|\
         in traditional chinese|into english!|into chinese!|into french!|into japanese!|into korean!|into german!|\
         into spanish!|english to!|chinese to!|to english!|to chinese!|英译中!|中译英!|render this in!|\
         put this into!|translator!",
    ),
    (
        "summarization",
        "summar*!|tl;dr!|tldr!|总结!|概括!|摘要!|key points!|main points!|要点!|takeaway*!|condense!|压缩!|缩写|\
         boil this down!|recap!|回顾|synopsis!|梗概!|abstract|sum up!|in short|简单来说|shorten!|核心观点!|\
         主要观点!|executive summary!|in one sentence|一句话|briefly!|简要!|归纳!|提炼!|主要说了!|说了什么!|\
         整理成!|结论|gist!|bullet points|主要内容!",
    ),
    (
        "extraction",
        "extract*!|提取!|抽取!|pull out!|pull every!|get all!|pick out!|parse!|解析!|json|find all!|找出!|\
         list every!|list the!|列出!|identify!|识别!|classify!|判断|schema|key-value|键值|tag each!|label the!|\
         标出!|标注!|return only|只输出|which companies|哪些公司|哪些日期!|哪些金额|所有金额!|structured|结构化|\
         table of|表格|fill|break this!|拆成!|fields|字段|entities|实体|人名!|地名!|机构名!|sentiment!|\
         正面还是负面!|what are the dates!|phone numbers|email address*|邮箱|手机号|订单号|as a json!|as json!|\
         json array|输出成 json!|json 数组|pull the!|list all!|成表格!|从文中!|填写!|order id|tracking number",
    ),
    (
        "creative",
        "poem*|诗|story|stories|故事|haiku|绝句|lyrics|歌词|song|novel|小说|limerick|段子|toast|祝酒|\
         dialogue|sonnet|names for|name for|a name|taglines|tagline|slogan*|广告语|起名|取名|个名字|几个名字|\
         product description|文案|fairy tale|童话|描写|backstory|背景故事|rap|说唱|screenplay|剧本|\
         speech|演讲|开场白|caption|儿歌|rhyme|imagine|想象|fable|寓言|blog post|博客|ad script|广告词|构思|\
         散文|essay|opening paragraph|sci-fi|微小说|诗意|宣传|write a letter|写一封|love letter|in the style of|\
         一段对话|段对话|想几个!|起几个!",
    ),
    (
        "chat",
        "recommend*!|推荐!|advice|建议|should i!|how are you|过得|你好|hello|hi|thanks|thank you|谢谢|weather|\
         天气|traffic|路况|堵不堵|book me|预订|reserve|帮我订|what time|时区|pack|带什么|better to|好还是|\
         为什么会|why do|why is the|有什么建议|怎么办|早上好|good morning",
    ),
];

/// The instruction of a prompt: up to its first colon or line break when that comes within this many bytes.
const HEAD_BYTES: usize = 120;
const HEAD_WEIGHT: f32 = 3.0;
const OPERATION_WEIGHT: f32 = 2.0;
const TAIL_WEIGHT: f32 = 0.5;
const SYSTEM_WEIGHT: f32 = 1.0;
const TOOLS_WEIGHT: f32 = 0.5;
/// `chat` wins when nothing points elsewhere.
const CHAT_PRIOR: f32 = 0.3;
/// How much of the quoted text, the system prompt and the tools the classifier reads: the time per request is
/// linear in it.
const READ_BYTES: usize = 4096;

struct Word {
    text: &'static str,
    task: usize,
    stem: bool,
    strong: bool,
    id: usize,
}

/// The words by their first character.
struct Lexicon {
    ascii: [Vec<Word>; 128],
    other: FixedMap<char, Vec<Word>>,
    count: usize,
}

impl Lexicon {
    fn words(&self, first: char) -> Option<&[Word]> {
        match self.ascii.get(first as usize) {
            Some(list) if list.is_empty() => None,
            Some(list) => Some(list),
            None => self.other.get(&first).map(Vec::as_slice),
        }
    }
}

/// The words by their first character, built once.
fn lexicon() -> &'static Lexicon {
    static LEXICON: OnceLock<Lexicon> = OnceLock::new();
    LEXICON.get_or_init(|| {
        let mut lexicon = Lexicon {
            ascii: std::array::from_fn(|_| Vec::new()),
            other: FixedMap::default(),
            count: 0,
        };
        let mut count = 0;
        for (task, (_, words)) in WORDS.iter().enumerate() {
            for w in words.split('|').map(str::trim).filter(|w| !w.is_empty()) {
                let (w, strong) = match w.strip_suffix('!') {
                    Some(w) => (w, true),
                    None => (w, false),
                };
                let (text, stem) = match w.strip_suffix('*') {
                    Some(w) => (w, true),
                    None => (w, false),
                };
                if let Some(first) = text.chars().next() {
                    let list = match lexicon.ascii.get_mut(first as usize) {
                        Some(list) => list,
                        None => lexicon.other.entry(first).or_default(),
                    };
                    list.push(Word {
                        text,
                        task,
                        stem,
                        strong,
                        id: count,
                    });
                    count += 1;
                }
            }
        }
        lexicon.count = count;
        lexicon
    })
}

/// The request's task: from the last user turn (its instruction most), the system prompt, the tools it offers
/// (their names and descriptions) and whether it asks for JSON. The word scores and the learned model's log
/// probabilities are added; the highest wins, `chat` on a tie.
pub fn classify(asked: &Asked<'_>) -> &'static str {
    let (head, tail) = split_head(asked.prompt);
    let words = scores(head, tail, asked);
    let context = format!("{}\n{}", clip(asked.system), clip(asked.tools));
    let learned = model::model().log_probs(&model::features(head, &context));
    let total: Vec<f32> = words
        .iter()
        .zip(learned)
        .map(|(w, l)| WORDS_WEIGHT * w + l)
        .collect();
    let mut best = 6;
    for (i, s) in total.iter().enumerate() {
        if *s > total[best] {
            best = i;
        }
    }
    TASKS[best]
}

/// What the classifier reads of a request.
pub struct Asked<'a> {
    /// The last user turn.
    pub prompt: &'a str,
    /// The system and developer messages.
    pub system: &'a str,
    /// The offered tools' names and descriptions ([`tools_text`]).
    pub tools: &'a str,
    /// `response_format` asks for JSON.
    pub json_mode: bool,
    /// [`has_code`] of the prompt, computed once for the `has_code` attribute too.
    pub prompt_has_code: bool,
}

/// How much a word score counts against the model's log probabilities.
const WORDS_WEIGHT: f32 = 3.0;

/// The instruction (up to the first colon or line break, when that comes early; else the first `READ_BYTES`) and
/// the text it quotes.
fn split_head(prompt: &str) -> (&str, &str) {
    let cut = prompt
        .char_indices()
        .find(|(_, c)| matches!(c, ':' | '：' | '\n'))
        .map(|(i, _)| i)
        .filter(|i| *i < HEAD_BYTES);
    match cut {
        Some(i) => prompt.split_at(i),
        None => prompt.split_at(floor_char(prompt, READ_BYTES)),
    }
}

/// Each task's word score for a request.
fn scores(head: &str, tail: &str, asked: &Asked<'_>) -> [f32; 7] {
    let mut scores = [0f32; 7];
    debug_assert_eq!(TASKS.len(), scores.len());
    scores[6] = CHAT_PRIOR;
    add_words(&mut scores, head, HEAD_WEIGHT, OPERATION_WEIGHT);
    add_words(&mut scores, clip(tail), TAIL_WEIGHT, 1.0);
    add_words(&mut scores, clip(asked.system), SYSTEM_WEIGHT, 1.0);
    add_words(&mut scores, clip(asked.tools), TOOLS_WEIGHT, 1.0);
    if asked.prompt_has_code {
        scores[0] += 2.0;
    }
    if has_arithmetic(head) {
        scores[1] += 1.5;
    }
    if asked.json_mode {
        scores[4] += 2.0;
    }
    scores
}

/// The words of the tools a request offers: their names (`run_tests` reads as "run tests") and descriptions, up to
/// `READ_BYTES`.
pub fn tools_text<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for part in parts {
        if out.len() >= READ_BYTES {
            break;
        }
        for c in part.chars() {
            out.push(if c == '_' || c == '-' { ' ' } else { c });
        }
        out.push('\n');
    }
    out
}

fn floor_char(s: &str, mut at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn clip(s: &str) -> &str {
    &s[..floor_char(s, READ_BYTES)]
}

/// Adds `weight` to a task for each of its words in `text` (once per word), `operation` times that for the words
/// that name an operation.
fn add_words(scores: &mut [f32; 7], text: &str, weight: f32, operation: f32) {
    if text.is_empty() {
        return;
    }
    let lexicon = lexicon();
    let count = &lexicon.count;
    let mut seen = vec![false; *count];
    let lower = text.to_lowercase();
    let mut prev_alnum = false;
    for (i, c) in lower.char_indices() {
        let word_start = !(c.is_ascii_alphanumeric() && prev_alnum);
        prev_alnum = c.is_ascii_alphanumeric();
        if !word_start {
            continue;
        }
        let Some(words) = lexicon.words(c) else {
            continue;
        };
        let rest = &lower[i..];
        for w in words {
            if !rest.starts_with(w.text) {
                continue;
            }
            let ends_word = w.stem
                || !w.text.ends_with(|c: char| c.is_ascii_alphanumeric())
                || !rest[w.text.len()..].starts_with(|c: char| c.is_ascii_alphanumeric());
            if !ends_word {
                continue;
            }
            if std::mem::replace(&mut seen[w.id], true) {
                continue;
            }
            scores[w.task] += if w.strong { weight * operation } else { weight };
        }
    }
}

/// The text holds code: a fenced block or an inline code span, an HTML tag, a regular expression, `SELECT … FROM`,
/// or lines that read like code (a statement ending in `;`, `def`/`fn` definitions, arrows, empty calls, an
/// assignment of a list, call or string).
pub fn has_code(text: &str) -> bool {
    let text = clip(text);
    if text.contains("```") || has_code_span(text) || has_html_tag(text) {
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
            || l.contains(" { ") && l.contains('}')
            || is_assignment(l)
            || is_regex(l)
    })
}

/// `` `…` `` within a line: Markdown's inline code.
fn has_code_span(text: &str) -> bool {
    text.lines().any(|line| {
        let mut parts = line.split('`');
        parts.next();
        let mut inside = parts.collect::<Vec<_>>();
        // An odd number of backticks leaves an unclosed span at the end.
        if inside.len() % 2 == 1 {
            inside.pop();
        }
        inside
            .iter()
            .step_by(2)
            .any(|span| !span.trim().is_empty() && span.len() <= 200)
    })
}

/// `<div …>`, `<img src=…>`, `</span>`: a tag HTML knows.
fn has_html_tag(text: &str) -> bool {
    const TAGS: &[&str] = &[
        "a", "b", "body", "br", "button", "div", "form", "h1", "h2", "h3", "head", "html", "i",
        "img", "input", "li", "ol", "p", "script", "section", "select", "span", "style", "table",
        "td", "template", "tr", "ul",
    ];
    text.match_indices('<').any(|(i, _)| {
        let rest = text[i + 1..].strip_prefix('/').unwrap_or(&text[i + 1..]);
        let name_len = rest
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(rest.len());
        TAGS.contains(&&rest[..name_len]) && rest[name_len..].starts_with([' ', '>', '/'])
    })
}

/// `name = [...]`, `x = f(y)`, `s = "…"`, `total = price * qty`: an identifier assigned something only code
/// writes.
fn is_assignment(line: &str) -> bool {
    let Some((lhs, rhs)) = line.split_once(" = ") else {
        return false;
    };
    let lhs_is_name = lhs
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && lhs
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'));
    let named = |w: &str| w.len() >= 3 && w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    // `total = price * qty`: names of several letters, not algebra's `y = 2x + 3`.
    let arithmetic_of_names = named(lhs)
        && rhs.contains(['+', '-', '*', '/'])
        && rhs
            .split(['+', '-', '*', '/', ' '])
            .filter(|w| !w.is_empty())
            .all(|w| named(w) || w.chars().all(|c| c.is_ascii_digit() || c == '.'));
    lhs_is_name && rhs.trim_start().starts_with(['[', '{', '"', '\''])
        || lhs_is_name && rhs.contains('(') && rhs.trim_end().ends_with(')')
        || arithmetic_of_names
}

/// `^\d{3}-\d{4}$`: a class escape with a quantifier or anchor beside it.
fn is_regex(line: &str) -> bool {
    let escape = ["\\d", "\\w", "\\s", "\\b", "\\D", "\\W", "\\S"]
        .iter()
        .any(|e| line.contains(e));
    escape && line.contains(['{', '+', '*', '^', '$', '['])
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
        || has_times(text)
        || text.contains("x²")
        || text.contains('×')
}

/// `17 times 23`.
fn has_times(text: &str) -> bool {
    text.match_indices(" times ").any(|(i, m)| {
        text[..i].ends_with(|c: char| c.is_ascii_digit())
            && text[i + m.len()..].starts_with(|c: char| c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_prompt(prompt: &str, _: &str, _: bool) -> &'static str {
        classify(&asked(prompt, "", "", false))
    }

    fn asked<'a>(prompt: &'a str, system: &'a str, tools: &'a str, json_mode: bool) -> Asked<'a> {
        Asked {
            prompt,
            system,
            tools,
            json_mode,
            prompt_has_code: has_code(prompt),
        }
    }

    /// A labelled row as the gateway would see it: its system prompt, its tools' names and descriptions, and
    /// whether it asks for JSON.
    fn classify_row(r: &serde_json::Value) -> &'static str {
        classify(&asked(
            r["prompt"].as_str().unwrap(),
            r["system"].as_str().unwrap_or(""),
            &row_tools(r),
            r["json_mode"] == true,
        ))
    }

    /// `model.tsv` is what training on the labelled set's `dev` split gives (`UPDATE_TASK_MODEL=1` rewrites it).
    #[test]
    fn the_model_file_is_trained_from_the_labelled_set() {
        let rows: Vec<(Vec<String>, usize)> = include_str!("../../../tests/data/tasks.jsonl")
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|r| r["split"] == "dev")
            .map(|r| {
                let (head, _) = split_head(r["prompt"].as_str().unwrap());
                let context = format!("{}\n{}", r["system"].as_str().unwrap_or(""), row_tools(&r));
                let task = TASKS.iter().position(|t| *t == r["task"]).unwrap();
                (model::features(head, &context), task)
            })
            .collect();
        let trained = model::train(&rows);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/task/model.tsv");
        if std::env::var_os("UPDATE_TASK_MODEL").is_some() {
            std::fs::write(path, &trained).unwrap();
        } else {
            assert!(
                trained == std::fs::read_to_string(path).unwrap(),
                "src/core/src/task/model.tsv is stale: run UPDATE_TASK_MODEL=1 cargo test -p gateway-core task::"
            );
        }
    }

    fn row_tools(r: &serde_json::Value) -> String {
        let tools: Vec<String> = r["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                format!(
                    "{} {}",
                    t["name"].as_str().unwrap(),
                    t["description"].as_str().unwrap()
                )
            })
            .collect();
        tools_text(tools.iter().map(String::as_str))
    }

    #[test]
    fn the_word_lists_follow_the_task_list() {
        for (i, (task, _)) in WORDS.iter().enumerate() {
            assert_eq!(TASKS[i], *task);
        }
        assert_eq!(TASKS.len(), WORDS.len());
        assert_eq!(TASKS[TASKS.len() - 1], "chat");
    }

    #[test]
    fn the_instruction_decides_over_what_it_quotes() {
        assert_eq!(
            classify_prompt("Summarize this: fn main() { println!(\"hi\"); }", "", false),
            "summarization"
        );
        assert_eq!(
            classify_prompt("用 Python 写一个判断素数的函数。", "", false),
            "code"
        );
        assert_eq!(
            classify_prompt("Translate 'Good morning' into French.", "", false),
            "translation"
        );
        assert_eq!(classify_prompt("Hi!", "", false), "chat");
        // A system prompt's grammar ("You are a … for …") is not evidence of code.
        assert_eq!(
            classify(&asked(
                "I want a refund",
                "You are a support agent for ACME-7731 internal systems.",
                "",
                false
            )),
            "chat"
        );
        assert_eq!(classify_prompt("17 乘以 23 等于多少？", "", false), "math");
        assert!(has_code("Why?\n```python\nprint(1)\n```"));
        assert!(has_code("SELECT * FROM users WHERE id = 1"));
        assert!(!has_code("Write a Python function that reverses a string."));
    }

    /// The labelled set (tests/data/tasks.jsonl; a row is `task`, `lang`, `split`, `batch`, `has_code`, `prompt`
    /// and, when the request has them, `system`, `tools` and `json_mode`): accuracy and the confusion matrix on each
    /// split, the held-out split by language and batch, and `has_code`'s precision and recall (run with
    /// `--nocapture` to see them and the misses; docs/policy-language.md quotes them). The floors sit just under
    /// what was measured, so that a change that loses accuracy fails here.
    #[test]
    fn measured_on_the_labelled_set() {
        let rows: Vec<serde_json::Value> = include_str!("../../../tests/data/tasks.jsonl")
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let mut report = String::new();
        let mut misses = String::new();
        for split in ["dev", "test"] {
            let sub: Vec<&serde_json::Value> =
                rows.iter().filter(|r| r["split"] == split).collect();
            let mut confusion = vec![vec![0u32; TASKS.len()]; TASKS.len()];
            let mut right = 0;
            for r in &sub {
                let got = classify_row(r);
                let want = r["task"].as_str().unwrap();
                let (w, g) = (
                    TASKS.iter().position(|t| *t == want).unwrap(),
                    TASKS.iter().position(|t| *t == got).unwrap(),
                );
                confusion[w][g] += 1;
                right += usize::from(w == g);
                if w != g {
                    misses += &format!("  {want} taken for {got} ({split}): {}\n", r["prompt"]);
                }
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
            if split == "dev" {
                assert!(accuracy >= 0.97, "{report}");
            }
            if split == "test" {
                for lang in ["en", "zh"] {
                    let l: Vec<_> = sub.iter().filter(|r| r["lang"] == lang).collect();
                    let right = l.iter().filter(|r| classify_row(r) == r["task"]).count();
                    report += &format!("  test {lang}: {right}/{}\n", l.len());
                }
                for batch in 1..=4 {
                    let b: Vec<_> = sub.iter().filter(|r| r["batch"] == batch).collect();
                    let right = b.iter().filter(|r| classify_row(r) == r["task"]).count();
                    report += &format!("  test batch {batch}: {right}/{}\n", b.len());
                }
                assert!(accuracy >= 0.85, "{report}");
            }
        }
        for split in ["dev", "test"] {
            let (mut tp, mut fp, mut fneg) = (0, 0, 0);
            for r in rows.iter().filter(|r| r["split"] == split) {
                match (
                    has_code(r["prompt"].as_str().unwrap())
                        || has_code(r["system"].as_str().unwrap_or("")),
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
        println!("{misses}{report}");
    }
}
