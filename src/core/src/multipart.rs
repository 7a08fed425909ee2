//! `multipart/form-data` (RFC 7578), both ways: an audio upload read from a client, and the same sent on to a
//! provider that takes uploads (OpenAI, SiliconFlow). The body is already in memory (the host read it up to the
//! route's limit), so parts borrow from it.

/// One part of a form: its field name, and for a file its file name and content type.
#[derive(Debug, PartialEq, Eq)]
pub struct Part<'a> {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: &'a [u8],
}

/// Why a body is not a form this gateway can read (the message of a 400).
#[derive(Debug, PartialEq, Eq)]
pub struct FormError(pub String);

/// The boundary of a `multipart/form-data` content type (quoted or not).
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_owned())
            .filter(|b| !b.is_empty() && b.len() <= 200)
    })
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// The parts of a form body delimited by `boundary`.
pub fn parse<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, FormError> {
    let bad = |why: &str| FormError(format!("the multipart body {why}"));
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut at = find(body, delimiter, 0).ok_or_else(|| bad("has no part"))? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if body[at..].starts_with(b"--") {
            return Ok(parts);
        }
        // The delimiter line ends with CRLF (whitespace before it is allowed).
        let line_end = find(body, b"\r\n", at).ok_or_else(|| bad("ends inside a delimiter"))?;
        let headers_start = line_end + 2;
        let headers_end = find(body, b"\r\n\r\n", headers_start)
            .ok_or_else(|| bad("has a part without headers"))?;
        let head = std::str::from_utf8(&body[headers_start..headers_end])
            .map_err(|_| bad("has part headers that are not UTF-8"))?;
        let data_start = headers_end + 4;
        let mut next_delimiter = b"\r\n".to_vec();
        next_delimiter.extend_from_slice(delimiter);
        let data_end = find(body, &next_delimiter, data_start)
            .ok_or_else(|| bad("is not closed by its boundary"))?;
        let (mut name, mut filename, mut content_type) = (None, None, None);
        for line in head.split("\r\n") {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            if k.trim().eq_ignore_ascii_case("content-disposition") {
                for param in v.split(';').skip(1) {
                    if let Some((pk, pv)) = param.split_once('=') {
                        let pv = pv.trim().trim_matches('"').to_owned();
                        match pk.trim() {
                            "name" => name = Some(pv),
                            "filename" => filename = Some(pv),
                            _ => {}
                        }
                    }
                }
            } else if k.trim().eq_ignore_ascii_case("content-type") {
                content_type = Some(v.trim().to_owned());
            }
        }
        parts.push(Part {
            name: name.ok_or_else(|| bad("has a part without a name"))?,
            filename,
            content_type,
            data: &body[data_start..data_end],
        });
        at = data_end + next_delimiter.len();
        if at > body.len() {
            return Err(bad("is cut short"));
        }
    }
}

/// A form to send: text fields, then one file. Returns the content type (with its boundary) and the body.
pub fn encode(fields: &[(String, String)], file: (&str, &str, &str, &[u8])) -> (String, Vec<u8>) {
    let (field, filename, content_type, data) = file;
    // Fixed, and never in a field: the gateway writes every field itself.
    let boundary = "gateway-form-7d1f3c9a5e2b4806";
    let mut body = Vec::with_capacity(data.len() + 512);
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n{}\r\n",
                quoted(name),
                value
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: {}\r\n\r\n",
            quoted(field),
            quoted(filename),
            content_type
        )
        .as_bytes(),
    );
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// A name as a quoted parameter may hold it: no quotes, no line breaks.
fn quoted(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\r' && *c != '\n')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_round_trips_and_binary_data_is_kept_as_it_was() {
        let audio = b"RIFF\x00\r\n--not-the-boundary\r\n\xff\x00";
        let (ct, body) = encode(
            &[
                ("model".into(), "whisper-1".into()),
                ("language".into(), "zh".into()),
            ],
            ("file", "a \"b\".wav", "audio/wav", audio),
        );
        let b = boundary(&ct).unwrap();
        let parts = parse(&body, &b).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].data),
            ("model", &b"whisper-1"[..])
        );
        assert_eq!(parts[2].filename.as_deref(), Some("a b.wav"));
        assert_eq!(parts[2].content_type.as_deref(), Some("audio/wav"));
        assert_eq!(parts[2].data, audio);
    }

    #[test]
    fn boundaries_are_read_quoted_or_not_and_bad_forms_are_errors() {
        assert_eq!(
            boundary("multipart/form-data; boundary=\"abc\"").as_deref(),
            Some("abc")
        );
        assert_eq!(
            boundary("Multipart/Form-Data;boundary=x1").as_deref(),
            Some("x1")
        );
        assert_eq!(boundary("application/json"), None);
        assert!(parse(b"no parts here", "x").is_err());
        assert!(parse(
            b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated",
            "x"
        )
        .is_err());
        assert!(parse(b"--x\r\nContent-Type: text/plain\r\n\r\nv\r\n--x--", "x").is_err());
        let ok = parse(
            b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n--x--\r\n",
            "x",
        )
        .unwrap();
        assert_eq!(ok[0].data, b"v");
    }
}
