//! The configuration as the router core takes it: topics, timers and agent profiles.

use crate::{config::Config, router, store::AgentRecord};

pub fn router_config(config: &Config) -> router::RouterConfig {
    router::RouterConfig {
        topics: config
            .topics
            .iter()
            .map(|t| router::TopicRule {
                name: t.name.clone(),
                skills: t.skills.clone(),
                priority: t.priority,
                offer_timeout_ms: t.offer_timeout_ms,
                transfer_timeout_ms: t.transfer_timeout_ms,
                expand: t
                    .expand
                    .iter()
                    .map(|e| router::Expand {
                        after_ms: e.after_ms,
                        drop_skills: e.drop_skills.clone(),
                    })
                    .collect(),
                escalation_priority_boost: t.escalation_priority_boost,
                wrap_up_ms: t.wrap_up_s.saturating_mul(1000),
                leave_message_after_ms: t.leave_message_after_s.saturating_mul(1000),
            })
            .collect(),
        default_topic: config.default_topic().name.clone(),
        max_missed_offers: config.router.max_missed_offers,
        agent_grace_ms: config.router.agent_grace_ms,
        customer_idle_timeout_ms: config.router.customer_idle_timeout_ms,
        queue_update_min_interval_ms: 1_000,
        default_handle_ms: config.router.default_handle_ms,
        offer_id_seed: rand::random(),
        audit: true,
        exclusion_cooldown_ms: config.router.exclusion_cooldown_ms,
    }
}

pub(super) fn profile(agent: &AgentRecord) -> router::AgentProfile {
    router::AgentProfile {
        id: agent.id.clone(),
        name: agent.name.clone(),
        skills: agent.skills.clone(),
        capacity: agent.capacity,
        auto_accept: agent.auto_accept,
    }
}
