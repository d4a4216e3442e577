//! Compiling the configured topics into requirement groups, and the per-group and
//! per-topic indexes.
//!
//! A *group* is one distinct set of required skills. Each topic has a group per widening
//! level (its skills, then minus each `expand` step's drops, cumulatively), and topics
//! with the same requirement share groups. Every group holds the available agents with a
//! free slot that qualify for it (ordered by [`AgentRank`]) and the conversations waiting
//! for an offer that currently require exactly it (ordered by [`QueueKey`]). That is what
//! lets every decision look only at set heads instead of scanning agents or queues.
//!
//! Topics also know which topics *compete* with them for the same agents ([`competes`]),
//! which is what queue positions count across (see `positions.rs`).

use std::collections::{BTreeMap, BTreeSet};

use super::rank::{AgentRank, QueueKey};
use super::types::{RouterConfig, TopicRule};

/// One distinct requirement set and its two indexes.
#[derive(Debug, Default)]
pub(super) struct Group {
    /// Sorted and deduplicated.
    pub(super) skills: Vec<String>,
    /// Available agents below capacity that hold every skill here.
    pub(super) agents: BTreeSet<AgentRank>,
    /// Seeking conversations without an open offer (and not held back) requiring exactly this.
    pub(super) waiting: BTreeSet<QueueKey>,
    /// Aggregates over the Available agents that qualify (free or not), for eta and stats.
    pub(super) available_agents: u32,
    pub(super) available_capacity: u64,
    pub(super) free_capacity: u64,
}

/// One widening level: from `after_ms` of waiting on, `group` is what is required.
#[derive(Debug, Clone, Copy)]
pub(super) struct Level {
    pub(super) after_ms: u64,
    pub(super) group: usize,
}

/// Queue-position bookkeeping for one entry of a topic's ordered queue.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    /// False for escalations into the topic: they compete but have an owner, so the
    /// customer is not sent queue positions.
    pub(super) notify: bool,
    /// The group the conversation requires now (for the eta).
    pub(super) group: usize,
    /// Index in its own topic's queue (0 is the head), kept exact by every flush; it lets
    /// a new entry of a competing topic count this topic's entries in front of it in
    /// O(log n).
    pub(super) own: u32,
    /// Current position: 1 + the entries of every competing topic (this one included)
    /// that are served before it; 0 until the first flush after entering. Kept exact by
    /// every flush (all flushes run before a call returns).
    pub(super) rank: u32,
    /// Last position sent; 0 forces a send (entry or re-entry).
    pub(super) sent_pos: u32,
    pub(super) sent_at: Option<u64>,
    /// In the topic's `held` set, at `sent_at + interval`.
    pub(super) held: bool,
}

#[derive(Debug)]
pub(super) struct Topic {
    pub(super) rule: TopicRule,
    /// `levels[0]` is the full requirement (`after_ms` 0); later levels are widened.
    pub(super) levels: Vec<Level>,
    /// Every conversation competing in this topic, offered or not, in serving order.
    pub(super) order: BTreeMap<QueueKey, Slot>,
    /// The topics whose queues count towards this topic's positions: every topic that
    /// [`competes`] with it, itself included, ascending. Fixed at construction.
    pub(super) competing: Vec<usize>,
    /// Entries at or after this key may have a stale `own` index (this queue changed).
    pub(super) own_dirty_from: Option<QueueKey>,
    /// Entries at or after this key may have a new position to send (this queue or a
    /// competing one changed).
    pub(super) dirty_from: Option<QueueKey>,
    /// Since the last flush, the keys that entered (+1) or left (−1) this queue or a
    /// competing one while entries of this queue were behind them: what moves them.
    pub(super) moves: Vec<(QueueKey, i32)>,
    /// Entries whose position changed while the throttle forbade telling them, by the time
    /// they may be told.
    pub(super) held: BTreeSet<(u64, QueueKey)>,
    /// When the `Positions` timer of this topic is scheduled (the first `held` time).
    pub(super) held_timer: Option<u64>,
    /// EWMA of assign→close durations, for the eta.
    pub(super) handle_ewma_ms: u64,
}

impl Topic {
    /// How many widening levels apply after waiting `elapsed_ms` (at exactly `after_ms`
    /// a step applies).
    pub(super) fn level_at(&self, elapsed_ms: u64) -> usize {
        self.levels
            .iter()
            .rposition(|l| l.after_ms <= elapsed_ms)
            .unwrap_or(0)
    }

    /// When (in waited ms) the level after `level` starts, if any.
    pub(super) fn next_widen_after(&self, level: usize) -> Option<u64> {
        self.levels.get(level + 1).map(|l| l.after_ms)
    }

    /// Folds a new handle time into the EWMA (weight 1/5 for the newest sample).
    pub(super) fn record_handle_time(&mut self, ms: u64) {
        self.handle_ewma_ms = self.handle_ewma_ms - self.handle_ewma_ms / 5 + ms / 5;
    }
}

/// Whether two topics compete for the same agents: when one's required skills (before any
/// widening) are a subset of the other's. Every agent able to serve the larger set can
/// serve the smaller one, so conversations of both wait for those agents and positions
/// count across them. A topic needing no skill competes with every topic; `billing` and
/// `billing + fr` compete; `billing` and `fr` do not. Symmetric and reflexive, not
/// transitive. Both slices are sorted and deduplicated (a group's `skills`).
///
/// This is the one definition: `compile` stores its result in [`Topic::competing`] and
/// nothing else decides it.
pub(super) fn competes(a: &[String], b: &[String]) -> bool {
    fn subset(small: &[String], large: &[String]) -> bool {
        small.iter().all(|s| large.binary_search(s).is_ok())
    }
    subset(a, b) || subset(b, a)
}

/// The compiled topic table.
#[derive(Debug)]
pub(super) struct Compiled {
    pub(super) topics: Vec<Topic>,
    pub(super) groups: Vec<Group>,
    pub(super) by_name: BTreeMap<String, usize>,
    pub(super) default_topic: usize,
}

/// Sanitises the configuration rather than failing (the hub validates it first):
/// duplicate topic names keep the first, drops of skills a topic does not require are
/// ignored, expand steps are sorted by `after_ms`, and timeouts are at least 1 ms so a
/// timer always lies in the future.
pub(super) fn compile(config: &RouterConfig) -> Compiled {
    let mut rules: Vec<TopicRule> = Vec::new();
    for rule in &config.topics {
        if !rules.iter().any(|r| r.name == rule.name) {
            rules.push(rule.clone());
        }
    }
    if rules.is_empty() {
        rules.push(TopicRule::new(config.default_topic.clone()));
    }

    let mut groups: Vec<Group> = Vec::new();
    let mut group_ids: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    let mut intern = |skills: &BTreeSet<String>| -> usize {
        let key: Vec<String> = skills.iter().cloned().collect();
        *group_ids.entry(key.clone()).or_insert_with(|| {
            groups.push(Group {
                skills: key,
                ..Group::default()
            });
            groups.len() - 1
        })
    };

    let mut topics = Vec::with_capacity(rules.len());
    let mut by_name = BTreeMap::new();
    for mut rule in rules {
        rule.offer_timeout_ms = rule.offer_timeout_ms.max(1);
        rule.transfer_timeout_ms = rule.transfer_timeout_ms.max(1);
        rule.expand.sort_by_key(|e| e.after_ms);

        let mut required: BTreeSet<String> = rule.skills.iter().cloned().collect();
        let mut levels = vec![Level {
            after_ms: 0,
            group: intern(&required),
        }];
        for step in &rule.expand {
            for skill in &step.drop_skills {
                required.remove(skill);
            }
            let group = intern(&required);
            // A step at 0 ms simply replaces the base level.
            match levels.last_mut() {
                Some(last) if last.after_ms == step.after_ms => last.group = group,
                _ => levels.push(Level {
                    after_ms: step.after_ms,
                    group,
                }),
            }
        }

        by_name.insert(rule.name.clone(), topics.len());
        topics.push(Topic {
            rule,
            levels,
            order: BTreeMap::new(),
            competing: Vec::new(),
            own_dirty_from: None,
            dirty_from: None,
            moves: Vec::new(),
            held: BTreeSet::new(),
            held_timer: None,
            handle_ewma_ms: config.default_handle_ms,
        });
    }

    for i in 0..topics.len() {
        let skills = &groups[topics[i].levels[0].group].skills;
        topics[i].competing = (0..topics.len())
            .filter(|&j| competes(skills, &groups[topics[j].levels[0].group].skills))
            .collect();
    }

    let default_topic = by_name.get(&config.default_topic).copied().unwrap_or(0);
    Compiled {
        topics,
        groups,
        by_name,
        default_topic,
    }
}

/// The groups an agent with these skills qualifies for, each with the agent's total level
/// in that group's skills. A skill is held when its level is at least 1.
pub(super) fn qualifying_groups(
    groups: &[Group],
    skills: &BTreeMap<String, u32>,
) -> Vec<(usize, u32)> {
    groups
        .iter()
        .enumerate()
        .filter_map(|(index, group)| {
            let mut sum = 0u32;
            for skill in &group.skills {
                match skills.get(skill) {
                    Some(&level) if level > 0 => sum = sum.saturating_add(level),
                    _ => return None,
                }
            }
            Some((index, sum))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::types::Expand;
    use super::*;

    fn config(topics: Vec<TopicRule>) -> RouterConfig {
        RouterConfig {
            topics,
            ..RouterConfig::default()
        }
    }

    #[test]
    fn widening_levels_share_groups_and_apply_at_exactly_after_ms() {
        let mut fr = TopicRule::new("billing_fr");
        fr.skills = vec!["billing".into(), "fr".into()];
        fr.expand = vec![
            Expand {
                after_ms: 60_000,
                drop_skills: vec!["billing".into()],
            },
            Expand {
                after_ms: 30_000,
                drop_skills: vec!["fr".into(), "unknown".into()],
            },
        ];
        let mut billing = TopicRule::new("billing");
        billing.skills = vec!["billing".into()];
        let compiled = compile(&config(vec![fr, billing]));
        let topic = &compiled.topics[0];
        assert_eq!(topic.levels.len(), 3);
        assert_eq!(topic.level_at(29_999), 0);
        assert_eq!(topic.level_at(30_000), 1);
        assert_eq!(topic.level_at(60_000), 2);
        assert_eq!(topic.next_widen_after(0), Some(30_000));
        assert_eq!(topic.next_widen_after(2), None);
        // Level 1 of billing_fr requires just "billing", the same group as topic billing.
        assert_eq!(topic.levels[1].group, compiled.topics[1].levels[0].group);
        assert!(compiled.groups[topic.levels[2].group].skills.is_empty());
    }

    #[test]
    fn missing_default_and_empty_config_fall_back() {
        let mut cfg = config(vec![TopicRule::new("a"), TopicRule::new("a")]);
        cfg.default_topic = "nope".into();
        let compiled = compile(&cfg);
        assert_eq!(compiled.topics.len(), 1);
        assert_eq!(compiled.default_topic, 0);

        let compiled = compile(&config(Vec::new()));
        assert_eq!(compiled.topics[0].rule.name, "general");
    }

    #[test]
    fn topics_compete_when_one_requirement_contains_the_other() {
        let mut billing = TopicRule::new("billing");
        billing.skills = vec!["billing".into()];
        let mut billing_fr = TopicRule::new("billing_fr");
        billing_fr.skills = vec!["fr".into(), "billing".into()];
        // Widening does not matter: competition is about the full requirement.
        billing_fr.expand = vec![Expand {
            after_ms: 1_000,
            drop_skills: vec!["billing".into()],
        }];
        let mut fr = TopicRule::new("fr");
        fr.skills = vec!["fr".into()];
        let mut fr_too = TopicRule::new("fr_too");
        fr_too.skills = vec!["fr".into(), "fr".into()];
        let compiled = compile(&config(vec![
            TopicRule::new("general"),
            billing,
            billing_fr,
            fr,
            fr_too,
        ]));
        let competing: Vec<&[usize]> = compiled
            .topics
            .iter()
            .map(|t| t.competing.as_slice())
            .collect();
        assert_eq!(
            competing,
            vec![
                &[0, 1, 2, 3, 4][..], // general: no skills, competes with all
                &[0, 1, 2],           // billing: not fr
                &[0, 1, 2, 3, 4],     // billing_fr: contains billing and fr
                &[0, 2, 3, 4],        // fr: not billing
                &[0, 2, 3, 4],        // fr_too: the same requirement as fr
            ]
        );
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert!(competes(&s(&["billing"]), &s(&["billing", "fr"])));
        assert!(competes(&s(&["billing", "fr"]), &s(&["billing"])));
        assert!(competes(&s(&[]), &s(&["x"])));
        assert!(!competes(&s(&["billing"]), &s(&["fr"])));
        assert!(!competes(&s(&["a", "b"]), &s(&["b", "c"])));
    }

    #[test]
    fn level_zero_skills_are_not_held() {
        let mut t = TopicRule::new("t");
        t.skills = vec!["x".into()];
        let compiled = compile(&config(vec![t]));
        let skills: BTreeMap<String, u32> = [("x".to_owned(), 0)].into_iter().collect();
        assert!(qualifying_groups(&compiled.groups, &skills).is_empty());
        let skills: BTreeMap<String, u32> = [("x".to_owned(), 3)].into_iter().collect();
        assert_eq!(qualifying_groups(&compiled.groups, &skills), vec![(0, 3)]);
    }
}
