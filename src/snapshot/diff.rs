//! Differences a person reads: unified diffs of snapshot texts, and the structural
//! comparison of `--snapshot-compare shape` (status, media type, keys, value types, array
//! lengths; values ignored).

use super::json::{self, Node};
use similar::TextDiff;
use std::io::IsTerminal;

/// A unified diff (3 lines of context) of two snapshot texts.
pub fn unified(old: &str, new: &str, old_label: &str, new_label: &str) -> String {
    let with_newline = |t: &str| {
        if t.is_empty() || t.ends_with('\n') {
            t.to_owned()
        } else {
            format!("{t}\n")
        }
    };
    let (old, new) = (with_newline(old), with_newline(new));
    TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(old_label, new_label)
        .to_string()
}

/// Colours a unified diff for a terminal (red removals, green additions, cyan hunks) when
/// stdout is one and `NO_COLOR` is unset.
pub fn colour(diff: &str) -> String {
    if !std::io::stdout().is_terminal() || std::env::var_os("NO_COLOR").is_some() {
        return diff.to_owned();
    }
    diff.lines()
        .map(|line| {
            let code = if line.starts_with("+++") || line.starts_with("---") {
                "1"
            } else if line.starts_with('+') {
                "32"
            } else if line.starts_with('-') {
                "31"
            } else if line.starts_with("@@") {
                "36"
            } else {
                return format!("{line}\n");
            };
            format!("\x1b[{code}m{line}\x1b[0m\n")
        })
        .collect()
}

/// A snapshot text split into its parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub status: Option<u16>,
    /// Lower-case names, in file order.
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Empty,
    Json(Node),
    Text(String),
}

/// Reads a snapshot text (`status:` line, headers, blank line, body).
pub fn parse(text: &str) -> Parsed {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut status = None;
    let mut headers = Vec::new();
    for line in head.lines() {
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_owned());
            if name == "status" && status.is_none() {
                status = value.parse().ok();
            } else {
                headers.push((name, value));
            }
        }
    }
    let body = body.trim();
    let body = if body.is_empty() || body == "(empty body)" {
        Body::Empty
    } else if let Some(node) = json::parse(body) {
        Body::Json(node)
    } else {
        Body::Text(body.to_owned())
    };
    Parsed {
        status,
        headers,
        body,
    }
}

impl Parsed {
    /// The media type (`application/json`), without parameters.
    pub fn media_type(&self) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
    }

    /// The text shape comparison diffs: status, media type, and the body with every value
    /// replaced by its type.
    pub fn shape_text(&self) -> String {
        let mut out = String::new();
        if let Some(status) = self.status {
            out.push_str(&format!("status: {status}\n"));
        }
        if let Some(media) = self.media_type() {
            out.push_str(&format!("content-type: {media}\n"));
        }
        out.push('\n');
        out.push_str(&match &self.body {
            Body::Empty => "(empty body)".to_owned(),
            Body::Json(node) => node.render_shape(),
            Body::Text(_) => "<text>".to_owned(),
        });
        out.push('\n');
        out
    }
}

/// What a shape comparison found.
#[derive(Debug, Default, PartialEq)]
pub struct ShapeComparison {
    /// Differences: a missing field, another type, status or media type (and, when strict,
    /// extra fields and other list lengths). One phrase each.
    pub differences: Vec<String>,
    /// Legitimate variations (not strict): fields the reference lacks, other list lengths.
    pub allowed: Vec<String>,
}

/// What differs in shape between `expected` (the reference) and `actual`, one phrase per
/// difference (strict: extra fields and list lengths count); empty when the shapes are the
/// same.
pub fn shape_differences(expected: &Parsed, actual: &Parsed) -> Vec<String> {
    compare_shapes(expected, actual, true).differences
}

/// Compares the shapes of `expected` (the reference) and `actual`. Not strict, an
/// implementation may add fields and list other numbers of items, each of which must have
/// the shape of some item of the reference's list.
pub fn compare_shapes(expected: &Parsed, actual: &Parsed, strict: bool) -> ShapeComparison {
    let mut found = ShapeComparison::default();
    if expected.status != actual.status {
        found.differences.push(format!(
            "status {} -> {}",
            show(expected.status),
            show(actual.status)
        ));
    }
    if expected.media_type() != actual.media_type() {
        found.differences.push(format!(
            "content-type {} -> {}",
            expected.media_type().as_deref().unwrap_or("none"),
            actual.media_type().as_deref().unwrap_or("none")
        ));
    }
    match (&expected.body, &actual.body) {
        (Body::Json(a), Body::Json(b)) => nodes(a, b, "$", strict, &mut found),
        (Body::Empty, Body::Empty) | (Body::Text(_), Body::Text(_)) => {}
        (a, b) => found
            .differences
            .push(format!("body {} -> {}", body_kind(a), body_kind(b))),
    }
    found
}

fn show(status: Option<u16>) -> String {
    status.map_or_else(|| "none".to_owned(), |s| s.to_string())
}

fn body_kind(body: &Body) -> &'static str {
    match body {
        Body::Empty => "empty",
        Body::Json(_) => "JSON",
        Body::Text(_) => "text",
    }
}

fn member(path: &str, key: &str) -> String {
    if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        format!("{path}.{key}")
    } else {
        format!(
            "{path}[{}]",
            serde_json::to_string(key).expect("a string serialises")
        )
    }
}

fn nodes(expected: &Node, actual: &Node, path: &str, strict: bool, found: &mut ShapeComparison) {
    match (expected, actual) {
        (Node::Object(a), Node::Object(b)) => {
            let mut keys: Vec<&String> = a.iter().chain(b.iter()).map(|(k, _)| k).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let here = member(path, key);
                match (
                    a.iter().find(|(k, _)| k == key),
                    b.iter().find(|(k, _)| k == key),
                ) {
                    (Some((_, x)), Some((_, y))) => nodes(x, y, &here, strict, found),
                    (Some(_), None) => found.differences.push(format!("{here} is missing")),
                    (None, Some(_)) if strict => found.differences.push(format!("{here} is extra")),
                    (None, Some(_)) => found.allowed.push(format!("{here} is extra")),
                    (None, None) => {}
                }
            }
        }
        (Node::Array(a), Node::Array(b)) if strict => {
            if a.len() != b.len() {
                found
                    .differences
                    .push(format!("{path}: {} items -> {}", a.len(), b.len()));
            }
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                nodes(x, y, &format!("{path}[{i}]"), strict, found);
            }
        }
        (Node::Array(a), Node::Array(b)) => {
            if a.len() != b.len() {
                found
                    .allowed
                    .push(format!("{path}: {} items -> {}", a.len(), b.len()));
            }
            for (i, y) in b.iter().enumerate() {
                let here = format!("{path}[{i}]");
                // The item matches the reference item it is closest to.
                let best = a
                    .iter()
                    .map(|x| {
                        let mut one = ShapeComparison::default();
                        nodes(x, y, &here, false, &mut one);
                        one
                    })
                    .min_by_key(|one| one.differences.len());
                if let Some(best) = best {
                    found.differences.extend(best.differences);
                    found.allowed.extend(best.allowed);
                }
            }
        }
        (a, b) if json::kind(a) != json::kind(b) => {
            found
                .differences
                .push(format!("{path}: {} -> {}", json::kind(a), json::kind(b)))
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(body: &str) -> Parsed {
        parse(&format!(
            "status: 200\ncontent-type: application/json\n\n{body}\n"
        ))
    }

    #[test]
    fn a_correct_stranger_has_the_same_shape() {
        // The reference lists sms and voice as a pair; this implementation lists one
        // authenticator per phone and adds a field of its own.
        let reference = snap(
            r#"[{"id": "sms|dev_1", "authenticator_type": "oob", "oob_channel": "sms", "active": true},
                {"id": "voice|dev_1", "authenticator_type": "oob", "oob_channel": "voice", "active": true},
                {"id": "recovery-code|dev_2", "authenticator_type": "recovery-code", "active": true}]"#,
        );
        let stranger = snap(
            r#"[{"id": "a1", "authenticator_type": "oob", "oob_channel": "sms", "active": true, "created_at": "x"},
                {"id": "a2", "authenticator_type": "recovery-code", "active": true}]"#,
        );
        let lenient = compare_shapes(&reference, &stranger, false);
        assert!(lenient.differences.is_empty(), "{lenient:?}");
        assert_eq!(
            lenient.allowed,
            ["$: 3 items -> 2", "$[0].created_at is extra"]
        );
        let strict = compare_shapes(&reference, &stranger, true);
        assert!(
            strict.differences.contains(&"$: 3 items -> 2".to_owned()),
            "{strict:?}"
        );
        // A missing field or another type is a difference in either mode.
        let broken = snap(r#"[{"id": 7, "authenticator_type": "oob", "oob_channel": "sms"}]"#);
        let found = compare_shapes(&reference, &broken, false);
        assert_eq!(
            found.differences,
            ["$[0].active is missing", "$[0].id: string -> integer"]
        );
    }

    #[test]
    fn unified_diff_reads_well() {
        let old = "status: 200\ncontent-type: application/json\n\n{\n  \"a\": 1\n}\n";
        let new =
            "status: 200\ncontent-type: application/json\n\n{\n  \"a\": \"1\",\n  \"b\": true\n}\n";
        insta::assert_snapshot!(unified(old, new, "old.snap", "old.snap.new"), @r#"
        --- old.snap
        +++ old.snap.new
        @@ -2,5 +2,6 @@
         content-type: application/json
         
         {
        -  "a": 1
        +  "a": "1",
        +  "b": true
         }
        "#);
        assert_eq!(unified(old, old, "a", "b"), "");
    }

    #[test]
    fn shapes_compare_structure_not_values() {
        let reference = parse(
            "status: 403\ncontent-type: application/json; charset=utf-8\n\n{\"error\": \"mfa_required\", \"n\": 1, \"l\": [1, 2], \"o\": {\"k\": null}}\n",
        );
        let same = parse(
            "status: 403\ncontent-type: application/json\n\n{\"n\": 7, \"o\": {\"k\": null}, \"error\": \"other text\", \"l\": [5, 6]}\n",
        );
        assert_eq!(shape_differences(&reference, &same), Vec::<String>::new());
        assert_eq!(reference.shape_text(), same.shape_text());
        let other = parse(
            "status: 401\ncontent-type: text/plain\n\n{\"error\": 3, \"l\": [1], \"o\": {\"k\": null, \"x y\": 1}}\n",
        );
        assert_eq!(
            shape_differences(&reference, &other),
            vec![
                "status 403 -> 401",
                "content-type application/json -> text/plain",
                "$.error: string -> integer",
                "$.l: 2 items -> 1",
                "$.n is missing",
                "$.o[\"x y\"] is extra",
            ]
        );
        let empty = parse("status: 204\n\n(empty body)\n");
        assert_eq!(empty.body, Body::Empty);
        assert_eq!(
            shape_differences(&reference, &empty)[2],
            "body JSON -> empty"
        );
    }
}
