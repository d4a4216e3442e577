//! `GET /v1/reports` (admins and supervisors): the query checked here (instants, bucket,
//! grouping), the report assembled by [`crate::reports::Reports`], answered as JSON or,
//! with `Accept: text/csv`, as CSV. `docs/reports.md` is the contract.

use std::sync::Arc;

use axum::{
    extract::{Query, State},
    http::{header, HeaderMap},
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;

use super::{auth, ApiResult};
use crate::{
    error::Error,
    hub::Hub,
    reports::{csv, time, BucketSize, GroupBy, ReportQuery},
};

/// Default period: the last 7 days up to now.
const DEFAULT_PERIOD_MS: u64 = 7 * time::DAY_MS;

/// The raw query: every field text, so a bad value gets our message, not axum's.
#[derive(Deserialize)]
pub struct RawQuery {
    from: Option<String>,
    to: Option<String>,
    bucket: Option<String>,
    by: Option<String>,
}

fn instant(name: &str, value: Option<&str>, default: u64) -> Result<u64, Error> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(text) => time::parse_instant(text).ok_or_else(|| {
            Error::bad_request(format!(
                "`{name}`: {text:?} is not an RFC 3339 time (2026-12-01T00:00:00Z), a date (2026-12-01) or unix ms"
            ))
        }),
    }
}

impl RawQuery {
    fn check(&self, now: u64) -> Result<ReportQuery, Error> {
        let to = instant("to", self.to.as_deref(), now)?;
        let from = instant(
            "from",
            self.from.as_deref(),
            to.saturating_sub(DEFAULT_PERIOD_MS),
        )?;
        let bucket = match self.bucket.as_deref().unwrap_or("day") {
            "hour" => BucketSize::Hour,
            "day" => BucketSize::Day,
            "week" => BucketSize::Week,
            other => {
                return Err(Error::bad_request(format!(
                    "`bucket`: {other:?} is not hour, day or week"
                )))
            }
        };
        let by = match self.by.as_deref().unwrap_or("topic") {
            "topic" => GroupBy::Topic,
            "agent" => GroupBy::Agent,
            other => {
                return Err(Error::bad_request(format!(
                    "`by`: {other:?} is not topic or agent"
                )))
            }
        };
        ReportQuery::new(from, to, bucket, by).map_err(Error::bad_request)
    }
}

/// Whether the caller asked for CSV (`Accept: text/csv`).
fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/csv"))
        })
}

pub async fn report(
    State(hub): State<Arc<Hub>>,
    headers: HeaderMap,
    query: Result<Query<RawQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    auth::admin_or_supervisor(&hub, &headers).await?;
    let Query(raw) = query.map_err(|err| Error::bad_request(format!("bad query: {err}")))?;
    let now = crate::clock::now_ms();
    let query = raw.check(now)?;
    let report = hub.reports.report(&query, now).await?;
    if wants_csv(&headers) {
        return Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            csv::render(&report),
        )
            .into_response());
    }
    Ok(Json(report).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(from: &str, to: &str, bucket: &str, by: &str) -> RawQuery {
        let some = |v: &str| (!v.is_empty()).then(|| v.to_string());
        RawQuery {
            from: some(from),
            to: some(to),
            bucket: some(bucket),
            by: some(by),
        }
    }

    #[test]
    fn queries() {
        let now = time::parse_instant("2026-12-03T14:20:00Z").unwrap();
        let q = raw("", "", "", "").check(now).unwrap();
        assert_eq!(q.to, time::parse_instant("2026-12-03T15:00:00Z").unwrap());
        assert_eq!(q.from, time::parse_instant("2026-11-26T14:00:00Z").unwrap());
        assert_eq!((q.bucket, q.by), (BucketSize::Day, GroupBy::Topic));
        let q = raw("2026-12-01", "2026-12-02", "hour", "agent")
            .check(now)
            .unwrap();
        assert_eq!(q.to - q.from, time::DAY_MS);
        for bad in [
            raw("2026-12-02", "2026-12-01", "", ""),
            raw("2026-12-01", "2026-12-01", "", ""),
            raw("nope", "", "", ""),
            raw("", "", "month", ""),
            raw("", "", "", "team"),
            raw("2020-01-01", "2026-01-01", "hour", ""),
        ] {
            assert!(matches!(bad.check(now), Err(Error::BadRequest(_))));
        }
        let mut csv = HeaderMap::new();
        csv.insert(
            header::ACCEPT,
            "application/json;q=0.5, text/csv".parse().unwrap(),
        );
        assert!(wants_csv(&csv));
        assert!(!wants_csv(&HeaderMap::new()));
    }
}
