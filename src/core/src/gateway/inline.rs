//! Inline images: for a provider that takes images only as `data:` URLs (Gemini, Workers AI), each image a client
//! gave by URL is fetched by the gateway and put in the request inline, within the attempt's deadline. What may be
//! fetched is `IMAGE_FETCH`'s: by default only `https` URLs on public addresses (`crate::net`: address literals
//! here, names that resolve to private addresses in the native host's resolver), no redirects (a 3xx is refused,
//! never followed), an `image/*` answer, at most `IMAGE_FETCH_MAX_BYTES`. A URL that cannot be fetched is the
//! client's to fix: a 400 naming the message part, not a reason to try another provider.

use serde_json::{Map, Value};

use super::Gateway;
use crate::config::ImageFetch;
use crate::error::{ApiError, ErrorCode};
use crate::ports::{Host, UpstreamRequest};

/// The longest an image download may take (within the attempt's own deadline).
const FETCH_TIMEOUT_MS: f64 = 10_000.0;

impl<H: Host> Gateway<H> {
    /// Replaces every `http(s)` image URL of the chat body's messages with a `data:` URL of its bytes.
    pub(super) async fn inline_images(
        &self,
        body: &mut Map<String, Value>,
        deadline: f64,
    ) -> Result<(), ApiError> {
        let Some(Value::Array(messages)) = body.get_mut("messages") else {
            return Ok(());
        };
        for (i, m) in messages.iter_mut().enumerate() {
            let Some(Value::Array(parts)) = m.get_mut("content") else {
                continue;
            };
            for (j, part) in parts.iter_mut().enumerate() {
                let Some(url) = part
                    .pointer_mut("/image_url/url")
                    .filter(|u| u.as_str().is_some_and(|u| u.starts_with("http")))
                else {
                    continue;
                };
                let param = format!("messages[{i}].content[{j}].image_url.url");
                let fetched = self
                    .fetch_image(url.as_str().unwrap_or(""), deadline)
                    .await
                    .map_err(|why| {
                        ApiError::invalid_request(format!(
                            "the image at `{param}` could not be fetched for a provider that takes images inline: {why}"
                        ))
                        .with_param(&param)
                    })?;
                *url = Value::String(fetched);
            }
        }
        Ok(())
    }

    /// One image as a `data:` URL, or why it cannot be fetched.
    async fn fetch_image(&self, url: &str, deadline: f64) -> Result<String, String> {
        match self.config.image_fetch {
            ImageFetch::Off => {
                return Err(
                    "this gateway does not fetch images (IMAGE_FETCH=off); send a data: URL".into(),
                )
            }
            ImageFetch::Public => {
                if let Some(why) = crate::net::refuse_url(url) {
                    return Err(format!("{why} (IMAGE_FETCH=public)"));
                }
            }
            ImageFetch::Any => {}
        }
        let request = UpstreamRequest {
            method: "GET",
            url: url.to_owned(),
            headers: vec![("accept".into(), "image/*".into())],
            body: Vec::new(),
        };
        let deadline = deadline.min(self.host.now_ms() + FETCH_TIMEOUT_MS);
        let sent = match self.config.image_fetch {
            ImageFetch::Any => self.within(deadline, self.host.send(request)).await,
            _ => self.within(deadline, self.host.send_public(request)).await,
        };
        let resp = match sent {
            None => return Err("it did not answer in time".into()),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(resp)) => resp,
        };
        if (300..400).contains(&resp.status) {
            return Err(format!(
                "it answered {} (redirects are not followed)",
                resp.status
            ));
        }
        if !(200..300).contains(&resp.status) {
            return Err(format!("it answered {}", resp.status));
        }
        let mime = crate::http::find_header(&resp.headers, "content-type")
            .map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .filter(|c| c.starts_with("image/"))
            .ok_or("it is not an image (its content type is not image/*)")?;
        let limit = self.config.image_fetch_max_bytes;
        let bytes = self
            .read_body(
                resp.body,
                super::upstream::Limit::Refuse(limit),
                deadline,
                0,
                "image",
            )
            .await
            .map_err(|e| match e.code {
                ErrorCode::UpstreamTimeout => "it did not arrive whole in time".to_owned(),
                _ if e.message.contains("larger than") => {
                    format!("it is larger than {limit} bytes (IMAGE_FETCH_MAX_BYTES)")
                }
                _ => "it was cut off".to_owned(),
            })?;
        Ok(format!(
            "data:{mime};base64,{}",
            crate::base64::encode(&bytes)
        ))
    }
}
