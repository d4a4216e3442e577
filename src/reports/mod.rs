//! Reports (issue 17): hourly aggregates kept in Redis, written once per ticket, per
//! rating and per agent state change, and read back as a report per hour, day or week
//! and per topic or agent, so a report never scans transcripts (`docs/reports.md`).
//!
//! - `facts` — what a ticket (or its rating) adds, read from its transcript;
//! - `counters` — those facts as hash-field increments, and the figures of a group;
//! - `histogram` — log-scaled bins for percentiles within 2.5 %;
//! - `time` — UTC calendar arithmetic (days, Monday weeks, RFC 3339);
//! - `assemble` — a report from the hours of its period, folded bucket by bucket;
//! - `csv` — the CSV rendering of a [`Report`].
//!
//! The [`Reports`] handle owns a store and the desk's settings (topics' SLA targets and
//! surveys, how long buckets are kept). Must not know the hub or sockets: the ticket
//! flush reaches it through [`crate::tickets::TicketSink`], the routing task calls
//! [`Reports::record_agent_state`].

mod assemble;
mod counters;
pub mod csv;
mod facts;
pub mod histogram;
pub mod time;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use counters::{AgentTime, Chats, Csat, Figures, Nps, Sla, SlaFigure, Stat};
pub use facts::{hour_of, AgentFacts, RatingFacts, TicketFacts, HOUR_MS};

use crate::{
    config::{Config, SlaTargets, SurveyKind},
    protocol::AgentStatus,
    store::{BucketKey, Counted, HourSpan, StateRecord, Store, StoreError, StoreResult},
    tickets::{Ticket, TicketSink},
};
/// Most buckets one report may hold.
pub const MAX_BUCKETS: u64 = 10_000;
/// Longest period one report may cover (ten years: the longest `keep_days`).
pub const MAX_PERIOD_MS: u64 = 3_660 * time::DAY_MS;
/// Attempts at advancing an agent's state when other writers keep coming first.
const STATE_ATTEMPTS: usize = 5;

/// What an agent is doing, as the routing task tells it at each change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStateSample {
    /// Offline time is not counted.
    pub status: AgentStatus,
    /// The away reason (`away` only).
    pub reason: Option<String>,
    /// Holds at least one chat.
    pub busy: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BucketSize {
    Hour,
    Day,
    Week,
}

impl BucketSize {
    /// The start of the bucket holding `ms` (UTC; weeks start on Monday).
    pub fn start_of(self, ms: u64) -> u64 {
        match self {
            BucketSize::Hour => hour_of(ms),
            BucketSize::Day => time::day_of(ms),
            BucketSize::Week => time::week_of(ms),
        }
    }

    pub fn len_ms(self) -> u64 {
        match self {
            BucketSize::Hour => HOUR_MS,
            BucketSize::Day => time::DAY_MS,
            BucketSize::Week => time::WEEK_MS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Topic,
    Agent,
}

/// A checked report query: whole hours `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportQuery {
    pub from: u64,
    pub to: u64,
    pub bucket: BucketSize,
    pub by: GroupBy,
}

impl ReportQuery {
    /// `from` rounded down and `to` up to whole hours; refused (with the reason) when
    /// empty, longer than [`MAX_PERIOD_MS`] or over [`MAX_BUCKETS`] buckets.
    pub fn new(from: u64, to: u64, bucket: BucketSize, by: GroupBy) -> Result<ReportQuery, String> {
        if from >= to {
            return Err("`from` must be before `to`".into());
        }
        if to - from > MAX_PERIOD_MS {
            return Err("a report covers at most 3660 days".into());
        }
        let (from, to) = (hour_of(from), hour_of(to + HOUR_MS - 1));
        let buckets = (to - bucket.start_of(from)).div_ceil(bucket.len_ms());
        if buckets > MAX_BUCKETS {
            return Err(format!(
                "{buckets} buckets: at most {MAX_BUCKETS}; use a larger bucket or a shorter period"
            ));
        }
        Ok(ReportQuery {
            from,
            to,
            bucket,
            by,
        })
    }
}

/// How close the figures are: counts, sums and means are exact; percentiles are within
/// `percentile_relative` of the true value (exact below `exact_below_ms`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Precision {
    pub percentile_relative: f64,
    pub exact_below_ms: u64,
}

/// `GET /v1/reports`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The period, in whole hours: unix ms and RFC 3339.
    pub from: u64,
    pub to: u64,
    pub from_iso: String,
    pub to_iso: String,
    pub bucket: BucketSize,
    pub by: GroupBy,
    pub precision: Precision,
    /// Topic names (config order) or agent ids (sorted).
    pub groups: Vec<String>,
    pub buckets: Vec<BucketReport>,
    /// Each group over the whole period.
    pub totals: Vec<Figures>,
}

/// One bucket, clipped to the period: its figures per group, in `groups` order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketReport {
    pub start: u64,
    pub end: u64,
    pub start_iso: String,
    pub end_iso: String,
    pub groups: Vec<Figures>,
}

#[derive(Debug, Clone)]
struct TopicDesk {
    name: String,
    sla: SlaTargets,
    survey: SurveyKind,
}

/// The reports: records facts and assembles reports. Cheap to clone.
#[derive(Clone)]
pub struct Reports {
    store: Store,
    /// The SLA breach counter, when the hub keeps metrics.
    metrics: Option<crate::metrics::Metrics>,
    topics: Arc<Vec<TopicDesk>>,
    keep_ms: u64,
}

impl Reports {
    pub fn new(store: Store, config: &Config) -> Reports {
        let topics = config
            .topics
            .iter()
            .map(|t| TopicDesk {
                name: t.name.clone(),
                sla: t.sla,
                survey: t.survey,
            })
            .collect();
        Reports {
            store,
            metrics: None,
            topics: Arc::new(topics),
            keep_ms: config.reports.keep_ms(),
        }
    }

    /// Counts SLA breaches in `switchboard_sla_breaches_total` as tickets are counted.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn topic(&self, name: &str) -> Option<&TopicDesk> {
        self.topics.iter().find(|t| t.name == name)
    }

    fn expire_at(&self, hour: u64) -> u64 {
        expire_at(hour, self.keep_ms)
    }

    /// Counts a flushed ticket: its topic's hour and each agent's share, each exactly
    /// once however often it is called. Offline messages are not chats: ignored.
    pub async fn record_ticket(&self, ticket: &Ticket) -> StoreResult<()> {
        let targets = self.topic(&ticket.topic).map(|t| t.sla).unwrap_or_default();
        let Some(facts) = TicketFacts::of(ticket, &targets) else {
            return Ok(());
        };
        let expire_at = self.expire_at(facts.hour);
        let topic = BucketKey::Topic {
            hour: facts.hour,
            topic: facts.topic.clone(),
        };
        let increments = counters::of_ticket(&facts);
        let first_count = self
            .store
            .report_once(
                &topic,
                Counted::Ticket,
                &facts.ticket_id,
                &increments,
                expire_at,
            )
            .await?;
        // Once per ticket, as its topic figures: a repeated flush counts nothing.
        if let (true, Some(metrics)) = (first_count, &self.metrics) {
            for (target, met) in [
                ("wait", facts.sla_wait),
                ("first_response", facts.sla_first_response),
            ] {
                if met == Some(false) {
                    metrics
                        .sla_breaches
                        .with_label_values(&[facts.topic.as_str(), target])
                        .inc();
                }
            }
        }
        for agent in &facts.agents {
            let bucket = BucketKey::Agent {
                agent: agent.agent.clone(),
                hour: facts.hour,
            };
            let increments = counters::of_agent(agent);
            self.store
                .report_once(
                    &bucket,
                    Counted::Ticket,
                    &facts.ticket_id,
                    &increments,
                    expire_at,
                )
                .await?;
        }
        Ok(())
    }

    /// Counts a ticket's rating (when it has one), exactly once, in the hour the chat
    /// opened, for its topic (scored by the topic's survey) and the agent holding the
    /// chat at close.
    pub async fn record_rating(&self, ticket: &Ticket) -> StoreResult<()> {
        let survey = self
            .topic(&ticket.topic)
            .map(|t| t.survey)
            .unwrap_or_default();
        let Some(rating) = RatingFacts::of(ticket, survey) else {
            return Ok(());
        };
        let increments = counters::of_rating(&rating);
        let expire_at = self.expire_at(rating.hour);
        let mut buckets = vec![BucketKey::Topic {
            hour: rating.hour,
            topic: rating.topic.clone(),
        }];
        buckets.extend(rating.agent.iter().map(|agent| BucketKey::Agent {
            agent: agent.clone(),
            hour: rating.hour,
        }));
        for bucket in &buckets {
            self.store
                .report_once(
                    bucket,
                    Counted::Rating,
                    &rating.ticket_id,
                    &increments,
                    expire_at,
                )
                .await?;
        }
        Ok(())
    }

    /// Records that `agent` is in `sample` from `at_unix_ms` on: the time since its
    /// previous sample is added to that sample's state (split across the hours it spans;
    /// `available` while busy also counts as busy; offline is not counted). The same
    /// sample again, or a sample older than the current one, changes nothing, so a
    /// repeated call is harmless. Call it at every change of status, away reason or
    /// busy (first chat taken, last chat gone).
    pub async fn record_agent_state(
        &self,
        agent: &str,
        sample: AgentStateSample,
        at_unix_ms: u64,
    ) -> StoreResult<()> {
        let new = StateRecord {
            status: sample.status,
            reason: sample.reason,
            busy: sample.busy,
            since: at_unix_ms,
        };
        for _ in 0..STATE_ATTEMPTS {
            let current = self.store.report_agent_state(agent).await?;
            let spans = match &current {
                Some((_, old)) if old.since > at_unix_ms => return Ok(()),
                Some((_, old))
                    if (&old.status, &old.reason, old.busy)
                        == (&new.status, &new.reason, new.busy) =>
                {
                    return Ok(())
                }
                Some((_, old)) => spans_of(old, at_unix_ms, self.keep_ms),
                None => Vec::new(),
            };
            let expected = current.as_ref().map(|(raw, _)| raw.as_str());
            if self
                .store
                .report_advance_state(agent, expected, &new, self.keep_ms, &spans)
                .await?
            {
                return Ok(());
            }
        }
        Err(StoreError::Unavailable(format!(
            "agent {agent}: state kept changing under {STATE_ATTEMPTS} attempts"
        )))
    }

    /// Assembles a report from the hourly buckets of `query`'s period (hours already
    /// expired or more than a day ahead of `now_ms` are not read). `bad_request` when
    /// the report would hold more than [`assemble::MAX_CELLS`] figures.
    pub async fn report(&self, query: &ReportQuery, now_ms: u64) -> crate::error::Result<Report> {
        assemble::report(&self.store, &self.topics, self.keep_ms, query, now_ms).await
    }
}

/// An hour's keys expire `keep_ms` after the hour ends.
fn expire_at(hour: u64, keep_ms: u64) -> u64 {
    hour.saturating_add(HOUR_MS).saturating_add(keep_ms)
}

/// The time of `old` until `until` as increments per hour, with each hour's expiry
/// (only the hours still kept `keep_ms` before `until`).
fn spans_of(old: &StateRecord, until: u64, keep_ms: u64) -> Vec<HourSpan> {
    let mut spans = Vec::new();
    let mut at = old.since.max(until.saturating_sub(keep_ms));
    while at < until {
        let hour = hour_of(at);
        let end = (hour + HOUR_MS).min(until);
        let increments =
            counters::of_state_time(old.status, old.reason.as_deref(), old.busy, end - at);
        if !increments.is_empty() {
            spans.push(HourSpan {
                hour,
                increments,
                expire_at: expire_at(hour, keep_ms),
            });
        }
        at = end;
    }
    spans
}

/// The flush and the rating tell the reports through this (logged by `tickets`).
impl TicketSink for Reports {
    fn ticket_stored<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> futures_util::future::BoxFuture<'a, StoreResult<()>> {
        Box::pin(async move {
            self.record_ticket(ticket).await?;
            self.record_rating(ticket).await
        })
    }

    fn rating_attached<'a>(
        &'a self,
        ticket: &'a Ticket,
    ) -> futures_util::future::BoxFuture<'a, StoreResult<()>> {
        Box::pin(self.record_rating(ticket))
    }
}

#[cfg(test)]
mod store_tests;
