//! The response as checks, captures and snapshots see it: status, headers, the body as
//! text and, when something reads it, as JSON.

use crate::transport::Received;
use serde_json::Value;

/// Why a JSONPath selects nothing to compare.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("the response body is not JSON")]
    NotJson,
    #[error("invalid JSONPath {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
}

/// What a step produced, as checks see it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub status: u16,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub json: Option<Value>,
}

impl Observed {
    /// A response off the wire as checks see it; `parse_json` as in [`Observed::new`].
    pub fn received(received: Received, parse_json: bool) -> Observed {
        Observed::new(received.status, received.headers, received.body, parse_json)
    }

    /// A response as checks see it. `parse_json`: parse the body (run mode always does;
    /// load mode only when a check or capture reads it).
    pub fn new(
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        parse_json: bool,
    ) -> Observed {
        let json = if parse_json {
            serde_json::from_slice(&body).ok()
        } else {
            None
        };
        let body = match String::from_utf8(body) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        };
        Observed {
            status,
            headers,
            body,
            json,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// First node a JSONPath selects.
    pub fn select(&self, path: &str) -> Result<Option<&Value>, SelectError> {
        let json = self.json.as_ref().ok_or(SelectError::NotJson)?;
        with_cached(
            &JSON_PATHS,
            path,
            serde_json_path::JsonPath::parse,
            |compiled| {
                compiled
                    .map(|c| c.query(json).first())
                    .map_err(|e| SelectError::InvalidPath {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    })
            },
        )
    }
}

pub(super) type Cache<T, E> = std::cell::RefCell<std::collections::HashMap<String, Result<T, E>>>;

thread_local! {
    /// Compiled JSONPaths by source text: a load run evaluates the same few
    /// thousands of times a second. Per thread, so no lock; bounded by [`CACHE_LIMIT`].
    static JSON_PATHS: Cache<serde_json_path::JsonPath, serde_json_path::ParseError> =
        Default::default();
}

/// Entries a cache holds before it starts over (templated paths could make many).
const CACHE_LIMIT: usize = 1024;

pub(super) fn with_cached<T, E, R>(
    cache: &'static std::thread::LocalKey<Cache<T, E>>,
    source: &str,
    compile: impl FnOnce(&str) -> Result<T, E>,
    use_it: impl FnOnce(Result<&T, &E>) -> R,
) -> R {
    cache.with(|cell| {
        let mut map = cell.borrow_mut();
        if !map.contains_key(source) {
            if map.len() >= CACHE_LIMIT {
                map.clear();
            }
            map.insert(source.to_owned(), compile(source));
        }
        use_it(map[source].as_ref())
    })
}

/// Longest response body kept in a report.
const MAX_REPORTED_BODY: usize = 4096;

impl Observed {
    /// The body as a report shows it: redacted, cut at [`MAX_REPORTED_BODY`].
    pub fn reported_body(&self, redactor: &super::redact::Redactor) -> String {
        let text = match &self.json {
            Some(json) => redactor.json(json).to_string(),
            None => redactor.text(&self.body),
        };
        if text.len() > MAX_REPORTED_BODY {
            let mut end = MAX_REPORTED_BODY;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}… ({} bytes)", &text[..end], text.len())
        } else {
            text
        }
    }
}
