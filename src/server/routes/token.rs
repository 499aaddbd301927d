//! `POST /oauth/token`: the password grants that answer `mfa_required`, and the three MFA
//! grants that complete a login.

use super::authenticate_client;
use crate::server::AppState;
use crate::server::config::{
    ALL_GRANTS, GRANT_MFA_OOB, GRANT_MFA_OTP, GRANT_MFA_RECOVERY_CODE, GRANT_PASSWORD,
    GRANT_PASSWORD_REALM,
};
use crate::server::error::ApiError;
use crate::server::jwt::{AccessClaims, IdClaims};
use crate::server::params::Params;
use crate::server::random;
use crate::server::store::{Grant, Login};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;

/// Lifetime of access tokens for the `/mfa/` audience (fixed by Auth0: 10 minutes).
const MFA_ACCESS_TOKEN_SECONDS: i64 = 600;
/// Lifetime of access tokens for any other audience (Auth0's API default).
const API_ACCESS_TOKEN_SECONDS: i64 = 86_400;
const ID_TOKEN_SECONDS: i64 = 36_000;
/// Scopes an `/mfa/` access token can carry.
const MFA_SCOPES: [&str; 7] = [
    "openid",
    "profile",
    "email",
    "offline_access",
    "enroll",
    "read:authenticators",
    "remove:authenticators",
];

pub async fn token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(&headers, &body)?;
    let grant_type = params.required("grant_type")?;
    let client = authenticate_client(&state, &headers, &params)?;
    if !ALL_GRANTS.contains(&grant_type) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("Unsupported grant type: {grant_type}"),
        ));
    }
    if !client.grant_types.iter().any(|g| g == grant_type) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "unauthorized_client",
            format!("Grant type '{grant_type}' not allowed for the client."),
        ));
    }
    let now = state.clock.now();
    let client_id = client.client_id.as_str();
    let grant = match grant_type {
        GRANT_PASSWORD | GRANT_PASSWORD_REALM => {
            let username = params.required("username")?;
            let password = params.required("password")?;
            let realm = if grant_type == GRANT_PASSWORD_REALM {
                Some(params.required("realm")?)
            } else {
                params.optional("realm")?
            };
            if realm.is_some_and(|r| r != state.config.realm) {
                return Err(ApiError::invalid_request(format!(
                    "Unknown realm: {}",
                    realm.unwrap_or_default()
                )));
            }
            let audience = params.optional("audience")?;
            let scope = params.optional("scope")?.unwrap_or("");
            let login = state
                .store()
                .login(username, password, client_id, audience, scope, now)?;
            match login {
                Login::MfaRequired(mfa_token) => return Err(ApiError::mfa_required(mfa_token)),
                Login::Granted(grant) => grant,
            }
        }
        GRANT_MFA_OTP => {
            let mfa_token = params.required("mfa_token")?;
            let otp = params.required("otp")?;
            state.store().verify_otp(mfa_token, client_id, otp, now)?
        }
        GRANT_MFA_OOB => {
            let mfa_token = params.required("mfa_token")?;
            let oob_code = params.required("oob_code")?;
            let binding_code = params.optional("binding_code")?;
            state
                .store()
                .verify_oob(mfa_token, client_id, oob_code, binding_code, now)?
        }
        GRANT_MFA_RECOVERY_CODE => {
            let mfa_token = params.required("mfa_token")?;
            let recovery_code = params.required("recovery_code")?;
            state
                .store()
                .verify_recovery_code(mfa_token, client_id, recovery_code, now)?
        }
        _ => unreachable!("checked against ALL_GRANTS above"),
    };
    issue_tokens(&state, &headers, grant, now).await.map(Json)
}

/// Signs the access token (and `id_token` for `openid`), outside the store's lock.
async fn issue_tokens(
    state: &AppState,
    headers: &HeaderMap,
    grant: Grant,
    now: i64,
) -> Result<Value, ApiError> {
    let signer = state.signer().await?;
    let issuer = state.issuer(headers);
    let mfa_audiences = state.mfa_audiences(headers);
    let audience = grant
        .audience
        .clone()
        .or_else(|| state.config.default_audience.clone())
        .unwrap_or_else(|| format!("{}/userinfo", state.base_url(headers)));
    let for_mfa_api = mfa_audiences.contains(&audience);
    let scope: Vec<&str> = grant
        .scope
        .split_whitespace()
        .filter(|s| !for_mfa_api || MFA_SCOPES.contains(s))
        .collect();
    let scope = scope.join(" ");
    let expires_in = if for_mfa_api {
        MFA_ACCESS_TOKEN_SECONDS
    } else {
        API_ACCESS_TOKEN_SECONDS
    };
    let server_error = |e: anyhow::Error| {
        tracing::error!("token signing failed: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "Token signing failed.",
        )
    };
    let access_token = signer
        .sign(&AccessClaims {
            iss: issuer.clone(),
            sub: grant.user_id.clone(),
            aud: audience,
            iat: now,
            exp: now + expires_in,
            scope: scope.clone(),
            azp: grant.client_id.clone(),
            jti: random::opaque_token(),
        })
        .map_err(server_error)?;
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": expires_in,
    });
    if !scope.is_empty() {
        body["scope"] = scope.clone().into();
    }
    if scope.split(' ').any(|s| s == "openid") {
        let id_token = signer
            .sign(&IdClaims {
                iss: &issuer,
                sub: &grant.user_id,
                aud: &grant.client_id,
                iat: now,
                exp: now + ID_TOKEN_SECONDS,
                email: grant
                    .username
                    .contains('@')
                    .then_some(grant.username.as_str()),
                name: &grant.username,
            })
            .map_err(server_error)?;
        body["id_token"] = id_token.into();
    }
    if let Some(code) = grant.recovery_code {
        body["recovery_code"] = code.into();
    }
    Ok(body)
}
