//! The team lead's settings (issue 17): away reasons agents may pick, per-topic service
//! targets and survey kind, and how long report aggregates are kept.

use serde::{Deserialize, Serialize};

/// `[agents]`: what an agent may say when it goes away.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AgentSettings {
    /// The reasons the console offers with `away` (`status.reason`). The hub's own
    /// `missed_offers` is always allowed besides these.
    pub away_reasons: Vec<String>,
}

impl Default for AgentSettings {
    fn default() -> Self {
        AgentSettings {
            away_reasons: ["break", "lunch", "meeting", "training", "other"]
                .map(String::from)
                .to_vec(),
        }
    }
}

impl AgentSettings {
    /// Whether a client may send this away reason.
    pub fn allows(&self, reason: &str) -> bool {
        self.away_reasons.iter().any(|r| r == reason)
    }
}

/// A topic's service-level targets; a target left out is not measured.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SlaTargets {
    /// Longest acceptable wait from `start` to the first `joined`.
    pub wait_ms: Option<u64>,
    /// Longest acceptable time from `start` to the first agent message.
    pub first_response_ms: Option<u64>,
}

impl SlaTargets {
    pub fn is_set(&self) -> bool {
        self.wait_ms.is_some() || self.first_response_ms.is_some()
    }
}

/// The satisfaction survey a topic's customers get after close.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SurveyKind {
    /// Customer satisfaction, 1–5.
    #[default]
    Csat,
    /// Net promoter score, 0–10.
    Nps,
}

impl SurveyKind {
    /// The scores `rate` accepts for this survey.
    pub fn accepts(self, score: u8) -> bool {
        match self {
            SurveyKind::Csat => (1..=5).contains(&score),
            SurveyKind::Nps => score <= 10,
        }
    }
}

/// `[reports]`: the hourly aggregates behind `GET /v1/reports`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReportSettings {
    /// Hourly buckets older than this expire from Redis.
    pub keep_days: u64,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings { keep_days: 400 }
    }
}

impl ReportSettings {
    pub fn keep_ms(&self) -> u64 {
        self.keep_days.saturating_mul(86_400_000)
    }
}

/// Longest wrap-up a topic may set: anything longer is taken for a unit mistake.
const MAX_WRAP_UP_S: u64 = 3_600;

/// Checks the topics (names, timeouts, widening, wrap-up) and the desk sections.
pub(super) fn validate_topics(
    topics: &[super::TopicConfig],
    agents: &AgentSettings,
    reports: &ReportSettings,
) -> Result<(), String> {
    if topics.is_empty() {
        return Err("at least one [[topic]] is needed".into());
    }
    let mut names = std::collections::HashSet::new();
    for topic in topics {
        if topic.name.is_empty() || !names.insert(topic.name.as_str()) {
            return Err(format!(
                "topic names must be non-empty and unique: {:?}",
                topic.name
            ));
        }
        if topic.offer_timeout_ms == 0 || topic.transfer_timeout_ms == 0 {
            return Err(format!("topic {}: timeouts must be positive", topic.name));
        }
        for step in &topic.expand {
            if let Some(skill) = step.drop_skills.iter().find(|s| !topic.skills.contains(s)) {
                return Err(format!(
                    "topic {}: expand drops skill {skill:?} which the topic does not require",
                    topic.name
                ));
            }
        }
        if topic.wrap_up_s > MAX_WRAP_UP_S {
            return Err(format!(
                "topic {}: wrap_up_s is seconds, at most {MAX_WRAP_UP_S}",
                topic.name
            ));
        }
        if let Some(hours) = &topic.hours {
            let compiled = hours
                .compile()
                .map_err(|e| format!("topic {}: hours: {e}", topic.name))?;
            // Kept: asking the schedule later never parses it again.
            let _already = topic.compiled_hours.0.set(Some(compiled));
        }
        if topic.sla.wait_ms == Some(0) || topic.sla.first_response_ms == Some(0) {
            return Err(format!(
                "topic {}: sla targets must be positive",
                topic.name
            ));
        }
    }
    let valid_reason = |r: &String| {
        (1..=32).contains(&r.len())
            && r.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    if agents.away_reasons.is_empty() || !agents.away_reasons.iter().all(valid_reason) {
        return Err("agents.away_reasons: at least one, each 1-32 of [a-z0-9_-]".into());
    }
    if !(1..=3_650).contains(&reports.keep_days) {
        return Err("reports.keep_days must be 1 to 3650".into());
    }
    Ok(())
}

/// Where a live conversation stands against one SLA target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaState {
    /// Not reached yet, under 80 % of the target.
    Ok,
    /// Not reached yet, at 80 % of the target or more.
    AtRisk,
    /// Not reached within the target (reached late, or still waiting past it).
    Breached,
    /// Reached within the target.
    Met,
}

/// One target of a live conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SlaMark {
    pub target_ms: u64,
    /// Time to the milestone, or so far when not reached.
    pub elapsed_ms: u64,
    pub state: SlaState,
}

/// The share of a target after which a conversation is at risk.
const AT_RISK_PERCENT: u64 = 80;

impl SlaMark {
    /// Measured from `since` to `reached` (or `now` while not reached).
    pub fn of(target_ms: u64, since: u64, reached: Option<u64>, now: u64) -> SlaMark {
        let elapsed_ms = reached.unwrap_or(now).saturating_sub(since);
        let state = match reached {
            Some(_) if elapsed_ms <= target_ms => SlaState::Met,
            Some(_) => SlaState::Breached,
            None if elapsed_ms > target_ms => SlaState::Breached,
            None if elapsed_ms.saturating_mul(100) >= target_ms.saturating_mul(AT_RISK_PERCENT) => {
                SlaState::AtRisk
            }
            None => SlaState::Ok,
        };
        SlaMark {
            target_ms,
            elapsed_ms,
            state,
        }
    }
}

/// A live conversation against its topic's targets (a target not set is left out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SlaMarks {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<SlaMark>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_response: Option<SlaMark>,
}

impl SlaTargets {
    /// Marks for a conversation started at `created_at`, answered (first `joined`) and
    /// first responded to at the given times, if yet.
    pub fn marks(
        &self,
        created_at: u64,
        answered_at: Option<u64>,
        first_response_at: Option<u64>,
        now: u64,
    ) -> SlaMarks {
        SlaMarks {
            wait: self
                .wait_ms
                .map(|t| SlaMark::of(t, created_at, answered_at, now)),
            first_response: self
                .first_response_ms
                .map(|t| SlaMark::of(t, created_at, first_response_at, now)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sla_marks_follow_the_target() {
        let target = SlaTargets {
            wait_ms: Some(1_000),
            first_response_ms: None,
        };
        let state = |answered, now| target.marks(0, answered, None, now).wait.map(|m| m.state);
        assert_eq!(state(None, 799), Some(SlaState::Ok));
        assert_eq!(state(None, 800), Some(SlaState::AtRisk));
        assert_eq!(state(None, 1_000), Some(SlaState::AtRisk));
        assert_eq!(state(None, 1_001), Some(SlaState::Breached));
        assert_eq!(state(Some(1_000), 5_000), Some(SlaState::Met));
        assert_eq!(state(Some(1_001), 5_000), Some(SlaState::Breached));
        assert!(target.marks(0, None, None, 0).first_response.is_none());
    }

    #[test]
    fn surveys_accept_their_scale() {
        assert!(SurveyKind::Csat.accepts(1) && SurveyKind::Csat.accepts(5));
        assert!(!SurveyKind::Csat.accepts(0) && !SurveyKind::Csat.accepts(6));
        assert!(SurveyKind::Nps.accepts(0) && SurveyKind::Nps.accepts(10));
        assert!(!SurveyKind::Nps.accepts(11));
    }
}
