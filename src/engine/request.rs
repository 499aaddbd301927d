//! Rendering a step's request from the session's variables: a pure function of the
//! templates, the target's base URL, the request and the variables.

use super::template::{TemplateError, Templates};
use crate::scenario::model::Request;
use crate::transport::Outgoing;
use serde_json::{Map, Value};

/// A request rendered from its step.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub outgoing: Outgoing,
    /// The body's fields (a JSON or form body) as sent: for `sent` captures, and secrets
    /// to learn. `None` for a raw body or none.
    pub fields: Option<Value>,
}

impl Rendered {
    /// The body as a report shows it, before redaction: the fields as JSON, or the raw
    /// text.
    pub fn shown_body(&self) -> Option<ShownBody<'_>> {
        match (&self.fields, &self.outgoing.body) {
            (Some(fields), _) => Some(ShownBody::Fields(fields)),
            (None, Some(raw)) => Some(ShownBody::Raw(raw)),
            (None, None) => None,
        }
    }
}

/// A request body as a report shows it.
pub enum ShownBody<'r> {
    Fields(&'r Value),
    Raw(&'r str),
}

/// Renders `request` against `vars`: its URL (a path is appended to `base_url`), headers
/// (`bearer` as `Authorization`), body (`json`, `form` or `body`, with `omit` applied) and
/// the content type of a JSON or form body unless a header sets one. `needs_headers`
/// passes through to the transport.
pub fn render(
    templates: &Templates,
    base_url: &str,
    request: &Request,
    vars: &Value,
    needs_headers: bool,
) -> Result<Rendered, TemplateError> {
    let path = templates.render(&request.path, vars)?;
    let url = if path.starts_with("http://") || path.starts_with("https://") {
        path
    } else {
        let mut url = String::with_capacity(base_url.len() + path.len());
        url.push_str(base_url);
        url.push_str(&path);
        url
    };
    let mut headers = Vec::with_capacity(request.headers.len() + 2);
    for (name, value) in &request.headers {
        headers.push((name.clone(), templates.render(value, vars)?));
    }
    if let Some(bearer) = &request.bearer {
        let token = templates.render(bearer, vars)?;
        let mut value = String::with_capacity(7 + token.len());
        value.push_str("Bearer ");
        value.push_str(&token);
        headers.push(("authorization".to_owned(), value));
    }
    let omit: Vec<String> = request
        .omit
        .iter()
        .map(|k| templates.render(k, vars))
        .collect::<Result<_, _>>()?;
    let (body, fields, content_type) = render_body(templates, request, vars, &omit)?;
    let has_content_type = request
        .headers
        .keys()
        .any(|k| k.eq_ignore_ascii_case("content-type"));
    if let (Some(content_type), false) = (content_type, has_content_type) {
        headers.push(("content-type".to_owned(), content_type.to_owned()));
    }
    Ok(Rendered {
        outgoing: Outgoing {
            method: request.method,
            url,
            headers,
            body,
            needs_headers,
        },
        fields,
    })
}

/// A rendered body: its text, its fields (JSON or form) and its default content type.
type Body = (Option<String>, Option<Value>, Option<&'static str>);

fn render_body(
    templates: &Templates,
    request: &Request,
    vars: &Value,
    omit: &[String],
) -> Result<Body, TemplateError> {
    if let Some(json_body) = &request.json {
        let mut rendered = templates.render_json(json_body, vars)?;
        if let Value::Object(map) = &mut rendered {
            omit.iter().for_each(|k| {
                map.shift_remove(k);
            });
        }
        let body = rendered.to_string();
        return Ok((Some(body), Some(rendered), Some("application/json")));
    }
    if let Some(form) = &request.form {
        let mut map = Map::with_capacity(form.len());
        for (key, value) in form {
            map.insert(key.clone(), templates.render_json(value, vars)?);
        }
        omit.iter().for_each(|k| {
            map.shift_remove(k);
        });
        let body = encode_form(&map);
        return Ok((
            Some(body),
            Some(Value::Object(map)),
            Some("application/x-www-form-urlencoded"),
        ));
    }
    if let Some(raw) = &request.body {
        return Ok((Some(templates.render(raw, vars)?), None, None));
    }
    Ok((None, None, None))
}

fn encode_form(map: &Map<String, Value>) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in map {
        match value {
            Value::Null => {}
            Value::String(s) => {
                out.append_pair(key, s);
            }
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::String(s) => out.append_pair(key, s),
                        other => out.append_pair(key, &other.to_string()),
                    };
                }
            }
            other => {
                out.append_pair(key, &other.to_string());
            }
        }
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::model::Method;
    use serde_json::json;
    use std::time::Duration;

    fn templates() -> Templates {
        Templates::offline(Duration::from_secs(1))
    }

    fn request(yaml: &str) -> Request {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn vars() -> Value {
        json!({"user": {"username": "ann", "password": "pw"}, "mfa_token": "tok", "skip": "scope"})
    }

    const BASE: &str = "http://127.0.0.1:9";

    #[test]
    fn a_json_body_with_bearer_and_omitted_key() {
        let r = request(
            "{method: POST, path: /mfa/associate, bearer: '{{ mfa_token }}', omit: ['{{ skip }}'],
              json: {authenticator_types: [otp], scope: x, who: '{{ user.username }}'}}",
        );
        let rendered = render(&templates(), BASE, &r, &vars(), false).unwrap();
        let out = &rendered.outgoing;
        assert_eq!(out.method, Method::Post);
        assert_eq!(out.url, "http://127.0.0.1:9/mfa/associate");
        assert_eq!(
            out.headers,
            vec![
                ("authorization".into(), "Bearer tok".into()),
                ("content-type".into(), "application/json".into())
            ]
        );
        let expected = json!({"authenticator_types": ["otp"], "who": "ann"});
        assert_eq!(rendered.fields, Some(expected.clone()));
        assert_eq!(out.body.as_deref(), Some(expected.to_string().as_str()));
        assert!(matches!(rendered.shown_body(), Some(ShownBody::Fields(_))));
    }

    #[test]
    fn a_form_body_repeats_list_keys_and_drops_nulls() {
        let r = request(
            "{method: POST, path: 'https://other.test/token', headers: {Content-Type: text/x},
              form: {username: '{{ user.username }}', scope: [a, b], n: 3, none: null}}",
        );
        let rendered = render(&templates(), BASE, &r, &vars(), true).unwrap();
        let out = &rendered.outgoing;
        assert_eq!(
            out.url, "https://other.test/token",
            "absolute URLs are kept"
        );
        assert_eq!(out.headers, vec![("Content-Type".into(), "text/x".into())]);
        assert_eq!(
            out.body.as_deref(),
            Some("username=ann&scope=a&scope=b&n=3")
        );
        assert!(out.needs_headers);
    }

    #[test]
    fn a_raw_body_is_text_and_errors_name_the_template() {
        let r = request("{method: PUT, path: /x, body: 'code={{ mfa_token }}'}");
        let rendered = render(&templates(), BASE, &r, &vars(), false).unwrap();
        assert_eq!(rendered.outgoing.body.as_deref(), Some("code=tok"));
        assert!(rendered.fields.is_none());
        assert!(matches!(
            rendered.shown_body(),
            Some(ShownBody::Raw("code=tok"))
        ));

        let r = request("{method: GET, path: '/x/{{ nope }}'}");
        let error = render(&templates(), BASE, &r, &vars(), false).unwrap_err();
        assert!(error.to_string().contains("/x/{{ nope }}"), "{error}");
    }
}
