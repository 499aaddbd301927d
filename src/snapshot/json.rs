//! A JSON tree that keeps numbers exactly as the target wrote them (`1.0` stays `1.0`,
//! `1e3` stays `1e3`, a 30-digit integer stays whole), rendered pretty with object keys
//! sorted so a snapshot does not depend on the target's key order.

use std::fmt::Write;

/// A parsed JSON value. Objects keep the order they arrived in (JSONPath locations index
/// into it); [`Node::render`] sorts their keys.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Null,
    Bool(bool),
    /// The number's text as written.
    Number(String),
    String(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

/// Deepest nesting parsed; deeper documents are treated as text (no stack overflow on a
/// hostile body).
const MAX_DEPTH: usize = 128;

/// Parses a JSON document (surrounding whitespace allowed); `None` if it is not JSON.
pub fn parse(text: &str) -> Option<Node> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        text,
        pos: 0,
    };
    parser.skip_ws();
    let node = parser.value(0)?;
    parser.skip_ws();
    (parser.pos == parser.bytes.len()).then_some(node)
}

struct Parser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.bytes.get(self.pos) == Some(&byte)).then(|| self.pos += 1)
    }

    fn literal(&mut self, word: &str, node: Node) -> Option<Node> {
        self.text[self.pos..].starts_with(word).then(|| {
            self.pos += word.len();
            node
        })
    }

    fn value(&mut self, depth: usize) -> Option<Node> {
        if depth > MAX_DEPTH {
            return None;
        }
        match *self.bytes.get(self.pos)? {
            b'n' => self.literal("null", Node::Null),
            b't' => self.literal("true", Node::Bool(true)),
            b'f' => self.literal("false", Node::Bool(false)),
            b'"' => self.string().map(Node::String),
            b'[' => {
                self.pos += 1;
                let mut items = Vec::new();
                self.skip_ws();
                if self.eat(b']').is_some() {
                    return Some(Node::Array(items));
                }
                loop {
                    self.skip_ws();
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    if self.eat(b']').is_some() {
                        return Some(Node::Array(items));
                    }
                    self.eat(b',')?;
                }
            }
            b'{' => {
                self.pos += 1;
                let mut entries = Vec::new();
                self.skip_ws();
                if self.eat(b'}').is_some() {
                    return Some(Node::Object(entries));
                }
                loop {
                    self.skip_ws();
                    let key = self.string()?;
                    self.skip_ws();
                    self.eat(b':')?;
                    self.skip_ws();
                    entries.push((key, self.value(depth + 1)?));
                    self.skip_ws();
                    if self.eat(b'}').is_some() {
                        return Some(Node::Object(entries));
                    }
                    self.eat(b',')?;
                }
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Option<Node> {
        let start = self.pos;
        let _ = self.eat(b'-');
        let int_start = self.pos;
        if self.digits() == 0 || (self.bytes[int_start] == b'0' && self.pos - int_start > 1) {
            return None;
        }
        if self.eat(b'.').is_some() && self.digits() == 0 {
            return None;
        }
        if let Some(b'e' | b'E') = self.bytes.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.bytes.get(self.pos) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        Some(Node::Number(self.text[start..self.pos].to_owned()))
    }

    fn hex4(&mut self) -> Option<u32> {
        let hex = self.text.get(self.pos..self.pos + 4)?;
        let value = u32::from_str_radix(hex, 16).ok()?;
        self.pos += 4;
        Some(value)
    }

    fn string(&mut self) -> Option<String> {
        self.eat(b'"')?;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while let Some(&b) = self.bytes.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(&self.text[start..self.pos]);
            match *self.bytes.get(self.pos)? {
                b'"' => {
                    self.pos += 1;
                    return Some(out);
                }
                b'\\' => {
                    self.pos += 1;
                    let escape = *self.bytes.get(self.pos)?;
                    self.pos += 1;
                    match escape {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let first = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&first) {
                                self.eat(b'\\')?;
                                self.eat(b'u')?;
                                let second = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&second) {
                                    return None;
                                }
                                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
                            } else {
                                first
                            };
                            out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                        }
                        _ => return None,
                    }
                }
                _ => return None, // a raw control character
            }
        }
    }
}

/// The JSON type of a value as snapshots compare it: `string`, `integer`, `number`,
/// `boolean`, `array`, `object`, `null`.
pub fn kind(node: &Node) -> &'static str {
    match node {
        Node::Null => "null",
        Node::Bool(_) => "boolean",
        Node::Number(n) if !n.contains(['.', 'e', 'E']) => "integer",
        Node::Number(_) => "number",
        Node::String(_) => "string",
        Node::Array(_) => "array",
        Node::Object(_) => "object",
    }
}

fn quote(text: &str) -> String {
    serde_json::to_string(text).expect("a string serialises")
}

impl Node {
    /// Pretty JSON (two-space indent), object keys sorted, numbers as written.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0, &|leaf: &Node, out: &mut String| match leaf {
            Node::Null => out.push_str("null"),
            Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Node::Number(n) => out.push_str(n),
            Node::String(s) => out.push_str(&quote(s)),
            Node::Array(_) | Node::Object(_) => unreachable!("containers are not leaves"),
        });
        out
    }

    /// Like [`Node::render`], with every scalar replaced by its type (`<string>`,
    /// `<integer>`...): what shape comparison looks at.
    pub fn render_shape(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0, &|leaf: &Node, out: &mut String| {
            let _ = write!(out, "<{}>", kind(leaf));
        });
        out
    }

    fn write(&self, out: &mut String, indent: usize, leaf: &dyn Fn(&Node, &mut String)) {
        let pad = |out: &mut String, n: usize| out.extend(std::iter::repeat_n("  ", n));
        match self {
            Node::Array(items) if items.is_empty() => out.push_str("[]"),
            Node::Array(items) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    pad(out, indent + 1);
                    item.write(out, indent + 1, leaf);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                pad(out, indent);
                out.push(']');
            }
            Node::Object(entries) if entries.is_empty() => out.push_str("{}"),
            Node::Object(entries) => {
                let mut sorted: Vec<&(String, Node)> = entries.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(&b.0));
                out.push_str("{\n");
                for (i, (key, value)) in sorted.iter().enumerate() {
                    pad(out, indent + 1);
                    out.push_str(&quote(key));
                    out.push_str(": ");
                    value.write(out, indent + 1, leaf);
                    out.push_str(if i + 1 < sorted.len() { ",\n" } else { "\n" });
                }
                pad(out, indent);
                out.push('}');
            }
            scalar => leaf(scalar, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stay_as_written_and_keys_are_sorted() {
        let node =
            parse(r#" {"b": 1.0, "a": [1e3, -0.5, 12345678901234567890123], "c": {}} "#).unwrap();
        assert_eq!(
            node.render(),
            "{\n  \"a\": [\n    1e3,\n    -0.5,\n    12345678901234567890123\n  ],\n  \"b\": 1.0,\n  \"c\": {}\n}"
        );
    }

    #[test]
    fn strings_are_decoded_and_reescaped() {
        let node = parse(r#"["a\"b\\c\/d\u00e9\ud83d\ude00\n"]"#).unwrap();
        assert_eq!(
            node,
            Node::Array(vec![Node::String("a\"b\\c/dé😀\n".into())])
        );
        assert_eq!(node.render(), "[\n  \"a\\\"b\\\\c/dé😀\\n\"\n]");
    }

    #[test]
    fn not_json_is_refused() {
        for text in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "01",
            "1.",
            "-",
            "nul",
            "\"a",
            "[1] x",
            "<html>",
            "{\"a\":\"\u{1}\"}",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 2) + &"]".repeat(MAX_DEPTH + 2);
        assert_eq!(parse(&deep), None);
    }

    #[test]
    fn kinds_and_shapes() {
        let node =
            parse(r#"{"n": 1, "f": 1.5, "s": "x", "b": false, "z": null, "l": [1]}"#).unwrap();
        assert_eq!(
            node.render_shape(),
            "{\n  \"b\": <boolean>,\n  \"f\": <number>,\n  \"l\": [\n    <integer>\n  ],\n  \"n\": <integer>,\n  \"s\": <string>,\n  \"z\": <null>\n}"
        );
    }
}
