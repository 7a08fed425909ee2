//! Authentication: missing, unknown and revoked keys.

use super::*;

#[test]
fn missing_unknown_and_revoked_keys_get_401_with_an_openai_error() {
    for (key, message) in [
        (None, "missing API key"),
        (Some("gw-nope"), "incorrect API key provided"),
        (Some("gw-revoked"), "this API key has been revoked"),
    ] {
        let host = FakeHost::new(ok_json());
        let seen = run(&host, request("POST", "/v1/chat/completions", key, CHAT));
        assert_eq!(seen.status, 401);
        let err = &seen.json()["error"];
        assert!(err["message"].as_str().unwrap().contains(message), "{err}");
        assert_eq!(err["code"], "invalid_api_key");
        assert_eq!(seen.record.status, 401);
        assert!(
            host.sent.borrow().is_empty(),
            "nothing may reach the upstream"
        );
        assert!(seen.header("x-request-id").is_some());
    }
}
