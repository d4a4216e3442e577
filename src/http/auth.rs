//! Bearer-token callers of the REST API: the admin, or an agent (maybe a supervisor);
//! and the throttle on failed bearer tokens per client address ([`LoginThrottle`]).

use axum::http::HeaderMap;

use crate::{auth, error::Error, hub::Hub, store::AgentRecord};

pub enum Caller {
    Admin,
    Agent(AgentRecord),
}

impl Caller {
    pub fn is_admin_or_supervisor(&self) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Agent(agent) => agent.supervisor,
        }
    }
}

/// The `Authorization: Bearer` token, or `unauthorized` without one.
pub fn bearer(headers: &HeaderMap) -> Result<&str, Error> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Unauthorized("a bearer token is required".into()))
}

pub async fn caller(hub: &Hub, headers: &HeaderMap) -> Result<Caller, Error> {
    let token = bearer(headers)?;
    if auth::same_secret(token, hub.config.admin_token.expose()) {
        return Ok(Caller::Admin);
    }
    match hub
        .store
        .agent_by_token_hash(&auth::token_hash(token))
        .await?
    {
        Some(agent) => Ok(Caller::Agent(agent)),
        None => Err(Error::Unauthorized("unknown token".into())),
    }
}

/// Whether a plain agent may see the history of `visitor`: it serves the visitor's open
/// conversation, or joined one of its tickets still kept.
pub async fn serves(hub: &Hub, agent: &str, visitor: &str) -> Result<bool, Error> {
    if hub.store.served(visitor, agent).await? {
        return Ok(true);
    }
    let Some(open) = hub.store.visitor_open_conversation(visitor).await? else {
        return Ok(false);
    };
    Ok(hub
        .store
        .conversation(&open)
        .await?
        .is_some_and(|record| record.agent.as_deref() == Some(agent)))
}

pub async fn admin(hub: &Hub, headers: &HeaderMap) -> Result<(), Error> {
    match caller(hub, headers).await? {
        Caller::Admin => Ok(()),
        Caller::Agent(_) => Err(Error::forbidden("admin only")),
    }
}

pub async fn admin_or_supervisor(hub: &Hub, headers: &HeaderMap) -> Result<Caller, Error> {
    let caller = caller(hub, headers).await?;
    if caller.is_admin_or_supervisor() {
        Ok(caller)
    } else {
        Err(Error::forbidden("admins and supervisors only"))
    }
}

// --- Failed logins (issue 15) ---------------------------------------------------------

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
    Json,
};

use crate::{config::AuthSettings, error::ErrorCode};

/// Addresses remembered at most; past it, windows that ended are forgotten first (and,
/// under a flood of fresh addresses, all of them: a throttle must not grow without bound).
const MAX_TRACKED: usize = 50_000;

/// Failed bearer tokens per client address in a fixed window. Once an address reaches
/// `max_failures`, each bearer request from it is answered 429 without looking at the
/// token until its window ends, so guessing gets no answer either way. A request with a
/// valid token never counts. The lock is a std `Mutex`: held for a map lookup, never
/// across an `.await`.
pub struct LoginThrottle {
    settings: AuthSettings,
    windows: Mutex<HashMap<IpAddr, (u64, u32)>>,
    outcomes: prometheus::IntCounterVec,
}

impl LoginThrottle {
    pub fn new(settings: AuthSettings, outcomes: prometheus::IntCounterVec) -> Self {
        LoginThrottle {
            settings,
            windows: Mutex::new(HashMap::new()),
            outcomes,
        }
    }

    fn window_ms(&self) -> u64 {
        self.settings.failure_window_s.saturating_mul(1000)
    }

    /// Milliseconds until `ip` may try again, when it is throttled now.
    fn blocked_for(&self, ip: IpAddr, now: u64) -> Option<u64> {
        let windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let &(start, failures) = windows.get(&ip)?;
        let end = start.saturating_add(self.window_ms());
        (now < end && failures >= self.settings.max_failures).then(|| end - now)
    }

    fn failed(&self, ip: IpAddr, now: u64) {
        let window = self.window_ms();
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&ip) {
            windows.retain(|_, (start, _)| now < start.saturating_add(window));
            if windows.len() >= MAX_TRACKED {
                windows.clear();
            }
        }
        let entry = windows.entry(ip).or_insert((now, 0));
        if now >= entry.0.saturating_add(window) {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

/// Middleware: answers 429 `rate_limited` to bearer requests from a throttled address,
/// and counts each 401 answered to a bearer request against its address.
pub async fn throttle_failed_logins(
    State(throttle): State<Arc<LoginThrottle>>,
    request: Request,
    next: Next,
) -> Response {
    let bearer = request.headers().contains_key(header::AUTHORIZATION);
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let (true, Some(ip)) = (bearer, peer) else {
        return next.run(request).await;
    };
    let now = crate::clock::now_ms();
    if let Some(wait_ms) = throttle.blocked_for(ip, now) {
        throttle.outcomes.with_label_values(&["throttled"]).inc();
        let retry_after = wait_ms.div_ceil(1000).max(1).to_string();
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after)],
            Json(serde_json::json!({
                "code": ErrorCode::RateLimited,
                "message": "too many failed logins from this address; retry later",
            })),
        )
            .into_response();
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        throttle.outcomes.with_label_values(&["rejected"]).inc();
        throttle.failed(ip, now);
        if throttle.blocked_for(ip, now).is_some() {
            tracing::warn!(client = %ip, "failed logins: address throttled");
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_throttle_an_address_for_its_window() {
        let settings = AuthSettings {
            max_failures: 3,
            failure_window_s: 10,
        };
        let outcomes =
            prometheus::IntCounterVec::new(prometheus::Opts::new("t", "t"), &["outcome"])
                .expect("metric");
        let throttle = LoginThrottle::new(settings, outcomes);
        let (a, b): (IpAddr, IpAddr) = ([127, 0, 0, 2].into(), [127, 0, 0, 3].into());
        for _ in 0..2 {
            throttle.failed(a, 1_000);
        }
        assert_eq!(throttle.blocked_for(a, 1_000), None);
        throttle.failed(a, 2_000);
        assert_eq!(throttle.blocked_for(a, 2_000), Some(9_000));
        assert_eq!(throttle.blocked_for(b, 2_000), None, "per address");
        assert_eq!(throttle.blocked_for(a, 11_000), None, "window over");
        throttle.failed(a, 11_000);
        assert_eq!(throttle.blocked_for(a, 11_000), None, "a new window");
    }
}
