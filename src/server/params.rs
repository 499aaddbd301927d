//! Request parameters as real clients send them: form-urlencoded or JSON bodies (JSON `null`
//! means absent), strings or arrays, client credentials in the body or in HTTP Basic.

use super::client_auth::{ASSERTION_TYPE, claimed_client};
use super::error::ApiError;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

/// The parameters of one request body.
#[derive(Debug, Default)]
pub struct Params {
    values: Map<String, Value>,
}

impl Params {
    /// Parses a body by its `Content-Type`: JSON, form, or (no type given) whichever parses.
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Params, ApiError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Params::default());
        }
        match content_type.as_deref() {
            Some("application/json") => Self::from_json(body),
            Some("application/x-www-form-urlencoded") => Ok(Self::from_form(body)),
            None => Self::from_json(body).or_else(|_| Ok(Self::from_form(body))),
            Some(other) => Err(ApiError::invalid_request(format!(
                "Unsupported Content-Type {other:?}: send application/json or application/x-www-form-urlencoded"
            ))),
        }
    }

    fn from_json(body: &[u8]) -> Result<Params, ApiError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::invalid_request(format!("Invalid JSON body: {e}")))?;
        match value {
            Value::Object(mut values) => {
                values.retain(|_, v| !v.is_null());
                Ok(Params { values })
            }
            _ => Err(ApiError::invalid_request("The JSON body must be an object")),
        }
    }

    fn from_form(body: &[u8]) -> Params {
        let mut values = Map::new();
        for (key, value) in url::form_urlencoded::parse(body) {
            // A repeated key (`oob_channels=sms&oob_channels=voice`) becomes an array.
            match values.get_mut(key.as_ref()) {
                Some(Value::Array(items)) => items.push(Value::String(value.into_owned())),
                Some(existing) => {
                    let first = existing.take();
                    *existing = Value::Array(vec![first, Value::String(value.into_owned())]);
                }
                None => {
                    values.insert(key.into_owned(), Value::String(value.into_owned()));
                }
            }
        }
        Params { values }
    }

    /// An optional string parameter; empty strings count as absent.
    pub fn optional(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.values.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(ApiError::invalid_request(format!(
                "Invalid parameter: {name} must be a string"
            ))),
        }
    }

    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.optional(name)?.ok_or_else(|| ApiError::missing(name))
    }

    /// A list parameter: a JSON array of strings, or a single string (space- or
    /// comma-separated), as different SDKs send it.
    pub fn list(&self, name: &str) -> Result<Option<Vec<String>>, ApiError> {
        let bad = || {
            ApiError::invalid_request(format!(
                "Invalid parameter: {name} must be an array of strings"
            ))
        };
        let items: Vec<String> = match self.values.get(name) {
            None => return Ok(None),
            Some(Value::String(s)) => s
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad()),
        };
        Ok(if items.is_empty() { None } else { Some(items) })
    }
}

/// Client credentials from `Authorization: Basic` or the body: a secret, or a signed
/// `client_assertion` (`private_key_jwt`).
#[derive(Debug, PartialEq, Eq)]
pub struct ClientCredentials {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub client_assertion: Option<String>,
}

impl ClientCredentials {
    /// `Ok(None)` when the request names no client at all.
    pub fn from_request(
        headers: &HeaderMap,
        params: &Params,
    ) -> Result<Option<ClientCredentials>, ApiError> {
        let assertion = params.optional("client_assertion")?;
        let assertion_type = params.optional("client_assertion_type")?;
        if let Some(basic) = basic_credentials(headers)? {
            if assertion.is_some() {
                return Err(one_method());
            }
            return Ok(Some(basic));
        }
        let client_secret = params.optional("client_secret")?.map(str::to_owned);
        if let Some(assertion) = assertion {
            if assertion_type != Some(ASSERTION_TYPE) {
                return Err(ApiError::invalid_request(format!(
                    "client_assertion_type must be {ASSERTION_TYPE}"
                )));
            }
            if client_secret.is_some() {
                return Err(one_method());
            }
            let client_id = match params.optional("client_id")? {
                Some(id) => id.to_owned(),
                None => claimed_client(assertion).ok_or_else(|| {
                    ApiError::invalid_client("The client_assertion names no client.")
                })?,
            };
            return Ok(Some(ClientCredentials {
                client_id,
                client_secret: None,
                client_assertion: Some(assertion.to_owned()),
            }));
        }
        let Some(client_id) = params.optional("client_id")? else {
            return Ok(None);
        };
        Ok(Some(ClientCredentials {
            client_id: client_id.to_owned(),
            client_secret,
            client_assertion: None,
        }))
    }
}

fn one_method() -> ApiError {
    ApiError::invalid_request(
        "Use one client authentication method: a client_secret or a client_assertion.",
    )
}

fn basic_credentials(headers: &HeaderMap) -> Result<Option<ClientCredentials>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::invalid_client("Malformed Authorization header"))?;
    let Some(encoded) = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))
    else {
        return Ok(None);
    };
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::invalid_client("Malformed HTTP Basic credentials"))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| ApiError::invalid_client("Malformed HTTP Basic credentials"))?;
    let id = url::form_urlencoded::parse(format!("a={id}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let secret = url::form_urlencoded::parse(format!("a={secret}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    Ok(Some(ClientCredentials {
        client_id: id,
        client_secret: Some(secret),
        client_assertion: None,
    }))
}

/// The bearer token of an `Authorization: Bearer` header, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn json_null_is_absent_and_types_are_checked() {
        let h = headers(&[(header::CONTENT_TYPE, "application/json; charset=utf-8")]);
        let p = Params::parse(&h, br#"{"realm": null, "otp": 123, "mfa_token": "t"}"#).unwrap();
        assert_eq!(p.optional("realm").unwrap(), None);
        assert_eq!(p.required("mfa_token").unwrap(), "t");
        assert_eq!(p.required("otp").unwrap_err().error, "invalid_request");
        assert_eq!(
            p.required("nope").unwrap_err().description,
            "Missing required parameter: nope"
        );
    }

    #[test]
    fn form_and_lists() {
        let h = headers(&[(header::CONTENT_TYPE, "application/x-www-form-urlencoded")]);
        let p = Params::parse(&h, b"a=1&oob_channels=sms&oob_channels=voice&t=otp").unwrap();
        assert_eq!(
            p.list("oob_channels").unwrap().unwrap(),
            vec!["sms", "voice"]
        );
        assert_eq!(p.list("t").unwrap().unwrap(), vec!["otp"]);
        assert_eq!(p.list("missing").unwrap(), None);
    }

    #[test]
    fn malformed_bodies_are_invalid_request() {
        let h = headers(&[(header::CONTENT_TYPE, "application/json")]);
        assert_eq!(Params::parse(&h, b"{nope").unwrap_err().status, 400);
        assert_eq!(Params::parse(&h, b"[1,2]").unwrap_err().status, 400);
        let h = headers(&[(header::CONTENT_TYPE, "text/plain")]);
        assert_eq!(
            Params::parse(&h, b"x").unwrap_err().error,
            "invalid_request"
        );
    }

    #[test]
    fn basic_auth_wins_over_body() {
        let h = headers(&[(header::AUTHORIZATION, "Basic YWJjOmRlZg==")]);
        let p = Params::default();
        let c = ClientCredentials::from_request(&h, &p).unwrap().unwrap();
        assert_eq!(c.client_id, "abc");
        assert_eq!(c.client_secret.as_deref(), Some("def"));
        let h = headers(&[(header::AUTHORIZATION, "Basic !!!")]);
        assert_eq!(
            ClientCredentials::from_request(&h, &p).unwrap_err().status,
            401
        );
    }

    #[test]
    fn bearer_parsing() {
        let h = headers(&[(header::AUTHORIZATION, "bearer abc")]);
        assert_eq!(bearer_token(&h), Some("abc"));
        let h = headers(&[(header::AUTHORIZATION, "Bearer ")]);
        assert_eq!(bearer_token(&h), None);
    }
}
