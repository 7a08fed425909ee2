//! Incremental Server-Sent Events decoding (providers.md §0.1) over arbitrary byte chunks.
//!
//! Chunks may end anywhere: mid-line, between `\r` and `\n`, or inside a UTF-8 character. Lines end in
//! `\n`, `\r\n` or `\r`; a blank line dispatches the event; `:` lines are comments; several `data:` lines
//! are joined with `\n`; exactly one space after the colon is stripped.

/// The largest event (its lines so far) a decoder holds: a chat chunk is a few hundred bytes, a Gemini chunk with
/// an inline image a few MB. An upstream that sends more without ending the event is broken or hostile.
pub const MAX_EVENT_BYTES: usize = 8 << 20;

/// One dispatched event. Only the fields chat streams use are kept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct Decoder {
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` at the start of the next chunk belongs to that line end.
    after_cr: bool,
    data: Option<String>,
    event: Option<String>,
    /// An event grew past [`MAX_EVENT_BYTES`]: what was held is dropped and nothing more is decoded.
    too_large: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes and returns the events they complete.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        if self.too_large {
            return out;
        }
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = bytes.strip_prefix(b"\n") {
                bytes = rest;
            }
        }
        while let Some(pos) = bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&bytes[..pos]);
            let ended_in_cr = bytes[pos] == b'\r';
            bytes = &bytes[pos + 1..];
            if ended_in_cr {
                match bytes.first() {
                    Some(b'\n') => bytes = &bytes[1..],
                    None => self.after_cr = true,
                    Some(_) => {}
                }
            }
            let line = std::mem::take(&mut self.line);
            if let Some(event) = self.process_line(&line) {
                out.push(event);
            }
            if self.held() > MAX_EVENT_BYTES {
                return self.overflow(out);
            }
        }
        self.line.extend_from_slice(bytes);
        if self.held() > MAX_EVENT_BYTES {
            return self.overflow(out);
        }
        out
    }

    /// Whether an event grew past [`MAX_EVENT_BYTES`] (the stream cannot be decoded further).
    pub fn too_large(&self) -> bool {
        self.too_large
    }

    fn held(&self) -> usize {
        self.line.len() + self.data.as_ref().map_or(0, String::len)
    }

    fn overflow(&mut self, out: Vec<Event>) -> Vec<Event> {
        self.too_large = true;
        self.line = Vec::new();
        self.data = None;
        out
    }

    /// Bytes received after the last complete line (an unterminated tail at end of stream).
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty() || self.data.is_some()
    }

    fn process_line(&mut self, line: &[u8]) -> Option<Event> {
        if line.is_empty() {
            let data = self.data.take()?;
            return Some(Event {
                event: self.event.take(),
                data,
            });
        }
        if line[0] == b':' {
            return None;
        }
        let text = String::from_utf8_lossy(line);
        let (field, value) = match text.find(':') {
            Some(i) => {
                let v = &text[i + 1..];
                (&text[..i], v.strip_prefix(' ').unwrap_or(v))
            }
            None => (&text[..], ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

/// Encodes a data payload as one SSE event (`data: …\n\n`), one `data:` line per payload line.
/// Appends one event, `event: <name>` (when named) and its JSON as one `data:` line.
pub fn push_event(out: &mut Vec<u8>, name: Option<&str>, data: &serde_json::Value) {
    if let Some(name) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(name.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

pub fn encode_data(data: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 8);
    for line in data.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<String> {
        let mut d = Decoder::new();
        chunks
            .iter()
            .flat_map(|c| d.feed(c))
            .map(|e| e.data)
            .collect()
    }

    #[test]
    fn an_event_larger_than_the_limit_stops_the_decoder_and_frees_what_it_held() {
        let mut d = Decoder::new();
        assert_eq!(d.feed(b"data: ok\n\n").len(), 1);
        let chunk = vec![b'x'; 1 << 20];
        assert!(d.feed(b"data: ").is_empty());
        for _ in 0..8 {
            assert!(d.feed(&chunk).is_empty());
        }
        assert!(d.too_large());
        assert_eq!(d.held(), 0);
        assert!(d.feed(b"\n\ndata: later\n\n").is_empty());
        // Many lines of one event count too.
        let mut d = Decoder::new();
        let line = [b"data: ".as_slice(), &chunk, b"\n"].concat();
        for _ in 0..9 {
            d.feed(&line);
        }
        assert!(d.too_large());
    }

    #[test]
    fn lf_crlf_and_cr_line_ends_all_dispatch() {
        assert_eq!(
            decode_all(&[b"data: a\n\ndata: b\r\n\r\ndata: c\r\r"]),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn comments_and_unknown_fields_are_ignored() {
        let got = decode_all(&[
            b": keep-alive\n\n: OPENROUTER PROCESSING\n\nid: 7\nretry: 10\ndata: x\n\n",
        ]);
        assert_eq!(got, ["x"]);
    }

    #[test]
    fn multiple_data_lines_join_with_newline_and_one_space_is_stripped() {
        assert_eq!(decode_all(&[b"data:  two\ndata:none\n\n"]), [" two\nnone"]);
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        assert_eq!(
            decode_all(&[b"data: a\r", b"\n\r", b"\ndata: b\n\n"]),
            ["a", "b"]
        );
    }

    #[test]
    fn utf8_split_inside_a_character_survives() {
        let text = "data: 你好\n\n".as_bytes();
        for cut in 0..text.len() {
            assert_eq!(
                decode_all(&[&text[..cut], &text[cut..]]),
                ["你好"],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let stream: &[u8] = b": hi\r\ndata: {\"a\":1}\r\n\r\ndata: [DONE]\r\n\r\n";
        let whole = decode_all(&[stream]);
        assert_eq!(whole, ["{\"a\":1}", "[DONE]"]);
        for i in 0..stream.len() {
            for j in i..stream.len() {
                assert_eq!(
                    decode_all(&[&stream[..i], &stream[i..j], &stream[j..]]),
                    whole
                );
            }
        }
    }

    #[test]
    fn partial_tail_is_reported() {
        let mut d = Decoder::new();
        assert!(d.feed(b"data: {\"a\"").is_empty());
        assert!(d.has_partial());
        d.feed(b"}\n\n");
        assert!(!d.has_partial());
    }

    #[test]
    fn encode_round_trips() {
        let mut d = Decoder::new();
        let ev = d.feed(&encode_data("line1\nline2"));
        assert_eq!(ev[0].data, "line1\nline2");
    }
}
