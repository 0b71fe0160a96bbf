//! The API's one error type: [`ApiError`] with a stable [`ErrorCode`]
//! (the machine's refusal codes and the API's own), answered as
//! `{"error": "<sentence>", "code": "<code>"}` with the code's HTTP status.

use autosync_service::{Refusal, RefusalCode};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The code of an API error: a refusal's code ([`RefusalCode`]) or one of
/// the API's own. The kebab-case names are stable: programs match on them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    UnknownMa,
    UnknownProfile,
    HeldByThreshold,
    MaDisabled,
    NotRunning,
    Busy,
    NothingToApprove,
    NothingToReject,
    NotInMaintenance,
    NeedsMa,
    GlobalOnly,
    EngineFailed,
    ServiceStopping,
    ReloadRefused,
    /// No bearer token, or not the service's.
    Unauthorized,
    /// No such control action.
    UnknownAction,
    /// The body is not the JSON the route takes.
    BadBody,
    /// This service does not reload its configuration over the API.
    ReloadUnavailable,
    /// This service does not publish its events over the API.
    EventsUnavailable,
    /// No route of the API has that path.
    NotFound,
    /// The route does not take that method (the answer's `allow` header
    /// says which it takes).
    MethodNotAllowed,
    /// The body is larger than the API takes.
    BodyTooLarge,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 22] = [
        ErrorCode::UnknownMa,
        ErrorCode::UnknownProfile,
        ErrorCode::HeldByThreshold,
        ErrorCode::MaDisabled,
        ErrorCode::NotRunning,
        ErrorCode::Busy,
        ErrorCode::NothingToApprove,
        ErrorCode::NothingToReject,
        ErrorCode::NotInMaintenance,
        ErrorCode::NeedsMa,
        ErrorCode::GlobalOnly,
        ErrorCode::EngineFailed,
        ErrorCode::ServiceStopping,
        ErrorCode::ReloadRefused,
        ErrorCode::Unauthorized,
        ErrorCode::UnknownAction,
        ErrorCode::BadBody,
        ErrorCode::ReloadUnavailable,
        ErrorCode::EventsUnavailable,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::BodyTooLarge,
    ];

    /// The code's name (`unknown-ma`), as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownMa => "unknown-ma",
            ErrorCode::UnknownProfile => "unknown-profile",
            ErrorCode::HeldByThreshold => "held-by-threshold",
            ErrorCode::MaDisabled => "ma-disabled",
            ErrorCode::NotRunning => "not-running",
            ErrorCode::Busy => "busy",
            ErrorCode::NothingToApprove => "nothing-to-approve",
            ErrorCode::NothingToReject => "nothing-to-reject",
            ErrorCode::NotInMaintenance => "not-in-maintenance",
            ErrorCode::NeedsMa => "needs-ma",
            ErrorCode::GlobalOnly => "global-only",
            ErrorCode::EngineFailed => "engine-failed",
            ErrorCode::ServiceStopping => "service-stopping",
            ErrorCode::ReloadRefused => "reload-refused",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::UnknownAction => "unknown-action",
            ErrorCode::BadBody => "bad-body",
            ErrorCode::ReloadUnavailable => "reload-unavailable",
            ErrorCode::EventsUnavailable => "events-unavailable",
            ErrorCode::NotFound => "not-found",
            ErrorCode::MethodNotAllowed => "method-not-allowed",
            ErrorCode::BodyTooLarge => "body-too-large",
        }
    }

    /// The code by name (`None` for a code this version does not know).
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The HTTP status it is answered with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::UnknownMa
            | ErrorCode::UnknownProfile
            | ErrorCode::UnknownAction
            | ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::ServiceStopping => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Busy | ErrorCode::HeldByThreshold | ErrorCode::NotRunning => {
                StatusCode::CONFLICT
            }
            ErrorCode::MaDisabled
            | ErrorCode::NothingToApprove
            | ErrorCode::NothingToReject
            | ErrorCode::NotInMaintenance
            | ErrorCode::NeedsMa
            | ErrorCode::GlobalOnly
            | ErrorCode::EngineFailed
            | ErrorCode::ReloadRefused
            | ErrorCode::BadBody
            | ErrorCode::ReloadUnavailable
            | ErrorCode::EventsUnavailable => StatusCode::BAD_REQUEST,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<RefusalCode> for ErrorCode {
    fn from(code: RefusalCode) -> ErrorCode {
        match code {
            RefusalCode::UnknownMa => ErrorCode::UnknownMa,
            RefusalCode::UnknownProfile => ErrorCode::UnknownProfile,
            RefusalCode::HeldByThreshold => ErrorCode::HeldByThreshold,
            RefusalCode::MaDisabled => ErrorCode::MaDisabled,
            RefusalCode::NotRunning => ErrorCode::NotRunning,
            RefusalCode::Busy => ErrorCode::Busy,
            RefusalCode::NothingToApprove => ErrorCode::NothingToApprove,
            RefusalCode::NothingToReject => ErrorCode::NothingToReject,
            RefusalCode::NotInMaintenance => ErrorCode::NotInMaintenance,
            RefusalCode::NeedsMa => ErrorCode::NeedsMa,
            RefusalCode::GlobalOnly => ErrorCode::GlobalOnly,
            RefusalCode::EngineFailed => ErrorCode::EngineFailed,
            RefusalCode::ServiceStopping => ErrorCode::ServiceStopping,
            RefusalCode::ReloadRefused => ErrorCode::ReloadRefused,
        }
    }
}

/// The body of every error answer. `error` stays a plain string, as
/// older clients read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub code: ErrorCode,
}

/// The one error type of the API's routes: its status follows its code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status: code.status(),
            code,
            message: message.into(),
        }
    }

    pub(crate) fn unauthorized() -> ApiError {
        ApiError::new(ErrorCode::Unauthorized, "missing or wrong bearer token")
    }

    pub(crate) fn stopping() -> ApiError {
        ApiError::new(ErrorCode::ServiceStopping, "the service is stopping")
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        ApiError::new(refusal.code.into(), refusal.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            code: self.code,
        };
        (self.status, Json(body)).into_response()
    }
}
