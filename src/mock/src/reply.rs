//! What every dialect's answers share: deterministic reply words, token counts, SSE framing paced and shaped
//! by the plan, a tool call for requests that offer tools.

use crate::*;

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The words of the reply: deterministic, so tests can assert on them.
pub(crate) fn reply_words(body: &Value) -> Vec<String> {
    let last = body["messages"].as_array().and_then(|m| m.last());
    if let Some(m) = last.filter(|m| m["role"] == "tool") {
        let said = m["content"].as_str().unwrap_or("");
        return format!("The tool said: {said}")
            .split_inclusive(' ')
            .map(str::to_owned)
            .collect();
    }
    let last_user = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .map(|m| match &m["content"] {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        })
        .unwrap_or_default();
    let echo: String = last_user.chars().take(60).collect();
    let mut said = format!("This is the mock provider answering: {echo}");
    // What a test can check of images that reached the provider: how many came inline, and their bytes.
    let inline: Vec<usize> = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_array())
        .into_iter()
        .flatten()
        .filter_map(|p| p["image_url"]["url"].as_str()?.split_once(";base64,"))
        .map(|(_, data)| data.trim_end_matches('=').len() * 3 / 4)
        .collect();
    if !inline.is_empty() {
        let bytes: usize = inline.iter().sum();
        said.push_str(&format!(
            " [{} inline image(s), {bytes} bytes]",
            inline.len()
        ));
    }
    said.split_inclusive(' ').map(str::to_owned).collect()
}

pub(crate) fn prompt_tokens(body: &Value) -> u64 {
    let chars: usize = body["messages"]
        .as_array()
        .map(|m| m.iter().map(|m| m["content"].to_string().len() + 12).sum())
        .unwrap_or(0);
    (chars as u64).div_ceil(4)
}

/// The request's JSON body, once its key is checked; otherwise the error to send.
pub(crate) fn accept(
    state: &Mock,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, Box<Response>> {
    if let Some(r) = auth_failure(state, headers) {
        return Err(Box::new(r));
    }
    serde_json::from_slice::<Value>(body).map_err(|_| {
        Box::new(error_response(
            400,
            "We could not parse the JSON body of your request.",
            "invalid_request_error",
            None,
        ))
    })
}

/// A raw JSON response with a status (SiliconFlow's error bodies are not OpenAI-shaped, some are bare strings).
pub(crate) fn raw_json(status: u16, body: &Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body.clone())).into_response()
}

/// The assistant message that calls the request's first tool (OpenAI shape), when the request offers tools and
/// is not already answering a tool call.
pub(crate) fn tool_turn(body: &Value, id: &str) -> Option<Value> {
    let name = body["tools"][0]["function"]["name"].as_str()?;
    let answering = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| m["role"] == "tool");
    (!answering).then(|| {
        json!({"role": "assistant", "content": null, "tool_calls": [{"id": id, "type": "function",
            "function": {"name": name, "arguments": "{\"city\":\"Boston\"}"}}]})
    })
}

/// The events as SSE frames (after `prefix`, e.g. comments), ending in `[DONE]`, shaped by the plan's fault
/// and paced by its chunk delay.
pub(crate) fn sse_response(prefix: Vec<Bytes>, events: &[Value], plan: Plan) -> Response {
    let pre = prefix.len();
    let mut frames = prefix;
    frames.extend(events.iter().map(|e| Bytes::from(format!("data: {e}\n\n"))));
    let err = json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": null, "code": null}});
    let error_frame = Bytes::from(format!("data: {err}\n\n"));
    sse_frames(
        frames,
        (pre, Some(Bytes::from_static(b"data: [DONE]\n\n"))),
        error_frame,
        plan,
    )
}

/// Ready SSE frames (the first `pre` of them not counted by faults), then `done` if any; `error_frame` is what
/// `mock-error-mid` sends in the dialect's own shape.
pub(crate) fn sse_frames(
    frames: Vec<Bytes>,
    (pre, done): (usize, Option<Bytes>),
    error_frame: Bytes,
    plan: Plan,
) -> Response {
    // Faults count events after the prefix: `mock-stall-mid` sends a role and a content chunk on every route.
    let mut frames: Vec<Result<Bytes, std::io::Error>> = frames.into_iter().map(Ok).collect();
    frames.extend(done.map(Ok));
    let stall = Err(std::io::Error::other("stall"));
    match plan.fault {
        Fault::Stall => frames = vec![stall],
        Fault::StallMid => {
            frames.truncate(pre + 2);
            frames.push(stall);
        }
        Fault::Cut => {
            frames.truncate(pre + 3);
            frames.push(Err(std::io::Error::other("connection cut by mock")));
        }
        Fault::Eof => frames.truncate(pre + 3),
        Fault::ErrorMid => {
            frames.truncate(pre + 2);
            frames.push(Ok(error_frame));
        }
        Fault::HtmlFirst => {
            frames = vec![Ok(Bytes::from_static(
                b"data: <!DOCTYPE html><html><body>502 Bad Gateway</body></html>\n\n",
            ))];
        }
        Fault::GarbageMid => {
            frames.truncate(pre + 2);
            frames.push(Ok(Bytes::from_static(b"data: {\"choices\": [tru\n\n")));
            frames.push(Ok(Bytes::from_static(b"data: [DONE]\n\n")));
        }
        Fault::HugeLine => {
            frames.truncate(pre + 2);
            frames.push(Ok(Bytes::from_static(b"data: ")));
            let mib = Bytes::from(vec![b'x'; 1 << 20]);
            frames.extend((0..9).map(|_| Ok(mib.clone())));
            frames.push(Err(std::io::Error::other("stall")));
        }
        Fault::HugeStream => {
            let content = match frames.get(pre + 1) {
                Some(Ok(c)) => Some(c.clone()),
                _ => None,
            };
            if let Some(content) = content {
                let tail = frames.split_off(pre + 2);
                frames.extend((0..50_000).map(|_| Ok(content.clone())));
                frames.extend(tail);
            }
        }
        Fault::None | Fault::Status(_) | Fault::Redirect | Fault::EchoKey => {}
    }
    let delay = plan.chunk_delay_ms;
    let unfinished = crate::faults::Unfinished::new(&plan);
    let frames = stream::unfold(
        (frames.into_iter(), unfinished),
        |(mut rest, unfinished)| async move {
            match rest.next() {
                Some(frame) => Some((frame, (rest, unfinished))),
                None => {
                    unfinished.done();
                    None
                }
            }
        },
    );
    let body = frames.enumerate().then(move |(i, frame)| async move {
        if i > 0 {
            crate::faults::pace(delay).await;
        }
        match frame {
            Err(e) if e.to_string() == "stall" => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Err(e)
            }
            // Let what was sent reach the client before the connection drops.
            Err(e) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err(e)
            }
            other => other,
        }
    });
    Response::builder()
        .header("content-type", "text/event-stream; charset=utf-8")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Eight deterministic dimensions from the text (FNV-1a), so equal inputs embed equally.
pub(crate) fn fake_embedding(text: &str) -> Vec<f64> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    (0..8)
        .map(|i| {
            for b in text.bytes().chain([i as u8]) {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            ((h % 2000) as f64 / 1000.0) - 1.0
        })
        .collect()
}

/// The picture every mock image model draws: one teal pixel, a valid PNG (so a test can decode what came back).
pub(crate) const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xd0, 0xab, 0xbd, 0x0c,
    0x00, 0x02, 0x5b, 0x01, 0x7f, 0x47, 0x26, 0xcd, 0x2b, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e,
    0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Standard base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 to bytes (what Whisper's turbo model is sent).
pub(crate) fn unbase64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let bytes = text.trim_end_matches('=').as_bytes();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c)? << (18 - 6 * i);
        }
        let take = chunk.len().checked_sub(1)?;
        out.extend_from_slice(&n.to_be_bytes()[1..=take]);
    }
    Some(out)
}

/// An image request's prompt, or the 400 the provider would send without one.
pub(crate) fn image_prompt(body: &Value) -> Option<&str> {
    body["prompt"].as_str().filter(|p| !p.trim().is_empty())
}

/// A transcription upload as the mock reads it: the text fields, and the file's name and bytes.
pub(crate) struct Form {
    pub(crate) fields: std::collections::HashMap<String, String>,
    pub(crate) file: Option<(String, Vec<u8>)>,
}

pub(crate) async fn read_form(mut form: axum::extract::Multipart) -> Result<Form, String> {
    let mut out = Form {
        fields: Default::default(),
        file: None,
    };
    while let Some(field) = form.next_field().await.map_err(|e| e.to_string())? {
        let name = field.name().unwrap_or("").to_owned();
        if name == "file" {
            let filename = field.file_name().unwrap_or("audio").to_owned();
            let bytes = field.bytes().await.map_err(|e| e.to_string())?;
            out.file = Some((filename, bytes.to_vec()));
        } else {
            let text = field.text().await.map_err(|e| e.to_string())?;
            out.fields.insert(name, text);
        }
    }
    Ok(out)
}

/// What the mock hears in an audio file: deterministic, so tests can assert on it. The length is that of 16 kHz
/// 16-bit mono PCM (32,000 bytes a second); WAV's header is not read.
pub(crate) fn heard(bytes: &[u8]) -> (String, f64) {
    let seconds = (bytes.len() as f64 / 32_000.0 * 100.0).round() / 100.0;
    (
        format!("The mock heard {} bytes of audio.", bytes.len()),
        seconds,
    )
}

/// Two segments splitting what was heard in half, OpenAI-shaped.
pub(crate) fn heard_segments(text: &str, seconds: f64) -> Value {
    let (a, b) = text.split_at(text.find(" bytes").unwrap_or(text.len() / 2));
    json!([{"id": 0, "start": 0.0, "end": seconds / 2.0, "text": format!(" {a}")},
        {"id": 1, "start": seconds / 2.0, "end": seconds, "text": format!(" {}", b.trim_start())}])
}

/// The audio every mock voice speaks: an ID3 tag and the text, so a test can see what was said.
pub(crate) fn spoken(text: &str) -> Vec<u8> {
    let mut out = b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec();
    out.extend_from_slice(text.as_bytes());
    out
}
