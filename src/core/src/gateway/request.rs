//! Read the request: the body parsed once and validated into a typed call, or a 400 naming the field (413 when
//! it is over the limit).

use serde_json::{Map, Value};

use crate::error::{shown, ApiError, ErrorCode};
use crate::front::Front;
use crate::http::RequestBody;
use crate::providers::audio::{self, TranscriptFormat, Transcription, Upload};
pub(crate) use crate::providers::images::ImageFormat;
use crate::providers::Providers;

/// A validated API request.
pub(super) enum ApiCall {
    Chat(ChatRequest),
    Embeddings(EmbeddingsRequest),
    Images(ImagesRequest),
    Transcription(TranscriptionRequest),
    Speech(SpeechRequest),
}

pub(super) struct ChatRequest {
    /// The request as the gateway's chat request (translated from the client's API).
    pub body: Map<String, Value>,
    /// The API the client speaks, which its answer is translated back into.
    pub front: Front,
    /// As the client wrote it (trimmed).
    pub model: String,
    pub stream: bool,
    /// `stream_options.include_usage`: the client wants the usage chunk.
    pub include_usage: bool,
}

pub(super) struct EmbeddingsRequest {
    pub body: Map<String, Value>,
    pub model: String,
}

pub(super) struct ImagesRequest {
    pub body: Map<String, Value>,
    pub model: String,
    /// How many images (`n`, 1 when absent).
    pub n: u64,
    /// `response_format` when the client named one: `url` or `b64_json`.
    pub format: Option<ImageFormat>,
    /// `stream: true`: the images as `image_generation.completed` events.
    pub stream: bool,
}

pub(super) struct TranscriptionRequest {
    /// The form's text fields and what the file is (its name and size), never its bytes: what the policy and
    /// the archive see (transcriptions are not cached).
    pub body: Map<String, Value>,
    pub model: String,
    /// `stream=true`: the transcript as `transcript.text.delta` and `.done` events.
    pub stream: bool,
    pub call: Transcription,
}

pub(super) struct SpeechRequest {
    pub body: Map<String, Value>,
    pub model: String,
    /// Characters of `input`: what speech is priced by.
    pub characters: u64,
    /// `stream_format: "sse"`: the audio as `speech.audio.delta` and `.done` events.
    pub sse: bool,
}

impl ApiCall {
    pub(super) fn body(&self) -> &Map<String, Value> {
        match self {
            ApiCall::Chat(c) => &c.body,
            ApiCall::Embeddings(e) => &e.body,
            ApiCall::Images(i) => &i.body,
            ApiCall::Transcription(t) => &t.body,
            ApiCall::Speech(t) => &t.body,
        }
    }

    pub(super) fn model(&self) -> &str {
        match self {
            ApiCall::Chat(c) => &c.model,
            ApiCall::Embeddings(e) => &e.model,
            ApiCall::Images(i) => &i.model,
            ApiCall::Transcription(t) => &t.model,
            ApiCall::Speech(t) => &t.model,
        }
    }

    pub(super) fn stream(&self) -> bool {
        matches!(self, ApiCall::Chat(c) if c.stream)
    }

    /// The endpoint as policies name it.
    pub(super) fn endpoint(&self) -> &'static str {
        match self {
            ApiCall::Chat(c) => c.front.endpoint(),
            ApiCall::Embeddings(_) => "embeddings",
            ApiCall::Images(_) => "images",
            ApiCall::Transcription(_) => "transcriptions",
            ApiCall::Speech(_) => "speech",
        }
    }

    /// Whether the response cache may keep the answer: a JSON answer it can give again as it was (chat, whose
    /// streams it replays, embeddings, images not streamed); not audio or media events.
    pub(super) fn cacheable(&self) -> bool {
        match self {
            ApiCall::Chat(_) | ApiCall::Embeddings(_) => true,
            ApiCall::Images(i) => !i.stream,
            ApiCall::Transcription(_) | ApiCall::Speech(_) => false,
        }
    }

    /// The API the answer is given in.
    pub(super) fn front(&self) -> Front {
        match self {
            ApiCall::Chat(c) => c.front.clone(),
            ApiCall::Embeddings(_)
            | ApiCall::Images(_)
            | ApiCall::Transcription(_)
            | ApiCall::Speech(_) => Front::Chat,
        }
    }
}

/// `POST /v1/chat/completions`: `model`, a non-empty `messages` array, `stream` a boolean if present.
pub(super) fn chat(body: &RequestBody, limit: usize) -> Result<ApiCall, ApiError> {
    chat_of(json_body(body, limit)?, Front::Chat)
}

/// `POST /v1/messages`: an Anthropic Messages request, translated to a chat request.
pub(super) fn messages(body: &RequestBody, limit: usize) -> Result<ApiCall, ApiError> {
    let body = Front::messages_request(json_body(body, limit)?)?;
    chat_of(body, Front::Messages)
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": n}`, the gateway's estimate for the Messages request's
/// system, messages and tools (the same estimate its `tokens` attribute and limits use): whichever model answers,
/// it need not be Anthropic's, so no provider is asked. `max_tokens` is not needed here.
pub(super) fn count_tokens(body: &RequestBody, limit: usize) -> Result<super::Reply, ApiError> {
    let mut body = json_body(body, limit)?;
    body.entry("max_tokens").or_insert(Value::from(1));
    let chat = Front::messages_request(body)?;
    model_field(&chat)?;
    let tools = chat
        .get("tools")
        .map_or(0, |t| crate::attributes::estimate_tokens(&t.to_string()));
    let tokens = crate::attributes::prompt_tokens(&chat).saturating_add(tools);
    let answer = serde_json::json!({"input_tokens": tokens});
    Ok(super::Reply::local(
        serde_json::to_vec(&answer).unwrap_or_default(),
    ))
}

/// `POST /v1/responses`: a Responses API request (the stateless subset), translated to a chat request.
pub(super) fn responses(body: &RequestBody, limit: usize) -> Result<ApiCall, ApiError> {
    let (body, front) = Front::responses_request(json_body(body, limit)?)?;
    chat_of(body, front)
}

/// `/v1/responses/{id}` and what hangs off it: a stateless gateway has no stored responses.
pub(super) fn stored_response() -> ApiError {
    ApiError::not_found(
        "stored responses are not supported: this gateway stores no responses (answers carry `store: false`); \
         send the whole conversation in `input`",
    )
}

fn chat_of(body: Map<String, Value>, front: Front) -> Result<ApiCall, ApiError> {
    let model = model_field(&body)?;
    match body.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => {}
        Some(Value::Array(_)) => {
            return Err(invalid(
                "`messages` must contain at least one message",
                "messages",
            ))
        }
        Some(_) => return Err(invalid("`messages` must be an array", "messages")),
        None => return Err(invalid("`messages` is required", "messages")),
    }
    let stream = stream_field(&body)?;
    let include_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(ApiCall::Chat(ChatRequest {
        body,
        front,
        model,
        stream,
        include_usage,
    }))
}

/// `POST /v1/embeddings`: `model` and `input`.
pub(super) fn embeddings(body: &RequestBody, limit: usize) -> Result<ApiCall, ApiError> {
    let body = json_body(body, limit)?;
    let model = model_field(&body)?;
    if body.get("input").is_none_or(Value::is_null) {
        return Err(invalid("`input` is required", "input"));
    }
    Ok(ApiCall::Embeddings(EmbeddingsRequest { body, model }))
}

/// The most images one request may ask for (OpenAI's limit).
const MAX_IMAGES: u64 = 10;

/// `POST /v1/images/generations`: `model`, a non-empty `prompt`, `n` from 1 to 10, `response_format` `url` or
/// `b64_json`, `stream` a boolean.
pub(super) fn images(body: &RequestBody, limit: usize) -> Result<ApiCall, ApiError> {
    let body = json_body(body, limit)?;
    let model = model_field(&body)?;
    required_string(&body, "prompt")?;
    let n = match body.get("n") {
        None | Some(Value::Null) => 1,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=MAX_IMAGES) => n,
            _ => {
                return Err(invalid(
                    &format!("`n` must be a whole number from 1 to {MAX_IMAGES}"),
                    "n",
                ))
            }
        },
    };
    let format = match body.get("response_format") {
        None | Some(Value::Null) => None,
        Some(Value::String(f)) if f == "url" => Some(ImageFormat::Url),
        Some(Value::String(f)) if f == "b64_json" => Some(ImageFormat::B64Json),
        Some(_) => {
            return Err(invalid(
                "`response_format` must be `url` or `b64_json`",
                "response_format",
            ))
        }
    };
    let stream = stream_field(&body)?;
    if stream && format == Some(ImageFormat::Url) {
        return Err(invalid(
            "a streamed image comes as base64 (`image_generation.completed` events): leave `response_format` unset",
            "response_format",
        ));
    }
    Ok(ApiCall::Images(ImagesRequest {
        body,
        model,
        n,
        format,
        stream,
    }))
}

/// The text fields a transcription passes on (the rest of OpenAI's fields are dropped).
const TRANSCRIPTION_FIELDS: &[&str] = &["language", "prompt", "temperature"];

/// `POST /v1/audio/transcriptions`: a `multipart/form-data` upload with `file` and `model`, `response_format`
/// one of `json`, `text`, `verbose_json`, `srt`, `vtt`; the body within `MAX_AUDIO_BYTES` (413 otherwise).
pub(super) fn transcription(
    headers: &[(String, String)],
    body: &RequestBody,
    limit: usize,
) -> Result<ApiCall, ApiError> {
    let bytes = read_within(body, limit, audio_too_large)?;
    let boundary = crate::http::find_header(headers, "content-type")
        .and_then(crate::multipart::boundary)
        .ok_or_else(|| {
            ApiError::invalid_request(
                "a transcription is a multipart/form-data upload (`file` and `model`)",
            )
        })?;
    let parts =
        crate::multipart::parse(bytes, &boundary).map_err(|e| ApiError::invalid_request(e.0))?;
    let mut body = Map::new();
    let mut file = None;
    let mut fields = Vec::new();
    for part in parts {
        if part.name == "file" {
            let filename = part.filename.clone().unwrap_or_else(|| "audio".into());
            body.insert(
                "file".into(),
                serde_json::json!({"filename": shown(&filename), "bytes": part.data.len()}),
            );
            file = Some(Upload {
                filename,
                content_type: part
                    .content_type
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".into()),
                bytes: part.data.to_vec(),
            });
            continue;
        }
        let Ok(value) = std::str::from_utf8(part.data) else {
            return Err(invalid(
                &format!("`{}` must be text", shown(&part.name)),
                &part.name,
            ));
        };
        body.insert(part.name.clone(), Value::String(value.to_owned()));
        if TRANSCRIPTION_FIELDS.contains(&part.name.as_str()) {
            fields.push((part.name, value.to_owned()));
        }
    }
    let model = model_field(&body)?;
    let Some(file) = file.filter(|f| !f.bytes.is_empty()) else {
        return Err(invalid(
            "`file` is required: the audio to transcribe",
            "file",
        ));
    };
    let format = match body.get("response_format").and_then(Value::as_str) {
        None => TranscriptFormat::Json,
        Some(f) => TranscriptFormat::from_name(f).ok_or_else(|| {
            invalid(
                "`response_format` must be `json`, `text`, `verbose_json`, `srt` or `vtt`",
                "response_format",
            )
        })?,
    };
    let stream = body.get("stream").and_then(Value::as_str) == Some("true");
    if stream && format != TranscriptFormat::Json {
        return Err(invalid(
            "a streamed transcription is `transcript.text.*` events: leave `response_format` unset (json)",
            "response_format",
        ));
    }
    Ok(ApiCall::Transcription(TranscriptionRequest {
        body,
        model,
        stream,
        call: Transcription {
            file,
            format,
            fields,
        },
    }))
}

fn audio_too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::RequestTooLarge,
        format!("the audio upload is larger than the gateway's limit of {limit} bytes (MAX_AUDIO_BYTES)"),
    )
    .with_param("file")
}

/// OpenAI's limit on the text of one speech request.
const MAX_SPEECH_CHARACTERS: usize = 4096;

/// `POST /v1/audio/speech`: `model`, `input` (at most 4,096 characters), `voice`, `response_format` one of OpenAI's.
pub(super) fn speech(body: &RequestBody, limit: usize) -> Result<ApiCall, ApiError> {
    let body = json_body(body, limit)?;
    let model = model_field(&body)?;
    let input = required_string(&body, "input")?;
    let characters = input.chars().count();
    if characters > MAX_SPEECH_CHARACTERS {
        return Err(invalid(
            &format!("`input` is longer than {MAX_SPEECH_CHARACTERS} characters"),
            "input",
        ));
    }
    match body.get("voice") {
        Some(Value::String(v)) if !v.trim().is_empty() => {}
        Some(Value::Object(v)) if v.get("id").is_some_and(Value::is_string) => {}
        _ => return Err(invalid("`voice` is required", "voice")),
    }
    if let Some(f) = body.get("response_format").filter(|f| !f.is_null()) {
        if !f
            .as_str()
            .is_some_and(|f| audio::SPEECH_FORMATS.contains(&f))
        {
            return Err(invalid(
                "`response_format` must be `mp3`, `opus`, `aac`, `flac`, `wav` or `pcm`",
                "response_format",
            ));
        }
    }
    let sse = match body.get("stream_format").and_then(Value::as_str) {
        None | Some("audio") => false,
        Some("sse") => true,
        Some(_) => {
            return Err(invalid(
                "`stream_format` must be `audio` or `sse`",
                "stream_format",
            ))
        }
    };
    Ok(ApiCall::Speech(SpeechRequest {
        body,
        model,
        characters: characters as u64,
        sse,
    }))
}

/// `stream`: a boolean, false when absent.
fn stream_field(body: &Map<String, Value>) -> Result<bool, ApiError> {
    match body.get("stream") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid("`stream` must be a boolean", "stream")),
    }
}

fn invalid(message: &str, param: &str) -> ApiError {
    ApiError::invalid_request(message).with_param(param)
}

/// The body's bytes, within `limit` (`too_large(limit)` over it), or why the host could not read them.
fn read_within(
    body: &RequestBody,
    limit: usize,
    too_large: fn(usize) -> ApiError,
) -> Result<&[u8], ApiError> {
    match body {
        RequestBody::TooLarge => Err(too_large(limit)),
        RequestBody::TimedOut => Err(ApiError::new(
            ErrorCode::RequestTimeout,
            "the request body did not arrive in time",
        )),
        RequestBody::Bytes(b) if b.len() > limit => Err(too_large(limit)),
        RequestBody::Bytes(b) => Ok(b),
    }
}

pub(super) fn json_body(body: &RequestBody, limit: usize) -> Result<Map<String, Value>, ApiError> {
    let bytes = read_within(body, limit, ApiError::payload_too_large)?;
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ApiError::invalid_request(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(ApiError::invalid_request(format!(
            "the request body is not valid JSON: {e}"
        ))),
    }
}

/// Limits on the headers that become decision attributes (and so part of the log row).
const MAX_META_HEADERS: usize = 16;
const MAX_META_NAME_BYTES: usize = 64;
const MAX_META_VALUE_BYTES: usize = 256;
const MAX_TAGS_BYTES: usize = 1024;

/// `x-gateway-meta-*` and `x-gateway-tags` within their limits, or a 431 that says which.
pub(super) fn gateway_headers(headers: &[(String, String)]) -> Result<(), ApiError> {
    let too_large = |what: String| Err(ApiError::new(ErrorCode::HeadersTooLarge, what));
    let mut meta = 0;
    for (k, v) in headers {
        if let Some(name) = k.strip_prefix("x-gateway-meta-") {
            meta += 1;
            if meta > MAX_META_HEADERS {
                return too_large(format!(
                    "more than {MAX_META_HEADERS} x-gateway-meta-* headers"
                ));
            }
            if name.len() > MAX_META_NAME_BYTES || v.len() > MAX_META_VALUE_BYTES {
                return too_large(format!(
                    "an x-gateway-meta-* header over {MAX_META_NAME_BYTES} bytes of name or \
                     {MAX_META_VALUE_BYTES} bytes of value"
                ));
            }
        } else if k == "x-gateway-tags" && v.len() > MAX_TAGS_BYTES {
            return too_large(format!(
                "x-gateway-tags is longer than {MAX_TAGS_BYTES} bytes"
            ));
        }
    }
    Ok(())
}

/// The longest `model` accepted (OpenRouter's longest ids are under 100 bytes): a model name is echoed in
/// `x-gateway-model` and stored in the log row.
const MAX_MODEL_BYTES: usize = 256;

/// `model`, checked before any provider is called: it becomes a header and a log value, so it must be short
/// and free of control characters.
fn model_field(body: &Map<String, Value>) -> Result<String, ApiError> {
    let model = required_string(body, "model")?;
    if model.len() > MAX_MODEL_BYTES {
        return Err(invalid(
            &format!("`model` is longer than {MAX_MODEL_BYTES} bytes"),
            "model",
        ));
    }
    if model.chars().any(char::is_control) {
        return Err(invalid("`model` contains control characters", "model"));
    }
    Ok(model)
}

/// A `provider` string must name a provider the catalog declares, whether or not a policy then routes the
/// request.
pub(super) fn known_provider(call: &ApiCall, providers: &Providers) -> Result<(), ApiError> {
    match call.body().get("provider") {
        Some(Value::String(p)) if !providers.declared(p) => Err(invalid(
            &format!("unknown provider `{}`", shown(p)),
            "provider",
        )),
        _ => Ok(()),
    }
}

fn required_string(body: &Map<String, Value>, field: &str) -> Result<String, ApiError> {
    match body.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(invalid(&format!("`{field}` is required"), field))
        }
        Some(_) => Err(invalid(&format!("`{field}` must be a string"), field)),
    }
}
