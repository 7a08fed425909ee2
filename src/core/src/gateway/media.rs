//! Media attempts: images, transcriptions and speech on one target. The connector builds the request and reads
//! the provider's whole answer (JSON, or a picture's or audio's bytes); the answer is given in OpenAI's shape
//! (`providers/images.rs`, `providers/audio.rs` render it), or, when the client asked to stream, as the API's
//! events made from it.

use serde_json::Value;

use super::request::{ImagesRequest, SpeechRequest, TranscriptionRequest};
use super::upstream::{json_answer, Answer, Failure, Limit, MAX_UPSTREAM_BODY};
use super::{Gateway, Reply};
use crate::error::ApiError;
use crate::log::Usage;
use crate::ports::{Host, UpstreamRequest};
use crate::providers::{audio, images, Media, ProviderConfig};

/// The content type of a media answer given as events (`stream: true`, `stream_format: "sse"`).
const EVENT_STREAM: &str = "text/event-stream; charset=utf-8";

/// Where and when an attempt goes: the target's provider and model, the deadline (Unix ms), the timeout it
/// came from (for the message) and the time in Unix seconds (for answers that carry none).
pub(super) struct On<'a> {
    pub p: &'a ProviderConfig,
    pub model: &'a str,
    pub deadline: f64,
    pub timeout_ms: u64,
    pub now_s: u64,
}

fn answered(reply: Reply, usage: Usage) -> Answer {
    Answer {
        reply,
        usage: Some(usage),
        first_token_at_ms: None,
    }
}

impl<H: Host> Gateway<H> {
    /// Images, as OpenAI's answer or `image_generation.completed` events.
    pub(super) async fn images_attempt(
        &self,
        i: &ImagesRequest,
        on: On<'_>,
    ) -> Result<Answer, Failure> {
        let (p, dialect) = (on.p, on.p.dialect);
        let req = dialect.images_request(p, i.body.clone(), on.model)?;
        let media = self.read_media(req, &on).await?;
        let answer = dialect.images_answer(p, media, on.now_s)?;
        let (answer, usage) = images::finish(answer, i.format);
        if !i.stream {
            let body = serde_json::to_vec(&answer).unwrap_or_default();
            return Ok(answered(Reply::Json(body), usage));
        }
        let events = images::as_events(&answer).ok_or_else(|| {
            ApiError::invalid_request(format!(
                "provider `{}` gives images as URLs only, which cannot be streamed: leave `stream` unset",
                p.name
            ))
            .with_param("stream")
        })?;
        Ok(answered(media_reply(events, EVENT_STREAM), usage))
    }

    /// A transcript in the format asked for, or as `transcript.text.*` events.
    pub(super) async fn transcription_attempt(
        &self,
        t: &TranscriptionRequest,
        on: On<'_>,
    ) -> Result<Answer, Failure> {
        let (p, dialect) = (on.p, on.p.dialect);
        let req = dialect.transcription_request(p, &t.call, on.model)?;
        let media = self.read_media(req, &on).await?;
        let transcript = dialect.transcription_answer(p, media)?;
        let (body, content_type, usage) = audio::render(&transcript, t.call.format);
        let reply = if t.stream {
            media_reply(audio::transcript_events(&transcript), EVENT_STREAM)
        } else {
            media_reply(body, content_type)
        };
        Ok(answered(reply, usage))
    }

    /// The audio's bytes, or `speech.audio.*` events.
    pub(super) async fn speech_attempt(
        &self,
        s: &SpeechRequest,
        on: On<'_>,
    ) -> Result<Answer, Failure> {
        let (p, dialect) = (on.p, on.p.dialect);
        let req = dialect.speech_request(p, s.body.clone(), on.model)?;
        let media = self.read_media(req, &on).await?;
        let format = s.body.get("response_format").and_then(Value::as_str);
        let (body, content_type) = dialect.speech_answer(p, media, format)?;
        let reply = if s.sse {
            media_reply(audio::speech_events(&body), EVENT_STREAM)
        } else {
            Reply::Media { body, content_type }
        };
        let usage = Usage {
            characters: Some(s.characters),
            ..Usage::default()
        };
        Ok(answered(reply, usage))
    }

    /// Sends a media request and reads its whole answer: JSON when it is JSON, else bytes with their content
    /// type (a picture, audio).
    async fn read_media(&self, req: UpstreamRequest, on: &On<'_>) -> Result<Media, Failure> {
        let (p, deadline, timeout_ms) = (on.p, on.deadline, on.timeout_ms);
        let resp = self.send(req, p, deadline, timeout_ms).await?;
        let content_type =
            crate::http::find_header(&resp.headers, "content-type").map(str::to_owned);
        let limit = Limit::Refuse(MAX_UPSTREAM_BODY);
        let bytes = self
            .read_body(resp.body, limit, deadline, timeout_ms, &p.name)
            .await?;
        Ok(Media::read(json_answer(bytes), content_type.as_deref()))
    }
}

fn media_reply(body: Vec<u8>, content_type: &str) -> Reply {
    Reply::Media {
        body,
        content_type: content_type.to_owned(),
    }
}
