//! The abuse suite (issue 15) against the real hub, each test with its own `redis-server`
//! and hub (default limits, as shipped), through the library call:
//!
//! - a tiny run checks that the suite itself works against today's hub: every attack is
//!   made and answered, and the legitimate chat is measured and loses nothing;
//! - the short form must pass: it does once the hub has the defences of issue 15
//!   (admission caps, header timeout, memory budgets, flood limits). Until those are
//!   merged it fails (descriptors, RSS, p99 and chats per visitor over their bounds), so
//!   it is ignored; the integrator removes the `ignore`.
//!
//! The hub binary is found as in `smoke.rs` (see `common`).

mod common;

use std::time::Duration;

use common::{start_hub, start_redis, ADMIN_TOKEN};
use switchboard_loadtest::abuse::{abuse, AbuseOptions, Form};

/// Default limits (the shipped ones: per-connection message limit, frame size), one
/// default topic.
fn shipped_config() -> String {
    format!("admin_token = \"{ADMIN_TOKEN}\"\n\n[[topic]]\nname = \"general\"\ndefault = true\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_makes_every_attack_and_measures_the_legitimate_chat() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_redis, redis_port) = start_redis(dir.path());
    let (_hub, url, pid) = start_hub(dir.path(), redis_port, &shipped_config());

    let mut options = AbuseOptions::new(&url, ADMIN_TOKEN, Form::Short);
    options.hub_pid = Some(pid);
    let sizes = &mut options.sizes;
    sizes.connections = 40;
    sizes.connections_hold = Duration::from_millis(300);
    sizes.slow = 10;
    sizes.slow_hold = Duration::from_millis(300);
    sizes.frames_per_case = 1;
    sizes.reuse_cycles = 5;
    sizes.history.messages = 20;
    sizes.history.sockets = 2;
    sizes.history.hold = Duration::from_millis(300);
    sizes.visitors = 10;
    sizes.visitors_hold = Duration::from_millis(300);
    let report = tokio::time::timeout(Duration::from_secs(120), abuse(&options))
        .await
        .expect("the tiny suite finishes within 2 minutes")
        .expect("the tiny suite runs");
    let text = report.text();
    assert_eq!(report.attacks.len(), 6, "{text}");
    for attack in &report.attacks {
        assert!(
            !attack.answers.is_empty(),
            "{}: no answers\n{text}",
            attack.name
        );
        assert!(attack.during.rss_peak_mb.is_some(), "{text}");
        assert!(attack.during.fds_peak.is_some(), "{text}");
    }
    let legit = &report.legit;
    assert!(legit.delivered > 0, "{text}");
    assert_eq!(legit.lost, 0, "{text}");
    assert!(legit.ended_early.is_empty(), "{text}");
    // What today's hub already does as the contract says.
    let frames = &report.attacks[2].answers;
    assert_eq!(
        frames.get("invalid JSON as hello: close 4400 (expected: close 4400)"),
        1,
        "{text}"
    );
    assert_eq!(
        frames.get("frame 1 byte over the limit: close 1009 (expected: close 1009)"),
        1,
        "{text}"
    );
    assert!(
        report.attacks[3]
            .visitor_chats
            .is_some_and(|chats| chats > 0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_short_abuse_suite_passes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (_redis, redis_port) = start_redis(dir.path());
    let (_hub, url, pid) = start_hub(dir.path(), redis_port, &shipped_config());

    let mut options = AbuseOptions::new(&url, ADMIN_TOKEN, Form::Short);
    options.hub_pid = Some(pid);
    let report = tokio::time::timeout(Duration::from_secs(240), abuse(&options))
        .await
        .expect("the short suite finishes within 4 minutes")
        .expect("the short suite runs");
    let text = report.text();
    println!("{text}");
    assert_eq!(report.attacks.len(), 6, "{text}");
    assert!(report.passed(), "{text}");
}
