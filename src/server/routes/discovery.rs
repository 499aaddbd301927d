//! OIDC discovery and the JWKS, so SDKs that discover the issuer and verify tokens work.

use crate::server::AppState;
use crate::server::config::ALL_GRANTS;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::sync::Arc;

pub async fn openid_configuration(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Json<Value> {
    let base = state.base_url(&headers);
    let mut auth_methods = vec!["client_secret_basic", "client_secret_post", "none"];
    if state
        .config
        .clients
        .iter()
        .any(|c| c.public_key_pem.is_some())
    {
        auth_methods.push("private_key_jwt");
    }
    Json(json!({
        "issuer": format!("{base}/"),
        "token_endpoint": format!("{base}/oauth/token"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "mfa_challenge_endpoint": format!("{base}/mfa/challenge"),
        "grant_types_supported": ALL_GRANTS,
        "response_types_supported": ["token", "id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "scopes_supported": ["openid", "profile", "email", "offline_access", "enroll", "read:authenticators", "remove:authenticators"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "email", "name"],
    }))
}

pub async fn jwks(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Value>, crate::server::error::ApiError> {
    Ok(Json(state.signer().await?.jwks().clone()))
}
