//! Cost: what a request cost, from the usage the provider reported (or, for a stream cut before its usage, the
//! gateway's estimate, marked as such), at the prices of the published price table in force when it arrived, in
//! the provider's currency and in the reporting currency. Failed attempts cost nothing: only the answer's usage
//! is priced.

use std::sync::Arc;

use gateway_policy::prices::{PriceBook, Tokens};

use crate::log::{CostRecord, Usage};

/// The price table a request is priced with: the deciding policy's, else the built-in one.
#[derive(Clone)]
pub(super) struct Pricing {
    pub book: Arc<PriceBook>,
}

/// The cost of `usage` on `provider:model` for a request that arrived at `at_ms`; `None` when the table has no
/// price for that model then.
pub(super) fn price(
    pricing: &Pricing,
    reporting_currency: &str,
    (provider, model): (&str, &str),
    at_ms: i64,
    usage: &Usage,
    estimated: bool,
) -> Option<CostRecord> {
    let quote = pricing
        .book
        .quote(provider, model, at_ms, usage.prompt_tokens)?;
    let cost = quote.cost(Tokens {
        prompt: usage.prompt_tokens,
        cached: usage.cached_tokens.unwrap_or(0),
        cache_write: usage.cache_write_tokens.unwrap_or(0),
        completion: usage.completion_tokens,
        reasoning: usage.reasoning_tokens.unwrap_or(0),
        images: usage.images.unwrap_or(0),
        audio_ms: usage.audio_ms.unwrap_or(0),
        characters: usage.characters.unwrap_or(0),
    });
    let reporting = pricing
        .book
        .convert(cost.pico, &cost.currency, reporting_currency);
    let whole = |p: u128| u64::try_from(p).unwrap_or(u64::MAX);
    Some(CostRecord {
        pico: whole(cost.pico),
        currency: cost.currency,
        reporting_pico: reporting.map(whole),
        estimated,
        price_version: pricing.book.version().to_owned(),
    })
}

/// The bytes of text a translated chunk carries (its content, reasoning and tool-call arguments): what an
/// estimate of a cut stream's completion counts.
pub(super) fn text_bytes(chunk: &str) -> usize {
    let mut total = 0;
    for key in [
        "\"content\":\"",
        "\"reasoning_content\":\"",
        "\"arguments\":\"",
    ] {
        for (at, _) in chunk.match_indices(key) {
            let value = &chunk.as_bytes()[at + key.len()..];
            let mut i = 0;
            while i < value.len() && value[i] != b'"' {
                i += if value[i] == b'\\' { 2 } else { 1 };
            }
            total += i.min(value.len());
        }
    }
    total
}

/// The bytes of text a whole JSON answer carries (each choice's content, reasoning and tool-call arguments): what
/// an estimate of an answer without usage counts. Read only then, so the answer is parsed again only then.
pub(super) fn answer_text_bytes(body: &[u8]) -> usize {
    let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.len(),
        serde_json::Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str())
            .map(str::len)
            .sum(),
        _ => 0,
    };
    let mut total = 0;
    for choice in answer["choices"].as_array().into_iter().flatten() {
        let message = &choice["message"];
        total += text(&message["content"]) + text(&message["reasoning_content"]);
        for call in message["tool_calls"].as_array().into_iter().flatten() {
            total += text(&call["function"]["arguments"]);
        }
    }
    total
}

/// About four bytes of UTF-8 text per token (English words, and Chinese characters at three bytes each).
pub(super) fn tokens_of_bytes(bytes: usize) -> u64 {
    bytes.div_ceil(4) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_bytes_reads_the_strings_of_a_chunk() {
        let chunk = r#"{"choices":[{"delta":{"content":"Hi \"you\""}}]}"#;
        assert_eq!(text_bytes(chunk), 10);
        let tool =
            r#"{"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"{\"a\":1}"}}]}}]}"#;
        assert_eq!(text_bytes(tool), 9);
        assert_eq!(
            text_bytes(r#"{"choices":[{"delta":{"role":"assistant"}}]}"#),
            0
        );
    }

    #[test]
    fn answer_text_bytes_reads_every_choice_of_an_answer() {
        let answer =
            br#"{"choices": [{"message": {"content": "Hi \"you\"", "reasoning_content": "ok"}},
            {"message": {"content": [{"type": "text", "text": "abc"}],
                         "tool_calls": [{"function": {"arguments": "{\"a\":1}"}}]}}]}"#;
        // Decoded: `Hi "you"` (8), `ok` (2), `abc` (3), `{"a":1}` (7).
        assert_eq!(answer_text_bytes(answer), 20);
        assert_eq!(answer_text_bytes(br#"{"data": [{"embedding": [0.1]}]}"#), 0);
        assert_eq!(answer_text_bytes(b"not json"), 0);
    }
}
