//! The test-control API (`/__control/*`): what a harness needs that the public API cannot
//! do. The contract is fixed (README, "Test-control API"); `serve --no-control` removes it.

use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::store::{Message, PushAnswer, PushRef};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

pub async fn create_user(State(state): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    let now = state.clock.now();
    let (username, password) = state.store().provision_user(now);
    (
        StatusCode::CREATED,
        Json(json!({"username": username, "password": password})),
    )
}

pub async fn messages(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Vec<Message>>, ApiError> {
    let to = query
        .get("to")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::missing("to"))?;
    Ok(Json(state.store().messages(to)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    advance_seconds: u64,
}

pub async fn advance_clock(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let advance: Advance = serde_json::from_slice(&body).map_err(|e| {
        ApiError::invalid_request(format!(
            "Expected {{\"advance_seconds\": <non-negative integer>}}: {e}"
        ))
    })?;
    state.clock.advance(advance.advance_seconds);
    Ok(StatusCode::NO_CONTENT)
}

pub async fn clock(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({"now": state.clock.now(), "offset_seconds": state.clock.offset()}))
}

/// `POST /__control/push`: the device's answer to a push, standing in for the Guardian app.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PushReply {
    /// The push challenge's or enrollment's `oob_code`...
    #[serde(default)]
    oob_code: Option<String>,
    /// ...or the `enrollment_tx_id` of an enrollment's `barcode_uri`.
    #[serde(default)]
    enrollment_tx_id: Option<String>,
    action: PushAction,
    /// The name the enrolled device gets in the authenticator list.
    #[serde(default)]
    device_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum PushAction {
    Approve,
    Reject,
}

pub async fn push(State(state): State<Arc<AppState>>, body: Bytes) -> Result<StatusCode, ApiError> {
    let usage = "Expected {\"oob_code\" or \"enrollment_tx_id\": \"...\", \"action\": \"approve\" | \"reject\", \"device_name\"?: \"...\"}";
    let reply: PushReply = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid_request(format!("{usage}: {e}")))?;
    let which = match (&reply.oob_code, &reply.enrollment_tx_id) {
        (Some(code), None) => PushRef::OobCode(code),
        (None, Some(tx)) => PushRef::EnrollmentTx(tx),
        _ => return Err(ApiError::invalid_request(usage)),
    };
    let answer = match reply.action {
        PushAction::Approve => PushAnswer::Approve {
            device_name: reply.device_name,
        },
        PushAction::Reject => PushAnswer::Reject,
    };
    let now = state.clock.now();
    state.store().answer_push(which, answer, now)?;
    Ok(StatusCode::NO_CONTENT)
}
