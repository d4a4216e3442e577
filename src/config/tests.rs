//! The configuration's unit tests: defaults, merging, and what validation refuses.

use super::*;

const CONTRACT_EXAMPLE: &str = r#"
admin_token = "s3cret-admin"
identity_secret = "site-secret"
webhook_url = "http://127.0.0.1:19000/tickets"
webhook_secret = "hook-secret"

[limits]
max_frame_bytes = 65536
max_text_bytes = 8192
hello_timeout_ms = 10000
messages_per_10s = 50

[[topic]]
name = "general"
default = true
skills = []
priority = 0
offer_timeout_ms = 15000
transfer_timeout_ms = 60000

[[topic]]
name = "billing_fr"
skills = ["billing", "fr"]
priority = 5
expand = [{ after_ms = 30000, drop_skills = ["fr"] }]
"#;

#[test]
fn contract_example_parses() {
    let config = Config::from_toml(CONTRACT_EXAMPLE, "redis://x").expect("valid");
    assert_eq!(config.topics.len(), 2);
    assert_eq!(config.default_topic().name, "general");
    assert_eq!(config.topic("billing_fr").map(|t| t.priority), Some(5));
    assert_eq!(format!("{:?}", config.admin_token), "Secret(***)");
}

#[test]
fn unknown_keys_and_bad_expands_are_refused() {
    assert!(Config::from_toml("admin_token = \"a\"\nbogus = 1", "redis://x").is_err());
    let bad = "admin_token = \"a\"\n[[topic]]\nname = \"x\"\nskills = [\"a\"]\nexpand = [{ after_ms = 1, drop_skills = [\"b\"] }]";
    assert!(Config::from_toml(bad, "redis://x").is_err());
    assert!(
        Config::from_toml("", "redis://x").is_err(),
        "admin token required"
    );
}

fn with_retention(extra: &str) -> Result<Config, ConfigError> {
    Config::from_toml(&format!("admin_token = \"a\"\n{extra}"), "redis://x")
}

#[test]
fn retention_defaults_to_a_day_and_thirty_days() {
    let config = with_retention("").expect("valid");
    assert_eq!(config.retention, RetentionSettings::default());
    assert_eq!(config.retention.closed_conversation_ms(), 86_400_000);
    assert_eq!(config.retention.ticket_ms(), Some(30 * 86_400_000));
}

#[test]
fn retention_is_read_and_zero_keeps_tickets_forever() {
    let config =
        with_retention("[retention]\nclosed_conversation_s = 60\nticket_s = 0").expect("valid");
    assert_eq!(config.retention.closed_conversation_s, 60);
    assert_eq!(config.retention.ticket_ms(), None);
    let config = with_retention("[retention]\nticket_s = 86400").expect("valid");
    assert_eq!(
        config.retention.closed_conversation_s, 86_400,
        "default kept"
    );
    assert_eq!(config.retention.ticket_ms(), Some(86_400_000));
}

#[test]
fn bad_retention_is_refused() {
    for (toml, why) in [
        (
            "[retention]\nclosed_conversation_s = 0",
            "closed chats kept forever",
        ),
        (
            "[retention]\nclosed_conversation_s = 600\nticket_s = 60",
            "ticket before chat",
        ),
        ("[retention]\nticket_s = 999999999999", "unit mistake"),
        ("[retention]\nticket_s = -1", "negative"),
        ("[retention]\nticket_days = 3", "unknown key"),
    ] {
        assert!(with_retention(toml).is_err(), "{why}: {toml}");
    }
}

#[test]
fn webhook_url_query_never_prints() {
    let config = Config::from_toml(
        "admin_token = \"a\"\nwebhook_url = \"https://user:pw@h.example/t?key=s3cret&x=1\"\nwebhook_secret = \"s\"",
        "redis://x",
    )
    .expect("valid");
    let printed = format!("{config:?}");
    assert!(
        !printed.contains("s3cret") && !printed.contains("pw@"),
        "{printed}"
    );
    assert!(printed.contains("https://***@h.example/t?***"), "{printed}");
    assert_eq!(redact_url("http://h/t"), "http://h/t");
    assert!(with_retention("webhook_url = \"not a url\"\nwebhook_secret = \"s\"").is_err());
}

#[test]
fn tickets_must_outlive_webhook_retries() {
    let webhook = "webhook_url = \"http://h/t\"\nwebhook_secret = \"s\"\n";
    let short = "[retention]\nclosed_conversation_s = 60\nticket_s = 3600";
    assert!(
        with_retention(short).is_ok(),
        "no webhook: nothing to outlive"
    );
    let err = with_retention(&format!("{webhook}{short}")).expect_err("below give_up_after_ms");
    assert!(err.to_string().contains("give_up_after_ms"), "{err}");
    let forever = "[retention]\nticket_s = 0";
    assert!(with_retention(&format!("{webhook}{forever}")).is_ok());
}

// ---- admission and access (issue 15 part A) ----

#[test]
fn admission_defaults_and_access_section() {
    let config = with_retention("").expect("valid");
    assert_eq!(config.limits.max_connections, 0, "sized from the fd limit");
    assert_eq!(config.limits.send_queue_bytes, 1024 * 1024);
    assert_eq!(config.limits.send_queue_bytes_total, 256 * 1024 * 1024);
    assert!(config.access.allowed_origins.is_empty());
    let config = with_retention(
        "[access]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\nallowed_origins = [\"https://shop.example\"]\nconsole_origins = [\"http://localhost:3000\"]",
    )
    .expect("valid");
    assert_eq!(config.access.trusted_proxies.len(), 2);
    let net = IpNet::parse("10.0.0.0/8").expect("cidr");
    assert!(net.contains("10.200.1.1".parse().expect("ip")));
    assert!(net.contains("::ffff:10.0.0.1".parse().expect("mapped ip")));
    assert!(!net.contains("11.0.0.1".parse().expect("ip")));
    assert!(IpNet::parse("0.0.0.0/0")
        .expect("all")
        .contains("8.8.8.8".parse().expect("ip")));
}

#[test]
fn bad_admission_settings_are_refused() {
    for (toml, why) in [
        (
            "[access]\ntrusted_proxies = [\"10.0.0.0/33\"]",
            "prefix too long",
        ),
        (
            "[access]\ntrusted_proxies = [\"proxy.local\"]",
            "a name, not an address",
        ),
        (
            "[access]\nallowed_origins = [\"shop.example\"]",
            "no scheme",
        ),
        (
            "[access]\nconsole_origins = [\"https://a.example/\"]",
            "a path",
        ),
        ("[access]\nbogus = 1", "unknown key"),
        ("[limits]\nmax_connections_per_ip = 0", "zero per address"),
        ("[limits]\nheader_read_timeout_ms = 0", "no header timeout"),
        (
            "[limits]\nsend_queue_bytes = 1048576\nsend_queue_bytes_total = 65536",
            "global below per-connection",
        ),
    ] {
        assert!(with_retention(toml).is_err(), "{why}: {toml}");
    }
}

// abuse-b: [flood], [identity], max_waiting
#[test]
fn flood_identity_and_queue_caps_have_defaults_and_are_checked() {
    let config = with_retention("").expect("valid");
    assert_eq!(config.flood, FloodSettings::default());
    assert!(!config.flood.applies_to("127.0.0.1".parse().expect("ip")));
    assert!(config.flood.applies_to("127.0.0.2".parse().expect("ip")));
    assert_eq!(config.default_topic().max_waiting, 200);
    assert_eq!(config.identity.session_lifetime_s, 30 * 86_400);
    let config = with_retention(
        "[flood]\nexempt = []\nstarts_per_visitor = { limit = 2, window_s = 60 }\ncustomer_tags = [\"resolved\"]\n[identity]\nidentity_max_age_s = 600",
    )
    .expect("valid");
    assert!(config.flood.applies_to("127.0.0.1".parse().expect("ip")));
    assert_eq!(config.flood.starts_per_visitor, FloodRule::new(2, 60));
    assert_eq!(config.identity.identity_max_age_s, 600);
    let config = with_retention("[flood]\nexempt = [\"127.0.0.9\", \"::1\"]").expect("valid");
    assert!(!config.flood.applies_to("127.0.0.9".parse().expect("ip")));
    assert!(config.flood.applies_to("127.0.0.1".parse().expect("ip")));
    for (toml, why) in [
        (
            "[flood]\nstarts_per_visitor = { limit = 0, window_s = 60 }",
            "zero limit",
        ),
        (
            "[flood]\nmessages_per_address = { limit = 5, window_s = 0 }",
            "zero window",
        ),
        ("[flood]\nmax_name_chars = 0", "zero length"),
        ("[flood]\nbogus = 1", "unknown key"),
        (
            "[identity]\nsession_lifetime_s = 0",
            "sessions that never last",
        ),
        (
            "[[topic]]\nname = \"g\"\nmax_waiting = 0",
            "a queue nobody may enter",
        ),
    ] {
        assert!(with_retention(toml).is_err(), "{why}: {toml}");
    }
}

// issue 16: Redis Cluster
#[test]
fn replicated_acks_is_off_by_default_and_read_from_limits() {
    let config = with_retention("").expect("valid");
    assert!(!config.limits.replicated_acks);
    let config = with_retention("[limits]\nreplicated_acks = true").expect("valid");
    assert!(config.limits.replicated_acks);
    assert!(with_retention("[limits]\nreplicated_acks = \"yes\"").is_err());
}

#[test]
fn canned_seeds_obey_the_rest_rules() {
    let with =
        |entries: &str| Config::from_toml(&format!("{CONTRACT_EXAMPLE}{entries}"), "redis://x");
    let ok = with(
        "[[canned_responses]]\nshortcut = \"/hi\"\ntext = \"Hello\"\n\n[[canned_responses]]\nshortcut = \"hi\"\ntext = \"Salut\"\ntopic = \"billing_fr\"\n",
    )
    .expect("a leading / is dropped; one shortcut per scope");
    assert_eq!(ok.canned_responses[0].shortcut(), "hi");
    for bad in [
        "[[canned_responses]]\nshortcut = \"Hi\"\ntext = \"x\"\n",
        "[[canned_responses]]\nshortcut = \"hi\"\ntext = \" \"\n",
        "[[canned_responses]]\nshortcut = \"hi\"\ntext = \"x\"\ntopic = \"nope\"\n",
        "[[canned_responses]]\nshortcut = \"hi\"\ntext = \"x\"\n[[canned_responses]]\nshortcut = \"hi\"\ntext = \"y\"\n",
    ] {
        assert!(matches!(with(bad), Err(ConfigError::Invalid(_))), "{bad}");
    }
}

#[test]
fn business_hours_parse_and_bad_ones_name_the_topic() {
    let topic = |hours: &str| {
        Config::from_toml(
            &format!("admin_token = \"a\"\n[[topic]]\nname = \"billing\"\nhours = {hours}\n"),
            "redis://x",
        )
    };
    let ok = topic(
        r#"{ time_zone = "Europe/Paris", weekly = { mon = ["09:00-12:30", "13:30-18:00"], sat = [] }, holidays = ["2026-12-25"], message = "We're closed." }"#,
    )
    .expect("valid hours");
    let hours = ok.topics[0].hours.as_ref().expect("hours kept");
    assert_eq!(hours.weekly.mon.len(), 2);
    assert!(ok.topics[0].business_hours().is_some());
    for (bad, says) in [
        (r#"{ time_zone = "Mars/Olympus" }"#, "unknown time zone"),
        (
            r#"{ time_zone = "UTC", weekly = { mon = ["18:00-09:00"] } }"#,
            "ends before it starts",
        ),
        (
            r#"{ time_zone = "UTC", weekly = { tue = ["09:00-13:00", "12:00-18:00"] } }"#,
            "overlap",
        ),
    ] {
        match topic(bad) {
            Err(ConfigError::Invalid(msg)) => {
                assert!(msg.starts_with("topic billing: hours: "), "{msg}");
                assert!(msg.contains(says), "{msg}");
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert!(
        topic(r#"{ time_zone = "UTC", weekly = { monday = [] } }"#).is_err(),
        "unknown day names are refused"
    );
}
