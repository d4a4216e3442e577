//! The one error type of the hub, and its mapping onto the contract's error codes.
//!
//! Storage and IO details never reach a client: they are logged where they happen and
//! surface as `unavailable`.

use serde::Serialize;

/// The contract's error codes (`docs/protocol.md`, "Requests, acks and errors").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    TooLarge,
    RateLimited,
    Unavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest | ErrorCode::TooLarge => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::RateLimited => 429,
            ErrorCode::Unavailable => 503,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("too many frames, slow down")]
    RateLimited,
    /// A flood limit (per address or visitor, across connections) was reached.
    #[error("{0}")]
    RateLimitedBecause(String),
    /// Too many chats wait in the topic: the customer gets the offline form instead.
    #[error("{0}")]
    QueueFull(String),
    /// The topic is outside its business hours: the customer gets the offline form.
    #[error("{0}")]
    Closed(String),
    /// Storage could not be reached; the request was not applied and may be retried.
    #[error("storage unavailable, retry later")]
    Unavailable,
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::BadRequest(_) => ErrorCode::BadRequest,
            Error::Unauthorized(_) => ErrorCode::Unauthorized,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::NotFound(_) => ErrorCode::NotFound,
            Error::Conflict(_) => ErrorCode::Conflict,
            Error::TooLarge(_) => ErrorCode::TooLarge,
            Error::RateLimited | Error::RateLimitedBecause(_) => ErrorCode::RateLimited,
            Error::Unavailable | Error::QueueFull(_) | Error::Closed(_) => ErrorCode::Unavailable,
        }
    }

    /// The error frame's `reason`, for errors a client should tell apart from their code.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            Error::QueueFull(_) => Some("queue_full"),
            Error::Closed(_) => Some("closed"),
            _ => None,
        }
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        Error::BadRequest(msg.into())
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        Error::Forbidden(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        Error::NotFound(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        Error::Conflict(msg.into())
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(err: crate::store::StoreError) -> Self {
        match err {
            crate::store::StoreError::Unavailable(cause) => {
                tracing::warn!(cause = %cause, "storage unavailable");
                Error::Unavailable
            }
            crate::store::StoreError::Corrupt(cause) => {
                tracing::error!(cause = %cause, "corrupt record in storage");
                Error::Unavailable
            }
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::router::RouteError> for Error {
    /// The router's refusals as the contract's codes, in words a client can act on.
    fn from(err: crate::router::RouteError) -> Self {
        use crate::router::RouteError as E;
        match err {
            E::UnknownOffer => Error::not_found("no such offer (expired, taken or withdrawn)"),
            E::NotYourOffer => Error::forbidden("that offer was made to someone else"),
            E::UnknownConversation => Error::not_found("the conversation is not routed"),
            E::UnknownAgent => Error::not_found("unknown agent"),
            E::UnknownTopic => Error::not_found("unknown topic"),
            E::NotAssigned => Error::conflict("the conversation is not assigned"),
            E::AgentUnavailable => Error::conflict("that agent cannot take it now"),
            E::AlreadyOwner => Error::conflict("the agent already owns the conversation"),
            E::TransferPending => Error::conflict("a transfer is already pending"),
            E::NotQueued => Error::conflict("the conversation is no longer waiting in the queue"),
        }
    }
}
