//! Image generation (`POST /v1/images/generations`, shared/providers-more.md §5.1): what every connector's
//! images answer becomes, OpenAI's `{created, data: [{b64_json | url}], usage?}`, and how it is counted.
//!
//! Providers give pictures as base64 (OpenAI's GPT image models, Gemini, Workers AI's flux), as raw bytes
//! (Workers AI's Stable Diffusion models), or as URLs (SiliconFlow, OpenAI's dall-e when asked). A client that
//! asks for `url` from a provider that only sends the picture gets it as a `data:` URL; one that asks for
//! `b64_json` from a provider that only sends URLs is refused before the call (the gateway does not fetch what a
//! provider links to).

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::log::Usage;

/// The `response_format` a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Url,
    B64Json,
}

/// The answer in the format the client asked for, how many images it holds and what they used (OpenAI's
/// `usage` of GPT image models: `input_tokens`, `output_tokens`).
pub fn finish(mut answer: Value, format: Option<ImageFormat>) -> (Value, Usage) {
    if format == Some(ImageFormat::Url) {
        for item in answer["data"].as_array_mut().into_iter().flatten() {
            if let Some(b64) = item.get("b64_json").and_then(Value::as_str) {
                let mime = item
                    .get("mime_type")
                    .and_then(Value::as_str)
                    .unwrap_or("image/png");
                let url = format!("data:{mime};base64,{b64}");
                if let Some(o) = item.as_object_mut() {
                    o.remove("b64_json");
                    o.insert("url".into(), json!(url));
                }
            }
        }
    }
    let images = answer["data"].as_array().map_or(0, Vec::len) as u64;
    let usage = Usage {
        images: Some(images),
        ..media_tokens(&answer["usage"])
    };
    (answer, usage)
}

/// The tokens of a media answer's `usage` (OpenAI's GPT image and transcribe models: `input_tokens`,
/// `output_tokens`); zero when it has none.
pub fn media_tokens(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let (prompt, completion) = (n("input_tokens"), n("output_tokens"));
    Usage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        total_tokens: prompt + completion,
        ..Usage::default()
    }
}

/// An images answer as the events of a streamed one (§5.1): one `image_generation.completed` per image, each
/// whole (the gateway does not relay partial images), the usage on the last. `None` when an image came as a URL
/// only (nothing to stream).
pub fn as_events(answer: &Value) -> Option<Vec<u8>> {
    let data = answer["data"].as_array()?;
    let mut out = Vec::new();
    for (i, item) in data.iter().enumerate() {
        let b64 = item.get("b64_json")?.as_str()?;
        let format = item
            .get("mime_type")
            .and_then(Value::as_str)
            .and_then(|m| m.strip_prefix("image/"))
            .unwrap_or("png");
        let mut event = json!({"type": "image_generation.completed", "b64_json": b64,
            "created_at": answer["created"], "output_format": format});
        if i + 1 == data.len() && answer["usage"].is_object() {
            event["usage"] = answer["usage"].clone();
        }
        crate::sse::push_event(&mut out, Some("image_generation.completed"), &event);
    }
    Some(out)
}

/// `{created, data: [{b64_json, mime_type?}…]}` from base64 pictures.
pub fn from_base64(pictures: Vec<(String, Option<String>)>, created: u64) -> Value {
    let data: Vec<Value> = pictures
        .into_iter()
        .map(|(b64, mime)| match mime {
            Some(m) => json!({"b64_json": b64, "mime_type": m}),
            None => json!({"b64_json": b64}),
        })
        .collect();
    json!({"created": created, "data": data})
}

/// One image per request only (the provider makes one per call).
pub fn one_image_only(provider: &str, n: Option<&Value>) -> Result<(), ApiError> {
    match n.and_then(Value::as_u64) {
        Some(n) if n > 1 => Err(ApiError::invalid_request(format!(
            "provider `{provider}` makes one image per request: `n` must be 1"
        ))
        .with_param("n")),
        _ => Ok(()),
    }
}

/// `size` as width and height (`1024x1536`); `None` for `auto` or none.
pub fn size(size: Option<&Value>) -> Option<(u64, u64)> {
    let (w, h) = size?.as_str()?.split_once('x')?;
    Some((w.parse().ok()?, h.parse().ok()?))
}

/// The content type a picture's first bytes say it is (PNG, JPEG, WebP), for raw bodies without one.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG") {
        Some("image/png")
    } else if bytes.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if bytes.len() > 11 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::Media;

    #[test]
    fn a_url_asked_for_comes_as_a_data_url_and_images_are_counted() {
        let answer = json!({"created": 1, "data": [{"b64_json": "iVBO", "mime_type": "image/png"}, {"b64_json": "/9j/"}],
            "usage": {"input_tokens": 17, "output_tokens": 1372, "total_tokens": 1389}});
        let (out, usage) = finish(answer, Some(ImageFormat::Url));
        assert_eq!(out["data"][0]["url"], "data:image/png;base64,iVBO");
        assert!(out["data"][0].get("b64_json").is_none());
        assert_eq!(
            (usage.images, usage.prompt_tokens, usage.completion_tokens),
            (Some(2), 17, 1372)
        );
        let (kept, _) = finish(json!({"data": [{"b64_json": "iVBO"}]}), None);
        assert_eq!(kept["data"][0]["b64_json"], "iVBO");
    }

    #[test]
    fn raw_pictures_are_told_from_json_and_sniffed() {
        assert!(matches!(
            Media::read(b"{\"data\":[]}".to_vec(), None),
            Media::Json(_)
        ));
        let png = b"\x89PNG\r\n\x1a\n....".to_vec();
        assert!(matches!(Media::read(png.clone(), None), Media::Raw { .. }));
        assert_eq!(sniff(&png), Some("image/png"));
        assert_eq!(size(Some(&json!("1024x1536"))), Some((1024, 1536)));
        assert_eq!(size(Some(&json!("auto"))), None);
    }
}
