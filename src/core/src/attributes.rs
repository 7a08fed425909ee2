//! Request attributes that need looking at the text: a token estimate and the language of the user's words.
//! Both are small and fast enough for every request in a Worker; their accuracy is measured in
//! `tests/attributes.rs` against OpenAI's o200k tokenizer and a labelled sample set.

/// Estimated o200k tokens of `text`: words of letters count by length, CJK characters one by one, digits in
/// groups of three, other symbols mostly one each.
pub fn estimate_tokens(text: &str) -> u64 {
    let mut tokens = 0.0f64;
    let mut word = 0usize; // letters in the current Latin/Cyrillic/… word
    let mut word_ascii = true;
    let mut digits = 0usize;
    let flush_word = |len: usize, ascii: bool, tokens: &mut f64| {
        if len > 0 {
            // Common short English words are one token, longer ones split every ~7 letters; words in other
            // alphabets (Cyrillic, accented Latin) split sooner.
            *tokens += if ascii {
                1.0 + (len.saturating_sub(5) as f64 / 7.0)
            } else {
                1.0 + (len.saturating_sub(3) as f64 / 4.5)
            };
        }
    };
    for c in text.chars() {
        let alpha = c.is_alphabetic() && !is_cjk(c);
        if !alpha {
            flush_word(word, word_ascii, &mut tokens);
            word = 0;
            word_ascii = true;
        }
        if !c.is_ascii_digit() && digits > 0 {
            tokens += digits.div_ceil(3) as f64;
            digits = 0;
        }
        if alpha {
            word += 1;
            word_ascii &= c.is_ascii();
        } else if c.is_ascii_digit() {
            digits += 1;
        } else if is_cjk(c) {
            tokens += cjk_weight(c);
        } else if c.is_whitespace() {
            // Spaces mostly merge into the next word; newlines and indentation cost a little.
            if c == '\n' {
                tokens += 0.5;
            }
        } else if c.is_ascii_punctuation() {
            tokens += 0.55;
        } else {
            tokens += 1.0; // emoji, CJK punctuation and other symbols
        }
    }
    flush_word(word, word_ascii, &mut tokens);
    tokens += digits.div_ceil(3) as f64;
    tokens.round() as u64
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x2FFFF) // CJK extensions B…
}

/// o200k merges frequent Chinese characters in pairs; kana and Hangul split a little more.
fn cjk_weight(c: char) -> f64 {
    match c as u32 {
        0x3040..=0x30FF => 0.62,
        0xAC00..=0xD7AF => 0.65,
        _ => 0.72,
    }
}

/// How much of a text `detect_language` reads.
const LANGUAGE_BYTES: usize = 4096;

/// The language of `text` as an ISO 639-1 code, or `und`. Scripts decide first (Hangul, kana, Han, Cyrillic,
/// Arabic, …); Latin-script text is told apart by its most common words.
pub fn detect_language(text: &str) -> &'static str {
    // The first 4 KiB tell the language as well as the whole text would, at a bounded cost.
    let mut end = text.len().min(LANGUAGE_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = &text[..end];
    let mut counts = [0usize; SCRIPTS];
    for c in text.chars() {
        if let Some(s) = script(c) {
            counts[s as usize] += 1;
        }
    }
    let n = |s: Script| counts[s as usize];
    // A CJK character carries about as much as a short word: weigh the CJK scripts together against letters,
    // so Chinese or Japanese with English terms or error messages in it stays Chinese or Japanese.
    let cjk = (n(Script::Han) + n(Script::Kana) + n(Script::Hangul)) * 3;
    let cjk_language = || {
        if n(Script::Hangul) > n(Script::Han) + n(Script::Kana) {
            "ko"
        } else if n(Script::Kana) > 0 && n(Script::Kana) * 10 >= n(Script::Han) {
            "ja"
        } else {
            "zh"
        }
    };
    let other = ALL_SCRIPTS
        .iter()
        .copied()
        .filter(|s| {
            !matches!(
                s,
                Script::Han | Script::Kana | Script::Hangul | Script::Latin
            )
        })
        .max_by_key(|s| n(*s));
    let other_count = other.map_or(0, n);
    if cjk > 0 && cjk >= n(Script::Latin) && cjk >= other_count {
        return cjk_language();
    }
    if other_count > n(Script::Latin) {
        return match other {
            Some(Script::Cyrillic) if text.chars().any(|c| matches!(c, 'і' | 'ї' | 'є' | 'ґ')) => {
                "uk"
            }
            Some(Script::Cyrillic) => "ru",
            Some(Script::Arabic) => "ar",
            Some(Script::Devanagari) => "hi",
            Some(Script::Thai) => "th",
            Some(Script::Greek) => "el",
            Some(Script::Hebrew) => "he",
            _ => "und",
        };
    }
    if n(Script::Latin) == 0 {
        return "und";
    }
    match latin_language(text) {
        Some(lang) => lang,
        // Latin letters without a single function word (code, names, keywords) next to CJK text: the CJK decides.
        None if cjk > 0 => cjk_language(),
        None if text.is_ascii() => "en",
        None => "und",
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Han,
    Kana,
    Hangul,
    Cyrillic,
    Arabic,
    Devanagari,
    Thai,
    Greek,
    Hebrew,
}

const SCRIPTS: usize = 10;
const ALL_SCRIPTS: [Script; SCRIPTS] = [
    Script::Latin,
    Script::Han,
    Script::Kana,
    Script::Hangul,
    Script::Cyrillic,
    Script::Arabic,
    Script::Devanagari,
    Script::Thai,
    Script::Greek,
    Script::Hebrew,
];

fn script(c: char) -> Option<Script> {
    Some(match c as u32 {
        0x41..=0x5A | 0x61..=0x7A | 0xC0..=0x24F => Script::Latin,
        0x3040..=0x30FF | 0x31F0..=0x31FF => Script::Kana,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF => Script::Han,
        0xAC00..=0xD7AF | 0x1100..=0x11FF | 0x3130..=0x318F => Script::Hangul,
        0x400..=0x4FF => Script::Cyrillic,
        0x600..=0x6FF => Script::Arabic,
        0x900..=0x97F => Script::Devanagari,
        0xE00..=0xE7F => Script::Thai,
        0x370..=0x3FF => Script::Greek,
        0x590..=0x5FF => Script::Hebrew,
        _ => return None,
    })
}

/// Frequent function words per Latin-script language.
const STOPWORDS: &[(&str, &[&str])] = &[
    (
        "en",
        &[
            "the", "and", "is", "are", "of", "to", "in", "it", "you", "that", "this", "what",
            "how", "with", "for", "can", "please", "my", "me", "i", "a", "an", "do", "does",
            "write", "explain", "why", "be", "on", "at", "your",
        ],
    ),
    (
        "fr",
        &[
            "le", "la", "les", "de", "des", "et", "est", "une", "un", "que", "qui", "pour", "dans",
            "pas", "vous", "je", "ce", "sur", "avec", "du", "au", "comment", "pourquoi", "quel",
            "quelle", "merci", "mon", "ma",
        ],
    ),
    (
        "de",
        &[
            "der", "die", "das", "und", "ist", "nicht", "ein", "eine", "ich", "sie", "mit", "zu",
            "den", "von", "für", "wie", "was", "warum", "bitte", "auf", "auch", "es", "mein",
            "meinen", "dem", "im", "du", "mir", "bei", "kannst", "kann",
        ],
    ),
    (
        "es",
        &[
            "el", "la", "los", "las", "de", "que", "y", "es", "en", "un", "una", "por", "para",
            "con", "no", "como", "qué", "cómo", "por qué", "mi", "lo", "se", "del", "al", "puedes",
            "gracias", "está",
        ],
    ),
    (
        "it",
        &[
            "il", "lo", "gli", "di", "che", "e", "è", "un", "una", "per", "non", "con", "come",
            "perché", "mi", "sono", "della", "del", "questo", "grazie", "puoi", "cosa",
        ],
    ),
    (
        "pt",
        &[
            "o", "os", "as", "de", "que", "e", "é", "um", "uma", "para", "com", "não", "como",
            "por", "do", "da", "em", "você", "obrigado", "meu", "minha", "isso",
        ],
    ),
    (
        "nl",
        &[
            "de", "het", "een", "en", "is", "van", "dat", "niet", "ik", "je", "met", "voor", "wat",
            "hoe", "waarom", "op", "zijn", "dit", "mijn",
        ],
    ),
];

/// The Latin-script language whose function words the text uses most; `None` if it uses none.
fn latin_language(text: &str) -> Option<&'static str> {
    // Char by char: `str::to_lowercase` adds 4 KB of code to the Worker for the Greek final sigma, which no
    // stop word has.
    let lower: String = text.chars().flat_map(char::to_lowercase).collect();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphabetic())
        .filter(|w| !w.is_empty())
        .collect();
    let mut hits = [0usize; STOPWORDS.len()];
    for w in words {
        if let Some(langs) = stopword_languages().get(w) {
            for (i, h) in hits.iter_mut().enumerate() {
                *h += usize::from(langs & (1 << i) != 0);
            }
        }
    }
    let mut best = (None, 0usize);
    for (i, (lang, _)) in STOPWORDS.iter().enumerate() {
        if hits[i] > best.1 {
            best = (Some(*lang), hits[i]);
        }
    }
    best.0
}

/// Each stop word with the languages (bits, in `STOPWORDS` order) that have it: one lookup per word.
fn stopword_languages() -> &'static crate::fixed_map::FixedMap<&'static str, u32> {
    static MAP: std::sync::OnceLock<crate::fixed_map::FixedMap<&'static str, u32>> =
        std::sync::OnceLock::new();
    MAP.get_or_init(|| {
        let mut map = crate::fixed_map::FixedMap::default();
        for (i, (_, words)) in STOPWORDS.iter().enumerate() {
            for w in *words {
                *map.entry(*w).or_insert(0) |= 1 << i;
            }
        }
        map
    })
}

/// What the policy needs to know about one request (design.md §5 attributes), from its body, headers and key.
pub struct RequestFacts<'a> {
    pub body: &'a serde_json::Map<String, serde_json::Value>,
    pub headers: &'a [(String, String)],
    pub key: Option<&'a crate::auth::KeyRecord>,
    pub endpoint: &'static str,
    /// The provider and model the client asked for (`""` provider when none).
    pub provider: &'a str,
    pub model: &'a str,
    pub now_ms: f64,
    /// A hash of the request id: `sample` and `split_sample` are stable per request.
    pub id_hash: u64,
    /// Compute `task` and `has_code` (the policy tests one of them); otherwise they stay `""` and false.
    pub classify: bool,
}

/// The text of a message's `content` (a string, or the text parts of an array).
fn text_of(m: &serde_json::Value) -> String {
    use serde_json::Value;
    match m.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// Estimated prompt tokens of a request body: its messages (each with a few tokens of framing), an embeddings
/// `input` (a string or an array of strings) and an image's `prompt`.
pub fn prompt_tokens(body: &serde_json::Map<String, serde_json::Value>) -> u64 {
    use serde_json::Value;
    let mut tokens = 0u64;
    for m in body
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        // Every message costs a few tokens of framing on top of its text.
        tokens = tokens.saturating_add(4 + estimate_tokens(&text_of(m)));
    }
    match body.get("input") {
        Some(Value::String(input)) => tokens = tokens.saturating_add(estimate_tokens(input)),
        Some(Value::Array(inputs)) => {
            for input in inputs.iter().filter_map(Value::as_str) {
                tokens = tokens.saturating_add(estimate_tokens(input));
            }
        }
        _ => {}
    }
    if let Some(Value::String(prompt)) = body.get("prompt") {
        tokens = tokens.saturating_add(estimate_tokens(prompt));
    }
    tokens
}

pub fn request_attrs(f: &RequestFacts<'_>) -> gateway_policy::Attrs {
    use serde_json::Value;
    let messages = f
        .body
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let tokens = prompt_tokens(f.body);
    let user_text = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(text_of)
        // An image request's prompt is what its user said.
        .or_else(|| {
            f.body
                .get("prompt")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let has_images = messages.iter().any(|m| {
        m.get("content")
            .and_then(Value::as_array)
            .is_some_and(|parts| {
                parts
                    .iter()
                    .any(|p| p.get("type").and_then(Value::as_str) == Some("image_url"))
            })
    });
    let header = |name: &str| {
        f.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mut tags: Vec<String> = f.key.map(|k| k.tags.clone()).unwrap_or_default();
    if let Some(h) = header("x-gateway-tags") {
        tags.extend(
            h.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        );
    }
    let meta = f
        .headers
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("x-gateway-meta-")
                .map(|name| (name.to_owned(), v.clone()))
        })
        .collect();
    let secs = (f.now_ms / 1000.0).max(0.0) as i64;
    let days = secs.div_euclid(86_400);
    const WEEKDAYS: [&str; 7] = ["thu", "fri", "sat", "sun", "mon", "tue", "wed"]; // 1970-01-01 was a Thursday
    let max_tokens = f
        .body
        .get("max_completion_tokens")
        .or_else(|| f.body.get("max_tokens"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let json_mode = matches!(
        f.body
            .get("response_format")
            .and_then(|r| r.get("type"))
            .and_then(Value::as_str),
        Some("json_object" | "json_schema")
    );
    let system: Vec<String> = messages
        .iter()
        .filter(|m| {
            matches!(
                m.get("role").and_then(Value::as_str),
                Some("system" | "developer")
            )
        })
        .map(text_of)
        .collect();
    let lang = detect_language(&user_text).to_owned();
    let (prompt, system) = (clip_text(user_text), clip_text(system.join("\n")));
    // Computed once: the `has_code` attribute and the classifier's evidence.
    let prompt_has_code = f.classify && crate::task::has_code(&prompt);
    gateway_policy::Attrs {
        reasoning: asks_for_reasoning(f.body),
        task: if f.classify {
            crate::task::classify(&crate::task::Asked {
                prompt: &prompt,
                system: &system,
                tools: &tools_text(f.body),
                json_mode,
                prompt_has_code,
            })
            .to_owned()
        } else {
            String::new()
        },
        has_code: prompt_has_code || f.classify && crate::task::has_code(&system),
        prompt,
        system,
        tokens: tokens as i64,
        max_tokens,
        // Unset: the providers sample at 1.
        temperature: f
            .body
            .get("temperature")
            .and_then(Value::as_f64)
            .unwrap_or(1.0),
        messages: messages.len() as i64,
        lang,
        model: f.model.to_owned(),
        provider: f.provider.to_owned(),
        endpoint: f.endpoint.to_owned(),
        stream: f
            .body
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        has_images,
        has_tools: f
            .body
            .get("tools")
            .and_then(Value::as_array)
            .is_some_and(|t| !t.is_empty()),
        json_mode,
        key: gateway_policy::scheme::KeyAttrs {
            id: f.key.map(|k| k.id.clone()).unwrap_or_default(),
            name: f.key.map(|k| k.name.clone()).unwrap_or_default(),
            team: f.key.and_then(|k| k.team.clone()).unwrap_or_default(),
            tier: f.key.and_then(|k| k.tier.clone()).unwrap_or_default(),
            ..Default::default()
        },
        team: Default::default(),
        tags,
        meta,
        time: gateway_policy::scheme::TimeAttrs {
            hour: secs.rem_euclid(86_400) / 3600,
            weekday: WEEKDAYS[days.rem_euclid(7) as usize].to_owned(),
        },
        now_ms: f.now_ms as i64,
        sample: ((f.id_hash & 0xffff_ffff) % 100) as i64,
        split_sample: ((f.id_hash >> 32) % 100) as i64,
        health: Default::default(),
    }
}

/// The names and descriptions of the functions a chat request offers as tools, for the classifier.
fn tools_text(body: &serde_json::Map<String, serde_json::Value>) -> String {
    use serde_json::Value;
    let functions = body
        .get("tools")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("function"));
    crate::task::tools_text(functions.flat_map(|f| {
        ["name", "description"]
            .into_iter()
            .filter_map(|k| f.get(k).and_then(Value::as_str))
    }))
}

/// How much of the prompt and system texts `contains` and `matches` read: the regex engine runs in time linear in
/// its input, so this bounds every pattern's time per request.
pub const MAX_PATTERN_TEXT: usize = 16 * 1024;

fn clip_text(mut s: String) -> String {
    if s.len() > MAX_PATTERN_TEXT {
        let mut end = MAX_PATTERN_TEXT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// The client asked for reasoning: `reasoning_effort` other than `none` (OpenAI, and the Gemini and Anthropic
/// connectors' input), a `thinking` object whose `type` is not `disabled` (DeepSeek, Anthropic), a `reasoning`
/// object with an effort (OpenRouter), or Gemini's thinking options passed through `extra_body`.
fn asks_for_reasoning(body: &serde_json::Map<String, serde_json::Value>) -> bool {
    use serde_json::Value;
    let effort = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|e| e != "none");
    effort(body.get("reasoning_effort"))
        || body
            .get("thinking")
            .and_then(|t| t.get("type"))
            .and_then(Value::as_str)
            .is_some_and(|t| t != "disabled")
        || effort(body.get("reasoning").and_then(|r| r.get("effort")))
        || body
            .get("reasoning")
            .and_then(|r| r.get("enabled"))
            .and_then(Value::as_bool)
            == Some(true)
        || body
            .get("google")
            .or_else(|| body.get("extra_body").and_then(|e| e.get("google")))
            .and_then(|g| g.get("thinking_config"))
            .and_then(|t| t.get("thinking_budget").or_else(|| t.get("thinking_level")))
            .is_some_and(|b| b.as_i64() != Some(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasoning_is_asked_in_each_providers_way() {
        let asks = |v: serde_json::Value| match v {
            serde_json::Value::Object(m) => asks_for_reasoning(&m),
            _ => unreachable!(),
        };
        assert!(asks(serde_json::json!({"reasoning_effort": "high"})));
        assert!(!asks(serde_json::json!({"reasoning_effort": "none"})));
        assert!(asks(serde_json::json!({"thinking": {"type": "enabled"}})));
        assert!(!asks(serde_json::json!({"thinking": {"type": "disabled"}})));
        assert!(asks(serde_json::json!({"reasoning": {"effort": "low"}})));
        assert!(asks(
            serde_json::json!({"google": {"thinking_config": {"thinking_budget": 1024}}})
        ));
        assert!(!asks(
            serde_json::json!({"google": {"thinking_config": {"thinking_budget": 0}}})
        ));
        assert!(!asks(serde_json::json!({"model": "m"})));
    }

    #[test]
    fn pattern_texts_are_the_last_user_turn_and_the_system_prompt_clipped() {
        let long = "é".repeat(MAX_PATTERN_TEXT);
        let body = serde_json::json!({"messages": [{"role": "system", "content": "You are SQL-bot."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in SQL."}]},
            {"role": "user", "content": "first"}, {"role": "assistant", "content": "ok"},
            {"role": "user", "content": long}]});
        let serde_json::Value::Object(body) = body else {
            unreachable!()
        };
        let a = request_attrs(&RequestFacts {
            body: &body,
            headers: &[],
            key: None,
            endpoint: "chat",
            provider: "",
            model: "m",
            now_ms: 0.0,
            id_hash: 0,
            classify: true,
        });
        assert_eq!(a.system, "You are SQL-bot.\nAnswer in SQL.");
        assert!(a.prompt.len() <= MAX_PATTERN_TEXT && a.prompt.len() > MAX_PATTERN_TEXT - 2);
        let logged = serde_json::to_string(&a).unwrap();
        assert!(
            !logged.contains("SQL-bot") && !logged.contains("\"prompt\""),
            "{logged}"
        );
    }

    #[test]
    fn scripts_decide_first() {
        assert_eq!(detect_language("你好，请用三句话介绍一下杭州"), "zh");
        assert_eq!(detect_language("今日はいい天気ですね"), "ja");
        assert_eq!(detect_language("안녕하세요, 반갑습니다"), "ko");
        assert_eq!(detect_language("Привет, как дела?"), "ru");
        assert_eq!(detect_language("Привіт, як справи? Дякую, і тобі"), "uk");
        assert_eq!(detect_language("1234 + 5678"), "und");
    }

    #[test]
    fn latin_languages_by_function_words() {
        assert_eq!(detect_language("What is the capital of France?"), "en");
        assert_eq!(
            detect_language("Quelle est la capitale de la France ?"),
            "fr"
        );
        assert_eq!(detect_language("Wie spät ist es und was machst du?"), "de");
        assert_eq!(detect_language("¿Cómo está el tiempo en Madrid?"), "es");
    }

    #[test]
    fn request_attributes_come_from_body_headers_and_key() {
        let body = serde_json::json!({"model": "gpt-4o-mini", "max_tokens": 300, "stream": true, "tools": [{"type": "function"}],
            "response_format": {"type": "json_object"},
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": [{"type": "text", "text": "这张图片里有什么？"}, {"type": "image_url", "image_url": {"url": "data:x"}}]}]});
        let serde_json::Value::Object(body) = body else {
            unreachable!()
        };
        let headers = vec![
            ("x-gateway-tags".to_owned(), "beta, eu".to_owned()),
            ("x-gateway-meta-app".to_owned(), "web".to_owned()),
        ];
        let key = crate::auth::KeyRecord {
            id: "key_1".into(),
            name: "n".into(),
            team: Some("research".into()),
            tier: None,
            tags: vec!["vip".into()],
            revoked: false,
            expires_at_ms: None,
            created_at_ms: 0,
            ..crate::auth::KeyRecord::default()
        };
        // 2026-11-28 07:30 UTC, a Saturday.
        let a = request_attrs(&RequestFacts {
            body: &body,
            headers: &headers,
            key: Some(&key),
            endpoint: "chat",
            provider: "openai",
            model: "gpt-4o-mini",
            now_ms: 1_795_851_000_000.0,
            id_hash: (42u64 << 32) | 7,
            classify: false,
        });
        assert_eq!(
            (
                a.lang.as_str(),
                a.has_images,
                a.has_tools,
                a.json_mode,
                a.stream
            ),
            ("zh", true, true, true, true)
        );
        assert_eq!(
            (a.max_tokens, a.messages, a.sample, a.split_sample),
            (300, 2, 7, 42)
        );
        assert_eq!(a.tags, ["vip", "beta", "eu"]);
        assert_eq!(a.temperature, 1.0, "unset: what providers sample at");
        assert_eq!(a.meta.get("app").map(String::as_str), Some("web"));
        assert_eq!(
            (a.key.team.as_str(), a.time.hour, a.time.weekday.as_str()),
            ("research", 7, "sat")
        );
        assert!(a.tokens > 10);
    }

    #[test]
    fn estimates_are_positive_and_grow_with_text() {
        assert_eq!(estimate_tokens(""), 0);
        assert!(estimate_tokens("hello") >= 1);
        assert!(estimate_tokens(&"hello world ".repeat(100)) > estimate_tokens("hello world"));
    }
}
