//! Reports (issue 17): hourly aggregates kept in Redis, written once per ticket, per
//! rating and per agent state change, and read back as a report per hour, day or week
//! and per topic or agent, so a report never scans transcripts (`docs/reports.md`).
//!
//! - `facts` — what a ticket (or its rating) adds, read from its transcript;
//! - `counters` — those facts as hash-field increments, and the figures of a group;
//! - `histogram` — log-scaled bins for percentiles within 2.5 %;
//! - `time` — UTC calendar arithmetic (days, Monday weeks, RFC 3339);
//! - `csv` — the CSV rendering of a [`Report`].
//!
//! The [`Reports`] handle owns a store and the desk's settings (topics' SLA targets and
//! surveys, how long buckets are kept). Must not know the hub or sockets: the ticket
//! flush reaches it through [`crate::tickets::TicketSink`], the routing task calls
//! [`Reports::record_agent_state`].

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
    store::{BucketKey, HourSpan, StateRecord, Store, StoreError, StoreResult},
    tickets::{Ticket, TicketSink},
};
use counters::Counters;

/// Most buckets one report may hold.
pub const MAX_BUCKETS: u64 = 10_000;
/// Longest period one report may cover (ten years: the longest `keep_days`).
pub const MAX_PERIOD_MS: u64 = 3_660 * time::DAY_MS;
/// Attempts at advancing an agent's state when other writers keep coming first.
const STATE_ATTEMPTS: usize = 5;

/// What an agent is doing, as the routing task tells it at each change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentStateSample {
    /// `available`, `away`, `wrap_up` or `offline` (offline time is not counted).
    pub status: String,
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
            topics: Arc::new(topics),
            keep_ms: config.reports.keep_ms(),
        }
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
        self.store
            .report_ticket_topic(
                facts.hour,
                &facts.topic,
                &facts.ticket_id,
                &counters::of_ticket(&facts),
                expire_at,
            )
            .await?;
        for agent in &facts.agents {
            self.store
                .report_ticket_agent(
                    &agent.agent,
                    facts.hour,
                    &facts.ticket_id,
                    &counters::of_agent(agent),
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
        self.store
            .report_rating_topic(
                rating.hour,
                &rating.topic,
                &rating.ticket_id,
                &increments,
                expire_at,
            )
            .await?;
        if let Some(agent) = &rating.agent {
            self.store
                .report_rating_agent(
                    agent,
                    rating.hour,
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
    /// expired or more than a day ahead of `now_ms` are not read).
    pub async fn report(&self, query: &ReportQuery, now_ms: u64) -> StoreResult<Report> {
        let (groups, surveys): (Vec<String>, Vec<Vec<SurveyKind>>) = match query.by {
            GroupBy::Topic => self
                .topics
                .iter()
                .map(|t| (t.name.clone(), vec![t.survey]))
                .unzip(),
            GroupBy::Agent => {
                let mut kinds: Vec<SurveyKind> = Vec::new();
                for topic in self.topics.iter() {
                    if !kinds.contains(&topic.survey) {
                        kinds.push(topic.survey);
                    }
                }
                let mut ids: Vec<String> = self
                    .store
                    .agents()
                    .await?
                    .into_iter()
                    .map(|a| a.id)
                    .collect();
                ids.sort();
                let surveys = vec![kinds; ids.len()];
                (ids, surveys)
            }
        };
        let oldest = now_ms.saturating_sub(self.keep_ms + HOUR_MS);
        let newest = now_ms.saturating_add(time::DAY_MS);
        let hours: Vec<u64> = (query.from..query.to)
            .step_by(HOUR_MS as usize)
            .filter(|h| *h + HOUR_MS > oldest && *h <= newest)
            .collect();
        let mut keys = Vec::with_capacity(hours.len() * groups.len());
        for hour in &hours {
            for group in &groups {
                keys.push(match query.by {
                    GroupBy::Topic => BucketKey::Topic {
                        hour: *hour,
                        topic: group.clone(),
                    },
                    GroupBy::Agent => BucketKey::Agent {
                        agent: group.clone(),
                        hour: *hour,
                    },
                });
            }
        }
        let hashes = self.store.report_buckets(&keys).await?;
        // Bucket starts, clipped to the period.
        let mut starts = Vec::new();
        let mut start = query.bucket.start_of(query.from);
        while start < query.to {
            starts.push(start.max(query.from));
            start += query.bucket.len_ms();
        }
        let mut sums = vec![vec![Counters::default(); groups.len()]; starts.len()];
        for (i, hour) in hours.iter().enumerate() {
            let bucket = starts.partition_point(|s| s <= hour) - 1;
            for g in 0..groups.len() {
                sums[bucket][g].add(&hashes[i * groups.len() + g]);
            }
        }
        let agent = query.by == GroupBy::Agent;
        let mut totals = vec![Counters::default(); groups.len()];
        let mut buckets = Vec::with_capacity(starts.len());
        for (b, start) in starts.iter().enumerate() {
            let end = starts.get(b + 1).copied().unwrap_or(query.to);
            let figures = groups
                .iter()
                .enumerate()
                .map(|(g, name)| {
                    totals[g].merge(&sums[b][g]);
                    sums[b][g].figures(name, &surveys[g], agent)
                })
                .collect();
            buckets.push(BucketReport {
                start: *start,
                end,
                start_iso: time::format_iso(*start),
                groups: figures,
            });
        }
        Ok(Report {
            from: query.from,
            to: query.to,
            from_iso: time::format_iso(query.from),
            to_iso: time::format_iso(query.to),
            bucket: query.bucket,
            by: query.by,
            precision: Precision {
                percentile_relative: histogram::RELATIVE_PRECISION,
                exact_below_ms: histogram::LINEAR_UNTIL_MS,
            },
            groups: groups.clone(),
            buckets,
            totals: totals
                .iter()
                .enumerate()
                .map(|(g, c)| c.figures(&groups[g], &surveys[g], agent))
                .collect(),
        })
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
            counters::of_state_time(&old.status, old.reason.as_deref(), old.busy, end - at);
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
