//! Business hours as customers see them (issue 18): the `welcome`'s `online` and
//! `topics`, and the refusal of a `start` on a closed topic. The schedule itself is
//! `crate::hours`; this only applies it to the configured topics at an instant.

use std::collections::BTreeMap;

use crate::{
    config::{Config, TopicConfig},
    error::{Error, Result},
    protocol::TopicStatus,
    routing::Staffing,
};

/// The customer `welcome`'s `online` and `topics` at `now_ms`, from the router's
/// `staffing`. `online`: as the contract says, any agent is available (and the default
/// topic is within its hours); for `asked` (a `presence` naming a topic), an agent who
/// could take that topic is, and it is within its hours. `topics` lists every topic,
/// only when some topic has hours, each online when staffed and open.
pub(super) fn welcome_status(
    config: &Config,
    staffing: &Staffing,
    asked: Option<&TopicConfig>,
    now_ms: u64,
) -> (bool, Option<BTreeMap<String, TopicStatus>>) {
    let staffed = |name: &str| staffing.topics.iter().any(|(t, s)| t == name && *s);
    let online = match asked {
        Some(topic) => staffed(&topic.name) && is_open(topic, now_ms),
        None => staffing.any && is_open(config.default_topic(), now_ms),
    };
    if config.topics.iter().all(|t| t.hours.is_none()) {
        return (online, None);
    }
    let topics = config
        .topics
        .iter()
        .map(|topic| {
            let (open, message, opens_at) = match topic.business_hours() {
                Some(hours) if !hours.is_open(now_ms) => {
                    (false, hours.message.clone(), hours.next_opening(now_ms))
                }
                _ => (true, None, None),
            };
            let status = TopicStatus {
                online: staffed(&topic.name) && open,
                default: topic.name == config.default_topic().name,
                message,
                opens_at,
            };
            (topic.name.clone(), status)
        })
        .collect();
    (online, Some(topics))
}

/// The answer to a customer's `presence`: the `welcome`'s `online` and `topics`, now;
/// `online` for `topic` when it names one.
pub(super) async fn presence(
    hub: &crate::hub::Hub,
    topic: Option<&str>,
) -> Result<crate::protocol::AckBody> {
    let asked = match topic {
        None => None,
        Some(name) => Some(
            hub.config
                .topic(name)
                .ok_or_else(|| Error::bad_request(format!("no topic {name}")))?,
        ),
    };
    let (online, topics) = welcome_status(
        &hub.config,
        &hub.router.staffing().await,
        asked,
        crate::clock::now_ms(),
    );
    Ok(crate::protocol::AckBody {
        online: Some(online),
        topics,
        ..Default::default()
    })
}

/// Refuses a `start` on a topic outside its hours: `unavailable`, reason `closed`, with
/// the configured message. Nothing is stored.
pub(super) fn check_open(topic: &TopicConfig, now_ms: u64) -> Result<()> {
    match topic.business_hours() {
        Some(hours) if !hours.is_open(now_ms) => {
            Err(Error::Closed(hours.message.clone().unwrap_or_else(|| {
                format!(
                    "{} is closed now: please leave an offline message",
                    topic.name
                )
            })))
        }
        _ => Ok(()),
    }
}

fn is_open(topic: &TopicConfig, now_ms: u64) -> bool {
    topic.business_hours().is_none_or(|h| h.is_open(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hours::{HoursConfig, Weekly};

    fn closed_always() -> HoursConfig {
        HoursConfig {
            time_zone: "UTC".into(),
            weekly: Weekly::default(),
            holidays: vec![],
            message: Some("closed for good".into()),
        }
    }

    fn config(default_hours: Option<HoursConfig>, billing_hours: Option<HoursConfig>) -> Config {
        let mut config = Config::default();
        let mut billing = config.topics[0].clone();
        config.topics[0].hours = default_hours;
        billing.name = "billing".into();
        billing.default = false;
        billing.hours = billing_hours;
        config.topics.push(billing);
        config
    }

    fn all(staffed: bool) -> Staffing {
        Staffing {
            any: staffed,
            topics: vec![("general".into(), staffed), ("billing".into(), staffed)],
        }
    }

    #[test]
    fn no_hours_adds_nothing() {
        let config = config(None, None);
        assert_eq!(welcome_status(&config, &all(true), None, 0), (true, None));
        assert_eq!(welcome_status(&config, &all(false), None, 0), (false, None));
    }

    #[test]
    fn online_is_about_the_topic_asked() {
        let config = config(None, Some(closed_always()));
        let billing_only = Staffing {
            any: true,
            topics: vec![("general".into(), false), ("billing".into(), true)],
        };
        let (online, topics) = welcome_status(&config, &billing_only, None, 0);
        assert!(
            online,
            "the welcome's online: any agent, as the contract says"
        );
        let (online, _) = welcome_status(&config, &billing_only, Some(&config.topics[0]), 0);
        assert!(!online, "asked for general: nobody who could take it");
        let topics = topics.unwrap();
        assert!(!topics["billing"].online, "staffed but out of hours");
        let config = super::tests::config(None, None);
        let (online, _) = welcome_status(&config, &billing_only, Some(&config.topics[1]), 0);
        assert!(online, "billing asked: a billing agent is there");
    }

    #[test]
    fn a_closed_topic_is_offline_with_its_message() {
        let (online, topics) =
            welcome_status(&config(None, Some(closed_always())), &all(true), None, 0);
        assert!(online, "the default topic is open");
        let topics = topics.unwrap();
        assert_eq!(
            topics["billing"],
            TopicStatus {
                online: false,
                default: false,
                message: Some("closed for good".into()),
                opens_at: None,
            }
        );
        assert!(topics["general"].online && topics["general"].default);
        let (online, _) = welcome_status(&config(Some(closed_always()), None), &all(true), None, 0);
        assert!(!online, "the default topic is closed");
    }

    #[test]
    fn start_on_a_closed_topic_is_refused_as_closed() {
        let config = config(None, Some(closed_always()));
        let err = check_open(&config.topics[1], 0).unwrap_err();
        assert_eq!(err.reason(), Some("closed"));
        assert_eq!(err.to_string(), "closed for good");
        assert!(check_open(&config.topics[0], 0).is_ok());
    }
}
