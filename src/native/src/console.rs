//! The console at `/console/`, embedded in the binary at build time (build.rs; `scripts/build-console.sh` makes
//! the files). Served before the gateway's pipeline, as Workers static assets are served before the Worker, so
//! asset requests leave no log row on either host. The pages call the admin API, which does the signing in.

include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// The answer to a request for a console file.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: &'static [u8],
}

/// What a request for `path` gets when it is the console's; `None` when it is not.
pub fn serve(method: &str, path: &str) -> Option<Answer> {
    let answer = |status, headers, body| {
        Some(Answer {
            status,
            headers,
            body,
        })
    };
    let rest = path.strip_prefix("/console")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    if method != "GET" && method != "HEAD" {
        return answer(
            405,
            vec![
                ("allow", "GET, HEAD".into()),
                ("content-type", "text/plain".into()),
            ],
            b"the console's files are read with GET",
        );
    }
    if rest.is_empty() {
        // Relative asset paths need the trailing slash (Workers' auto-trailing-slash does the same).
        return answer(307, vec![("location", "/console/".into())], b"");
    }
    let name = match &rest[1..] {
        "" => "index.html",
        other => other,
    };
    let Some((_, kind, bytes)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return answer(
            404,
            vec![("content-type", "text/plain".into())],
            b"no such console file",
        );
    };
    let mut headers = vec![
        ("content-type", (*kind).to_owned()),
        // File names are not hashed: ask the browser to check each time (the files are small).
        ("cache-control", "no-cache".to_owned()),
    ];
    headers.extend(HEADERS.iter().map(|(n, v)| (*n, (*v).to_owned())));
    answer(200, headers, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_is_served_under_its_path_only() {
        assert!(serve("GET", "/consoles").is_none() && serve("GET", "/v1/models").is_none());
        let moved = serve("GET", "/console").unwrap();
        assert_eq!(
            (moved.status, moved.headers[0].1.as_str()),
            (307, "/console/")
        );
        let Answer {
            status,
            headers,
            body,
        } = serve("GET", "/console/").unwrap();
        assert_eq!(status, 200);
        assert!(headers.contains(&("content-type", "text/html; charset=utf-8".into())));
        assert!(
            String::from_utf8_lossy(body).contains("<html")
                || String::from_utf8_lossy(body).contains("not built")
        );
        assert_eq!(serve("GET", "/console/nope.js").unwrap().status, 404);
        assert_eq!(serve("POST", "/console/").unwrap().status, 405);
    }
}
