//! Router decision benchmark.
//!
//! World: 1,000 agents with 2–6 random skills out of 20 (levels 1–5, capacity 1–5), 50
//! topics (20 single-skill, 30 two-skill with a widening step after 60 s), and 10,000
//! conversations waiting behind full agents. Steady state: each step is one public call —
//! `close` of a random assigned conversation (whose freed agent gets the next offer),
//! `accept` of an open offer, `enqueue` of a new conversation, or `tick` when a timer is
//! due — with the clock advancing 1 ms per step.
//!
//! Besides criterion's mean, a timed pass records every decision's duration with
//! `Instant` and prints p50/p90/p99/p99.9/max per kind and overall, and how many queue
//! positions each kind of call sent on average (only with `--bench`).
//! Run: `cargo bench --bench router` (or `-- --quick`). With `ROUTER_BENCH_OPEN_TOPIC=1`
//! a 51st topic needing no skill is added, which competes with every other topic.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use switchboard::router::{
    AgentProfile, AgentStatus, Command, Expand, NewConversation, Router, RouterConfig, TopicRule,
};

const SKILLS: usize = 20;
const AGENTS: usize = 1_000;
const WAITING: usize = 10_000;
const TIMED_STEPS: usize = 200_000;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn skill(i: usize) -> String {
    format!("s{i:02}")
}

fn topics(rng: &mut Rng) -> Vec<TopicRule> {
    let mut topics = Vec::new();
    for i in 0..SKILLS {
        let mut t = TopicRule::new(skill(i));
        t.skills = vec![skill(i)];
        t.priority = rng.below(3) as i32;
        topics.push(t);
    }
    while topics.len() < 50 {
        let (a, b) = (rng.below(SKILLS), rng.below(SKILLS));
        let name = format!("{}_{}", skill(a), skill(b));
        if a == b || topics.iter().any(|t| t.name == name) {
            continue;
        }
        let mut t = TopicRule::new(name);
        t.skills = vec![skill(a), skill(b)];
        t.priority = rng.below(3) as i32;
        t.expand = vec![Expand {
            after_ms: 60_000,
            drop_skills: vec![skill(b)],
        }];
        topics.push(t);
    }
    if open_topic() {
        // Needs no skill: competes with every topic, so every change anywhere moves its
        // customers' positions and each of its changes moves everyone's.
        let mut t = TopicRule::new("any");
        t.priority = rng.below(3) as i32;
        topics.push(t);
    }
    topics
}

/// `ROUTER_BENCH_OPEN_TOPIC=1` adds a 51st topic that needs no skill (stress for
/// positions across competing topics); off by default.
fn open_topic() -> bool {
    std::env::var_os("ROUTER_BENCH_OPEN_TOPIC").is_some_and(|v| v == "1")
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Enqueue,
    Accept,
    Close,
    Tick,
}

struct World {
    router: Router,
    rng: Rng,
    now: u64,
    topic_names: Vec<String>,
    assigned: Vec<String>,
    assigned_total: usize,
    offers: Vec<(String, String)>,
    /// `QueuePosition` commands received (customers told a new position).
    positions_sent: u64,
    next_conv: u64,
    close_next: bool,
}

impl World {
    fn build(seed: u64) -> World {
        let mut rng = Rng(seed);
        let topics = topics(&mut rng);
        let topic_names = topics.iter().map(|t| t.name.clone()).collect();
        let config = RouterConfig {
            default_topic: topics[0].name.clone(),
            topics,
            offer_id_seed: seed,
            ..RouterConfig::default()
        };
        let mut world = World {
            router: Router::new(config),
            rng,
            now: 1,
            topic_names,
            assigned: Vec::new(),
            assigned_total: 0,
            offers: Vec::new(),
            positions_sent: 0,
            next_conv: 0,
            close_next: true,
        };
        for i in 0..AGENTS {
            let mut skills = std::collections::BTreeMap::new();
            for _ in 0..2 + world.rng.below(5) {
                skills.insert(
                    skill(world.rng.below(SKILLS)),
                    1 + world.rng.below(5) as u32,
                );
            }
            let profile = AgentProfile {
                id: format!("agent{i:04}"),
                name: format!("Agent {i}"),
                skills,
                capacity: 1 + world.rng.below(5) as u32,
                auto_accept: false,
            };
            let out = world.router.upsert_agent(world.now, profile);
            world.absorb(out);
            let out =
                world
                    .router
                    .set_status(world.now, &format!("agent{i:04}"), AgentStatus::Available);
            world.absorb(out);
        }
        // Fill the agents (accepting every offer) until 10,000 conversations wait.
        while world.waiting() < WAITING {
            world.enqueue();
            while let Some((offer, agent)) = world.offers.pop() {
                let out = world
                    .router
                    .accept(world.now, &agent, &offer)
                    .expect("open offer");
                world.absorb(out);
            }
        }
        world
    }

    fn waiting(&self) -> usize {
        self.next_conv as usize - self.assigned_total
    }

    fn absorb(&mut self, out: Vec<Command>) {
        for command in out {
            match command {
                Command::Offer {
                    offer_id, agent, ..
                } => self.offers.push((offer_id, agent)),
                Command::Assign { conversation, .. } => {
                    self.assigned.push(conversation);
                    self.assigned_total += 1;
                }
                Command::Revoke { offer_id, .. } => self.offers.retain(|(o, _)| *o != offer_id),
                Command::QueuePosition { .. } => self.positions_sent += 1,
                _ => {}
            }
        }
    }

    fn enqueue(&mut self) {
        self.next_conv += 1;
        let topic = self.topic_names[self.rng.below(self.topic_names.len())].clone();
        let conv = NewConversation {
            id: format!("c_{:016x}", self.next_conv),
            topic,
            waiting_since_ms: self.now,
            preferred_agent: None,
        };
        let out = self.router.enqueue(self.now, conv);
        self.absorb(out);
    }

    /// One public call of the steady state.
    fn step(&mut self) -> Kind {
        self.now += 1;
        if self.router.next_deadline().is_some_and(|d| d <= self.now) {
            let out = self.router.tick(self.now);
            self.absorb(out);
            return Kind::Tick;
        }
        if let Some((offer, agent)) = self.offers.pop() {
            let out = self
                .router
                .accept(self.now, &agent, &offer)
                .expect("open offer");
            self.absorb(out);
            return Kind::Accept;
        }
        self.close_next = !self.close_next;
        // Alternate closes and enqueues so the number waiting stays about the same.
        if !self.close_next && !self.assigned.is_empty() {
            let i = self.rng.below(self.assigned.len());
            let conv = self.assigned.swap_remove(i);
            let out = self.router.close(self.now, &conv);
            self.absorb(out);
            return Kind::Close;
        }
        self.enqueue();
        Kind::Enqueue
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(label: &str, mut times: Vec<Duration>) {
    if times.is_empty() {
        return;
    }
    times.sort();
    let total: Duration = times.iter().sum();
    println!(
        "{label:<8} n={:>7}  mean={:>7.2?}  p50={:>7.2?}  p90={:>7.2?}  p99={:>7.2?}  p99.9={:>7.2?}  max={:>7.2?}",
        times.len(),
        total / times.len() as u32,
        percentile(&times, 0.50),
        percentile(&times, 0.90),
        percentile(&times, 0.99),
        percentile(&times, 0.999),
        times[times.len() - 1],
    );
}

/// Times every decision individually and prints the distribution.
fn timed_pass() {
    let started = Instant::now();
    let mut world = World::build(7);
    println!(
        "router bench: {AGENTS} agents, {} topics, {} waiting; built in {:.2?}",
        world.topic_names.len(),
        world.waiting(),
        started.elapsed()
    );
    for _ in 0..10_000 {
        world.step();
    }
    let mut all = Vec::with_capacity(TIMED_STEPS);
    let mut by_kind: Vec<(Kind, Vec<Duration>, u64)> =
        [Kind::Enqueue, Kind::Accept, Kind::Close, Kind::Tick]
            .map(|k| (k, Vec::new(), 0))
            .into();
    let pass = Instant::now();
    for _ in 0..TIMED_STEPS {
        let sent = world.positions_sent;
        let t = Instant::now();
        let kind = world.step();
        let d = t.elapsed();
        all.push(d);
        if let Some((_, v, told)) = by_kind.iter_mut().find(|(k, _, _)| *k == kind) {
            v.push(d);
            *told += world.positions_sent - sent;
        }
    }
    let elapsed = pass.elapsed();
    println!(
        "{TIMED_STEPS} decisions in {elapsed:.2?}: {:.0} decisions/s; {} still waiting",
        TIMED_STEPS as f64 / elapsed.as_secs_f64(),
        world.waiting()
    );
    let mut decisions = Vec::new();
    let mut told_per_kind = Vec::new();
    for (kind, times, told) in by_kind {
        let label = format!("{kind:?}").to_lowercase();
        if !times.is_empty() {
            told_per_kind.push(format!("{label} {:.1}", told as f64 / times.len() as f64));
        }
        if kind != Kind::Tick {
            decisions.extend_from_slice(&times);
        }
        report(&label, times);
    }
    report("no tick", decisions);
    report("all", all);
    println!(
        "queue positions sent per call: {}",
        told_per_kind.join(", ")
    );
}

fn decisions(c: &mut Criterion) {
    let mut world = World::build(42);
    for _ in 0..10_000 {
        world.step();
    }
    c.bench_function("router decision (enqueue | accept | close | tick)", |b| {
        b.iter(|| black_box(world.step()))
    });
}

fn main() {
    // The timed pass only under `cargo bench`, not when `cargo test` runs benches once.
    if std::env::args().any(|a| a == "--bench") {
        timed_pass();
    }
    let mut criterion = Criterion::default().configure_from_args();
    decisions(&mut criterion);
    criterion.final_summary();
}
