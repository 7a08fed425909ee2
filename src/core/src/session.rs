//! Console sessions: the admin token exchanged for a cookie, so the browser never holds the token itself.
//!
//! `POST /admin/session {"token": …}` answers with `Set-Cookie: gw_session=<expiry>.<mac>` (HttpOnly,
//! SameSite=Strict, Path=/admin, Secure when the request came over TLS) and a CSRF token. The cookie is
//! stateless: `mac` is an HMAC-SHA256 of its expiry keyed by the admin token, so both hosts check it without a
//! store, and rotating `GATEWAY_ADMIN_TOKEN` ends every session. Writes made with the cookie must also carry
//! `x-csrf-token`, the HMAC of the cookie under another label: a page of another site can make the browser send
//! the cookie (SameSite=Strict already stops that in current browsers) but cannot read the token, and a custom
//! header cannot be sent across origins without a CORS preflight, which the gateway never grants.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::http::find_header;

/// The cookie's name.
pub const COOKIE: &str = "gw_session";
/// The header that carries the CSRF token on writes made with the cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts.
pub const SESSION_MS: i64 = 12 * 3_600_000;

/// A valid session: the cookie's value, its CSRF token and when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub cookie: String,
    pub csrf: String,
    pub expires_at_ms: i64,
}

fn mac(token: &str, label: &str, data: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    m.update(label.as_bytes());
    m.update(b"\0");
    m.update(data.as_bytes());
    m
}

fn hex_mac(token: &str, label: &str, data: &str) -> String {
    crate::auth::hex(&mac(token, label, data).finalize().into_bytes())
}

/// A new session from now.
pub fn issue(token: &str, now_ms: i64) -> Session {
    let expires = now_ms.saturating_add(SESSION_MS).to_string();
    let cookie = format!("{expires}.{}", hex_mac(token, "session", &expires));
    session(token, cookie, now_ms.saturating_add(SESSION_MS))
}

fn session(token: &str, cookie: String, expires_at_ms: i64) -> Session {
    Session {
        csrf: hex_mac(token, "csrf", &cookie),
        cookie,
        expires_at_ms,
    }
}

/// The session a cookie value stands for, if its MAC is right and it has not expired.
pub fn verify(token: &str, cookie: &str, now_ms: i64) -> Option<Session> {
    let (expires, tag) = cookie.split_once('.')?;
    let expires_at_ms: i64 = expires.parse().ok()?;
    if expires_at_ms <= now_ms || tag.len() != 64 {
        return None;
    }
    let tag = decode_hex(tag)?;
    // Constant-time comparison of the MAC.
    mac(token, "session", expires).verify_slice(&tag).ok()?;
    Some(session(token, cookie.to_owned(), expires_at_ms))
}

/// Whether `presented` is the session's CSRF token (compared in constant time, as MACs).
pub fn csrf_matches(token: &str, session: &Session, presented: &str) -> bool {
    decode_hex(presented)
        .is_some_and(|p| mac(token, "csrf", &session.cookie).verify_slice(&p).is_ok())
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The value of the session cookie among the request's `cookie` headers.
pub fn cookie_of(headers: &[(String, String)]) -> Option<&str> {
    headers
        .iter()
        .filter(|(name, _)| name == "cookie")
        .flat_map(|(_, v)| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

/// Whether the request reached the deployment over TLS (a proxy's `x-forwarded-proto`, Cloudflare's
/// `cf-visitor`): the cookie is then `Secure`.
pub fn over_tls(headers: &[(String, String)]) -> bool {
    find_header(headers, "x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"))
        || find_header(headers, "cf-visitor").is_some_and(|v| v.contains("\"https\""))
}

/// The `Set-Cookie` value for `session` (`None`: the cookie that ends it).
pub fn set_cookie(session: Option<&Session>, now_ms: i64, secure: bool) -> String {
    let (value, max_age) = match session {
        Some(s) => (s.cookie.as_str(), (s.expires_at_ms - now_ms).max(0) / 1000),
        None => ("", 0),
    };
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Max-Age={max_age}; Path=/admin; HttpOnly; SameSite=Strict{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "admin-token";

    #[test]
    fn a_session_is_valid_until_it_expires_and_only_for_its_token() {
        let s = issue(T, 1_000);
        assert_eq!(verify(T, &s.cookie, 2_000), Some(s.clone()));
        assert_eq!(verify(T, &s.cookie, 1_000 + SESSION_MS), None, "expired");
        assert_eq!(
            verify("another-token", &s.cookie, 2_000),
            None,
            "the token was rotated"
        );
        // A forged expiry does not carry the MAC with it.
        let (_, tag) = s.cookie.split_once('.').unwrap();
        assert_eq!(verify(T, &format!("{}.{tag}", i64::MAX), 2_000), None);
        for junk in [
            "",
            ".",
            "1.",
            "x.y",
            "99999999999999.zz",
            &s.cookie[..s.cookie.len() - 1],
        ] {
            assert_eq!(verify(T, junk, 2_000), None, "{junk:?}");
        }
    }

    #[test]
    fn the_csrf_token_belongs_to_its_session() {
        let (a, b) = (issue(T, 1_000), issue(T, 5_000));
        assert!(csrf_matches(T, &a, &a.csrf));
        assert!(
            !csrf_matches(T, &a, &b.csrf) && !csrf_matches(T, &a, "") && !csrf_matches(T, &a, "é")
        );
    }

    #[test]
    fn the_cookie_is_found_among_others_and_set_with_its_attributes() {
        let headers = vec![("cookie".to_owned(), "a=1; gw_session=v.w ; b=2".to_owned())];
        assert_eq!(cookie_of(&headers), Some("v.w"));
        assert_eq!(cookie_of(&[]), None);
        let s = issue(T, 0);
        let set = set_cookie(Some(&s), 0, true);
        assert!(set.starts_with(&format!(
            "gw_session={}; Max-Age=43200; Path=/admin; HttpOnly; SameSite=Strict",
            s.cookie
        )));
        assert!(set.ends_with("; Secure"));
        assert_eq!(
            set_cookie(None, 0, false),
            "gw_session=; Max-Age=0; Path=/admin; HttpOnly; SameSite=Strict"
        );
        assert!(over_tls(&[("x-forwarded-proto".into(), "https".into())]));
        assert!(over_tls(&[(
            "cf-visitor".into(),
            r#"{"scheme":"https"}"#.into()
        )]));
        assert!(!over_tls(&[]));
    }
}
