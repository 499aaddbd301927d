//! The router: every endpoint of the server, built in one place.

mod control;
mod discovery;
mod mfa;
mod token;

use super::AppState;
use super::config::ClientConfig;
use super::error::ApiError;
use super::params::{ClientCredentials, Params};
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub fn router(state: Arc<AppState>, control: bool) -> Router {
    let body_limit = state.config.limits.max_body_bytes;
    let mfa = Router::new()
        .route("/mfa/associate", post(mfa::associate))
        .route("/mfa/challenge", post(mfa::challenge))
        .route("/mfa/authenticators", get(mfa::list))
        .route("/mfa/authenticators/{id}", delete(mfa::delete));
    let mut app = Router::new()
        .route("/oauth/token", post(token::token))
        .route(
            "/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .merge(mfa);
    if control {
        app = app
            .route("/__control/users", post(control::create_user))
            .route("/__control/messages", get(control::messages))
            .route("/__control/push", post(control::push))
            .route(
                "/__control/clock",
                post(control::advance_clock).get(control::clock),
            );
    }
    app.fallback(not_found)
        .layer(from_fn(wire_conventions))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "Not found.")
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "Internal error.",
    )
    .into_response()
}

/// What every response gets on its way out, and every request on its way in:
/// - HTTP/2 requests carry the address in `:authority`, not `Host`: copy it, so issuer and
///   audiences follow the address the client used whatever the protocol;
/// - framework rejections (413, 405, 415...) become the JSON error envelope;
/// - a 413 closes the connection (the unread body would poison keep-alive);
/// - `/mfa/*` answer `application/json; charset=utf-8`, `/oauth/token` plain
///   `application/json` with `Cache-Control: no-store`, as recorded from Auth0.
async fn wire_conventions(mut request: Request, next: Next) -> Response {
    if !request.headers().contains_key(header::HOST)
        && let Some(authority) = request.uri().authority()
        && let Ok(value) = HeaderValue::from_str(authority.as_str())
    {
        request.headers_mut().insert(header::HOST, value);
    }
    let path = request.uri().path().to_owned();
    let response = match read_body(request).await {
        Ok(request) => next.run(request).await,
        Err(rejection) => rejection,
    };
    let mut response = json_error_bodies(response).await;
    let headers = response.headers_mut();
    if path.starts_with("/mfa/")
        && headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes() == b"application/json")
    {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
    }
    if path == "/oauth/token" {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads the whole request body (up to the body limit: `413` beyond it, `400` for a broken
/// one) before the router runs. A handler that ignores the body (`GET`s, the 404 fallback,
/// a 405) would otherwise answer while the body is still arriving, and hyper then closes
/// the connection after the answer without saying so (`connection: close`): the next
/// request a client sends on that keep-alive connection is lost, or the rest of the body
/// meets a broken pipe.
async fn read_body(request: Request) -> Result<Request, Response> {
    if request.body().size_hint().exact() == Some(0) {
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), &())
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Rejections produced by the framework (413 body too large, 405, 415...) come as plain
/// text; every error leaves this server as the JSON envelope instead.
async fn json_error_bodies(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let error = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        s if s.is_server_error() => "server_error",
        _ => "invalid_request",
    };
    let description = if text.is_empty() {
        status.canonical_reason().unwrap_or("Error").to_owned()
    } else {
        text
    };
    let mut response = ApiError::new(status, error, description).into_response();
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

/// Client authentication for `/oauth/token` and `/mfa/challenge`: `client_id` required,
/// and for confidential clients the secret (body or Basic) or a signed `client_assertion`.
fn authenticate_client<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<&'a ClientConfig, ApiError> {
    let credentials = ClientCredentials::from_request(headers, params)?
        .ok_or_else(|| ApiError::missing("client_id"))?;
    check_client(state, headers, &credentials, true)
}

/// Looks the client up and checks its secret or assertion. `secret_required`: a
/// confidential client must authenticate (`/mfa/associate` accepts a bare `client_id`, as
/// several SDKs send).
fn check_client<'a>(
    state: &'a AppState,
    headers: &HeaderMap,
    credentials: &ClientCredentials,
    secret_required: bool,
) -> Result<&'a ClientConfig, ApiError> {
    let client = state
        .config
        .client(&credentials.client_id)
        .ok_or_else(|| ApiError::invalid_client("Unknown client."))?;
    if let Some(assertion) = &credentials.client_assertion {
        check_assertion(state, headers, client, assertion)?;
        return Ok(client);
    }
    let confidential = client.client_secret.is_some() || client.public_key_pem.is_some();
    match (&client.client_secret, &credentials.client_secret) {
        (Some(expected), Some(given))
            if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) =>
        {
            return Err(ApiError::invalid_client("Client authentication failed."));
        }
        (None, Some(_)) if confidential => {
            return Err(ApiError::invalid_client("Client authentication failed."));
        }
        (_, None) if confidential && secret_required => {
            return Err(ApiError::invalid_client(
                "Client authentication is required for this client.",
            ));
        }
        _ => {}
    }
    Ok(client)
}

/// `private_key_jwt`: the assertion verifies with the client's key and was not seen before.
fn check_assertion(
    state: &AppState,
    headers: &HeaderMap,
    client: &ClientConfig,
    assertion: &str,
) -> Result<(), ApiError> {
    let key = state.client_key(&client.client_id).ok_or_else(|| {
        ApiError::invalid_client("This client has no key for client_assertion authentication.")
    })?;
    let now = state.clock.now();
    let claims = key
        .verify(
            assertion,
            &client.client_id,
            &state.assertion_audiences(headers),
            now,
        )
        .map_err(|e| ApiError::invalid_client(e.to_string()))?;
    if !state
        .store()
        .remember_assertion(&client.client_id, &claims.jti, claims.exp, now)
    {
        return Err(ApiError::invalid_client(
            "The client_assertion was already used.",
        ));
    }
    Ok(())
}
