//! `/mfa/associate`, `/mfa/challenge`, `GET /mfa/authenticators` and
//! `DELETE /mfa/authenticators/{id}`.

use super::{authenticate_client, check_client};
use crate::server::AppState;
use crate::server::config::MFA_GRANTS;
use crate::server::error::ApiError;
use crate::server::jwt::{AccessClaims, TokenRejection};
use crate::server::params::{ClientCredentials, Params, bearer_token};
use crate::server::store::{
    Association, AuthenticatorView, Challenge, ChallengeTypes, Enrollment, MfaSession,
    parse_enrollment,
};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use std::sync::Arc;

/// Who is calling a bearer-protected `/mfa/` endpoint.
enum Caller {
    MfaToken { session: MfaSession, token: String },
    Access(std::sync::Arc<AccessClaims>),
}

impl Caller {
    /// The user, if the caller may use `scope` (an `mfa_token` only where `mfa_token_ok`),
    /// and the `mfa_token` when that is what the caller presented.
    fn user_for(
        self,
        scope: &str,
        mfa_token_ok: bool,
    ) -> Result<(String, Option<String>), ApiError> {
        match self {
            Caller::MfaToken { session, token } if mfa_token_ok => {
                Ok((session.user_id, Some(token)))
            }
            Caller::MfaToken { .. } => Err(ApiError::insufficient_scope(scope)),
            Caller::Access(claims) if claims.has_scope(scope) => Ok((claims.sub.clone(), None)),
            Caller::Access(_) => Err(ApiError::insufficient_scope(scope)),
        }
    }
}

/// Resolves the bearer: an `mfa_token` (opaque) or an access token for `<base>/mfa/`.
/// `error` is the code for an unusable token (Auth0 says `invalid_grant` on associate).
async fn caller(
    state: &AppState,
    headers: &HeaderMap,
    error: &'static str,
) -> Result<Caller, ApiError> {
    let token = bearer_token(headers)
        .ok_or_else(|| ApiError::unauthorized(error, "Missing Authorization: Bearer token."))?;
    let now = state.clock.now();
    if !token.contains('.') {
        return match state.store().session(token, None, now) {
            Ok(session) => Ok(Caller::MfaToken {
                session,
                token: token.to_owned(),
            }),
            Err(e) if e.error == "expired_token" => Err(ApiError::unauthorized(
                "expired_token",
                "mfa_token is expired",
            )),
            Err(_) => Err(ApiError::unauthorized(
                error,
                "The mfa_token provided is invalid. Try getting a new token.",
            )),
        };
    }
    let [plain, https] = state.mfa_audiences(headers);
    let claims = state
        .signer()
        .await?
        .verify_access(token, &state.issuer(headers), &[&plain, &https], now)
        .map_err(|rejection| {
            ApiError::unauthorized(
                error,
                match rejection {
                    TokenRejection::Expired => "The access token is expired.",
                    TokenRejection::WrongAudience => {
                        "The access token was not issued for the MFA API audience."
                    }
                    TokenRejection::Malformed => "The access token is invalid.",
                },
            )
        })?;
    if !state.store().user_exists(&claims.sub) {
        return Err(ApiError::unauthorized(error, "The user no longer exists."));
    }
    Ok(Caller::Access(claims))
}

pub async fn associate(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Association>, ApiError> {
    let caller = caller(&state, &headers, "invalid_grant").await?;
    let params = Params::parse(&headers, &body)?;
    // Optional here: SDKs differ, and the bearer already identifies the user.
    if let Some(credentials) = ClientCredentials::from_request(&headers, &params)? {
        check_client(&state, &headers, &credentials, false)?;
        if let Caller::MfaToken { session, .. } = &caller
            && session.client_id != credentials.client_id
        {
            return Err(ApiError::invalid_grant(
                "The mfa_token was issued to another client.",
            ));
        }
    }
    let mut enrollment = parse_enrollment(
        params.list("authenticator_types")?,
        params.list("oob_channels")?,
        params.optional("phone_number")?,
        params.optional("email")?,
    )?;
    if let Enrollment::Push { base_url } = &mut enrollment {
        *base_url = state.base_url(&headers);
    }
    let (user_id, mfa_token) = caller.user_for("enroll", true)?;
    let now = state.clock.now();
    let association = state
        .store()
        .associate(&user_id, mfa_token.as_deref(), enrollment, now)?;
    Ok(Json(association))
}

pub async fn challenge(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Challenge>, ApiError> {
    let params = Params::parse(&headers, &body)?;
    let client = authenticate_client(&state, &headers, &params)?;
    if !client
        .grant_types
        .iter()
        .any(|g| MFA_GRANTS.contains(&g.as_str()))
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "unauthorized_client",
            "The MFA grant types are not allowed for the client.",
        ));
    }
    let mfa_token = params.required("mfa_token")?;
    let types = match params.list("challenge_type")? {
        None => ChallengeTypes {
            otp: true,
            oob: true,
        },
        Some(list) => {
            let mut types = ChallengeTypes {
                otp: false,
                oob: false,
            };
            for item in &list {
                match item.as_str() {
                    "otp" => types.otp = true,
                    "oob" => types.oob = true,
                    other => {
                        return Err(ApiError::invalid_request(format!(
                            "Unsupported challenge_type: {other} (use otp and/or oob)"
                        )));
                    }
                }
            }
            types
        }
    };
    let authenticator_id = params.optional("authenticator_id")?;
    let now = state.clock.now();
    let challenge =
        state
            .store()
            .challenge(mfa_token, &client.client_id, types, authenticator_id, now)?;
    Ok(Json(challenge))
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Vec<AuthenticatorView>>, ApiError> {
    let (user_id, _) = caller(&state, &headers, "invalid_token")
        .await?
        .user_for("read:authenticators", true)?;
    let views = state.store().list(&user_id)?;
    Ok(Json(views))
}

pub async fn delete(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (user_id, _) = caller(&state, &headers, "invalid_token")
        .await?
        .user_for("remove:authenticators", false)?;
    state.store().delete(&user_id, &id)?;
    Ok(StatusCode::NO_CONTENT)
}
