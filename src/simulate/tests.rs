//! The engine against hand-worked cases, and a generated day for speed.

use super::input::{parse_agents, Routing};
use super::measure::{Fate, Figures};
use super::{engine, simulate, Arrival, Behaviour};

const ROUTING: &str = r#"
[[topic]]
name = "general"
default = true

[[topic]]
name = "billing"
skills = ["billing"]
priority = 5
sla = { wait_ms = 10000 }

[[topic]]
name = "billing_fr"
skills = ["billing", "fr"]
expand = [{ after_ms = 30000, drop_skills = ["fr"] }]
"#;

fn routing() -> Routing {
    Routing::from_toml_text(ROUTING).expect("valid routing")
}

fn chat(at_ms: u64, topic: &str, handle_ms: u64, patience_ms: Option<u64>) -> Arrival {
    Arrival {
        at_ms,
        topic: topic.into(),
        handle_ms,
        patience_ms,
        response_ms: None,
    }
}

fn fates(agents: &str, traffic: &[Arrival], response_ms: u64) -> Vec<Fate> {
    let agents = parse_agents(agents).expect("valid agents");
    engine::run(&routing(), &agents, traffic, response_ms)
        .chats
        .iter()
        .map(|c| c.fate)
        .collect()
}

#[test]
fn one_agent_serves_in_turn() {
    let traffic = [
        chat(0, "general", 60_000, None),
        chat(0, "general", 60_000, None),
    ];
    let fates = fates(r#"[{"id":"a","capacity":1}]"#, &traffic, 3_000);
    assert_eq!(
        fates,
        [
            Fate::Answered { wait_ms: 3_000 },
            // Waits for the first chat to end (3 s + 60 s), then for the accept.
            Fate::Answered { wait_ms: 66_000 },
        ]
    );
}

#[test]
fn customers_give_up_and_free_the_offer() {
    let traffic = [
        chat(0, "general", 60_000, None),
        chat(1_000, "general", 1_000, Some(20_000)),
    ];
    let fates = fates(r#"[{"id":"a","capacity":1}]"#, &traffic, 3_000);
    assert_eq!(fates[1], Fate::Abandoned { wait_ms: 20_000 });
}

#[test]
fn widening_drops_a_skill_after_its_wait() {
    let traffic = [chat(0, "billing_fr", 1_000, None)];
    let fates = fates(
        r#"[{"id":"b","skills":{"billing":1},"capacity":1}]"#,
        &traffic,
        2_000,
    );
    assert_eq!(fates, [Fate::Answered { wait_ms: 32_000 }]);
}

#[test]
fn shifts_bound_availability_and_occupancy() {
    let agents = parse_agents(
        r#"[{"id":"late","capacity":1,"auto_accept":true,"shift":{"from_ms":10000,"to_ms":100000}}]"#,
    )
    .expect("valid");
    let traffic = [chat(0, "general", 45_000, None)];
    let recorded = engine::run(&routing(), &agents, &traffic, 3_000);
    // Auto-accept: assigned the moment the shift starts.
    assert_eq!(recorded.chats[0].fate, Fate::Answered { wait_ms: 10_000 });
    // On shift 10 s → 100 s (the run ends with the last event, the shift's end), busy
    // while it held the chat.
    assert_eq!(recorded.agents[0].available_ms, 90_000);
    assert_eq!(recorded.agents[0].busy_ms, 45_000);
}

#[test]
fn a_chat_nobody_can_take_is_unserved() {
    let traffic = [chat(0, "billing", 1_000, None)];
    let fates = fates(r#"[{"id":"g","capacity":1}]"#, &traffic, 1_000);
    assert_eq!(fates, [Fate::Unserved]);
}

#[test]
fn a_response_slower_than_the_offer_timeout_is_refused() {
    let agents = parse_agents(r#"[{"id":"g","capacity":1}]"#).expect("valid");
    let behaviour = Behaviour {
        response_ms: 15_000,
        first_reply_ms: 0,
    };
    let err = simulate(&routing(), &agents, &[], behaviour).expect_err("refused");
    assert!(err.to_string().contains("offer_timeout_ms"), "{err}");
}

/// A small deterministic generator (xorshift), so the test needs no data files.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A day shaped like the release-mode figure in `docs/simulate.md`, scaled down: `chats`
/// arrivals over 24 h on three topics with skills and widening, `teams` × 4 agents.
fn generated_day(chats: u64, teams: u32) -> (Vec<Arrival>, String) {
    let mut rng = Rng(0x5eed);
    let topics = ["general", "billing", "billing_fr"];
    let mut traffic: Vec<Arrival> = (0..chats)
        .map(|_| {
            let topic = topics[rng.below(3) as usize];
            chat(
                rng.below(86_400_000),
                topic,
                60_000 + rng.below(480_000),
                (rng.below(4) == 0).then(|| 30_000 + rng.below(300_000)),
            )
        })
        .collect();
    traffic.sort_by_key(|a| a.at_ms);
    let agents = format!(
        r#"[{{"id":"g","capacity":2,"count":{teams}}},
            {{"id":"b","skills":{{"billing":3}},"capacity":2,"count":{teams}}},
            {{"id":"bf","skills":{{"billing":2,"fr":3}},"capacity":2,"count":{teams}}},
            {{"id":"all","skills":{{"billing":1,"fr":1}},"capacity":3,"count":{teams}}}]"#
    );
    (traffic, agents)
}

fn answered_all(f: &Figures) {
    assert_eq!(f.answered + f.abandoned + f.unserved, f.chats, "{f:?}");
}

#[test]
fn a_generated_day_runs_fast_and_adds_up() {
    // Debug build: a fifth of the documented day (4,000 chats, 40 agents).
    let (traffic, agents) = generated_day(4_000, 10);
    let agents = parse_agents(&agents).expect("valid agents");
    let behaviour = Behaviour {
        response_ms: 3_000,
        first_reply_ms: 0,
    };
    let started = std::time::Instant::now();
    let summary = simulate(&routing(), &agents, &traffic, behaviour).expect("runs");
    let elapsed = started.elapsed();
    assert!(elapsed.as_secs() < 30, "took {elapsed:?}");
    assert_eq!(summary.overall.chats, 4_000);
    assert_eq!(summary.overall.unserved, 0);
    summary.topics.iter().for_each(answered_all);
    answered_all(&summary.overall);
    assert!(summary.overall.wait_p50_ms >= Some(3_000));
    let occupancy = summary.overall.occupancy_pct.expect("agents worked");
    assert!((0.0..=100.0).contains(&occupancy), "{occupancy}");
    assert!(summary.topics[1].sla_wait_pct.is_some());
    assert!(summary.topics[0].sla_wait_pct.is_none());
    // Same input, same figures.
    let again = simulate(&routing(), &agents, &traffic, behaviour).expect("runs");
    assert_eq!(summary, again);
}

#[tokio::test]
async fn compare_takes_another_config_or_team() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let config = write("routing.toml", ROUTING);
    // Widening after 5 s instead of 30 s: the billing_fr chat is taken sooner.
    let wider = write(
        "wider.toml",
        &ROUTING.replace("after_ms = 30000", "after_ms = 5000"),
    );
    let agents = write(
        "agents.json",
        r#"[{"id":"b","skills":{"billing":1},"capacity":1}]"#,
    );
    let traffic = write(
        "traffic.jsonl",
        "{\"at_ms\":0,\"topic\":\"billing_fr\",\"handle_ms\":1000}\n",
    );
    let args = |compare: Option<&std::path::Path>, json: bool| super::SimulateArgs {
        config: config.clone(),
        agents: agents.clone(),
        traffic: Some(traffic.clone()),
        from_redis: None,
        from: None,
        to: None,
        compare: compare.map(std::path::Path::to_path_buf),
        response_ms: 1_000,
        first_reply_ms: 0,
        json,
    };
    let json = super::run_command(&args(Some(&wider), true))
        .await
        .expect("runs");
    let output: super::report::Output = serde_json::from_str(&json).expect("JSON output");
    assert_eq!(output.a.summary.overall.wait_p50_ms, Some(31_000));
    let b = output.b.expect("a second run");
    assert_eq!(b.summary.overall.wait_p50_ms, Some(6_000));
    assert_eq!(b.label, "wider.toml + agents.json");
    let table = super::run_command(&args(Some(&wider), false))
        .await
        .expect("runs");
    assert!(table.contains("31 s → 6.0 s"), "{table}");
    let bad = write("agents.txt", "");
    let err = super::run_command(&args(Some(&bad), false))
        .await
        .expect_err("refused");
    assert!(
        err.to_string().contains(".toml routing config or a .json"),
        "{err}"
    );
}

#[test]
fn wrap_up_holds_the_next_chat_back() {
    let with_wrap_up = Routing::from_toml_text(
        r#"
[[topic]]
name = "general"
default = true
wrap_up_s = 30
"#,
    )
    .expect("valid routing");
    let agents = parse_agents(r#"[{"id":"a","capacity":1}]"#).expect("valid agents");
    let traffic = [
        chat(0, "general", 60_000, None),
        chat(0, "general", 60_000, None),
    ];
    let fates: Vec<Fate> = engine::run(&with_wrap_up, &agents, &traffic, 3_000)
        .chats
        .iter()
        .map(|c| c.fate)
        .collect();
    // The first chat ends at 63 s; the agent wraps up 30 s, then takes 3 s to accept.
    assert_eq!(fates[1], Fate::Answered { wait_ms: 96_000 });
}
