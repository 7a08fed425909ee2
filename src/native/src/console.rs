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
    answer(method, path).map(|(status, headers, body)| Answer {
        status,
        headers,
        body,
    })
}

type Parts = (u16, Vec<(&'static str, String)>, &'static [u8]);

fn answer(method: &str, path: &str) -> Option<Parts> {
    let rest = path.strip_prefix("/console")?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    if method != "GET" && method != "HEAD" {
        return Some((
            405,
            vec![
                ("allow", "GET, HEAD".into()),
                ("content-type", "text/plain".into()),
            ],
            b"the console's files are read with GET",
        ));
    }
    if rest.is_empty() {
        // Relative asset paths need the trailing slash (Workers' auto-trailing-slash does the same).
        return Some((307, vec![("location", "/console/".into())], b""));
    }
    let name = match &rest[1..] {
        "" => "index.html",
        other => other,
    };
    let Some((_, kind, bytes)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return Some((
            404,
            vec![("content-type", "text/plain".into())],
            b"no such console file",
        ));
    };
    let mut headers = vec![
        ("content-type", (*kind).to_owned()),
        // File names are not hashed: ask the browser to check each time (the files are small).
        ("cache-control", "no-cache".to_owned()),
    ];
    headers.extend(HEADERS.iter().map(|(n, v)| (*n, (*v).to_owned())));
    Some((200, headers, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_is_served_under_its_path_only() {
        assert!(serve("GET", "/consoles").is_none() && serve("GET", "/v1/models").is_none());
        let (status, headers, _) = answer("GET", "/console").unwrap();
        assert_eq!((status, headers[0].1.as_str()), (307, "/console/"));
        let (status, headers, body) = answer("GET", "/console/").unwrap();
        assert_eq!(status, 200);
        assert!(headers.contains(&("content-type", "text/html; charset=utf-8".into())));
        assert!(
            String::from_utf8_lossy(body).contains("<html")
                || String::from_utf8_lossy(body).contains("not built")
        );
        assert_eq!(answer("GET", "/console/nope.js").unwrap().0, 404);
        assert_eq!(answer("POST", "/console/").unwrap().0, 405);
    }
}
