//! What the abuse suite found, and whether that is a pass: the counts of each attack's
//! outcomes by kind ([`Tally`]), the legitimate chat's figures, the hub's peak memory and
//! descriptors, the thresholds and the failures they give ([`judge`]), printed as text or
//! JSON. It measures nothing itself.

use std::{collections::BTreeMap, fmt::Write};

use serde::Serialize;

use crate::metrics::Percentiles;

/// Counts by kind of outcome (`HTTP 503`, `close 1009`, `start acked`, …).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Tally(BTreeMap<String, u64>);

impl Tally {
    pub fn add(&mut self, kind: impl Into<String>) {
        self.add_n(kind, 1);
    }

    pub fn add_n(&mut self, kind: impl Into<String>, n: u64) {
        if n > 0 {
            *self.0.entry(kind.into()).or_default() += n;
        }
    }

    pub fn get(&self, kind: &str) -> u64 {
        self.0.get(kind).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn merge(&mut self, other: &Tally) {
        for (kind, n) in &other.0 {
            self.add_n(kind.clone(), *n);
        }
    }

    /// `HTTP 503 ×12, held open ×3`, most frequent first.
    pub fn line(&self) -> String {
        let mut entries: Vec<(&String, &u64)> = self.0.iter().collect();
        entries.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
        let parts: Vec<String> = entries
            .into_iter()
            .map(|(kind, n)| format!("{kind} ×{n}"))
            .collect();
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(", ")
        }
    }
}

impl<S: Into<String>> FromIterator<S> for Tally {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut tally = Tally::default();
        for kind in iter {
            tally.add(kind);
        }
        tally
    }
}

/// What the legitimate pair saw and the probes found while one attack (or the whole
/// suite) ran.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LegitWindow {
    /// Customer → agent latency of the messages delivered in the window.
    pub latency: Percentiles,
    /// New legitimate connections (`/healthz`, a customer `hello`): `ok` or the failure.
    pub probes: Tally,
    /// The hub's peak resident memory and open descriptors in the window.
    pub rss_peak_mb: Option<f64>,
    pub fds_peak: Option<u64>,
}

impl LegitWindow {
    pub fn probe_failures(&self) -> u64 {
        self.probes.total() - self.probes.get("ok")
    }
}

/// One attack: what was sent and how the hub answered.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct AttackReport {
    pub name: String,
    /// What was sent, in a sentence.
    pub sent: String,
    /// How the hub answered, by kind.
    pub answers: Tally,
    /// Anything else worth a line (time to close, a latecomer's queue position).
    pub notes: Vec<String>,
    pub seconds: f64,
    /// Conversations one visitor managed to create (session reuse).
    pub visitor_chats: Option<u64>,
    /// Half-sent requests the hub still held when the hold ended (slow headers).
    pub slow_held: Option<u64>,
    pub during: LegitWindow,
}

/// The legitimate chat over the whole suite.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LegitFigures {
    pub sent: u64,
    pub acked: u64,
    pub delivered: u64,
    /// Acknowledged messages the agent never read.
    pub lost: u64,
    /// Messages with neither an ack nor an error.
    pub unanswered: u64,
    /// Errors answered to the customer's messages, by code.
    pub errors: Tally,
    /// Why a legitimate connection ended before the suite did.
    pub ended_early: Vec<String>,
    pub overall: LegitWindow,
}

/// The pass bounds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Thresholds {
    pub max_p99_ms: f64,
    pub max_rss_mb: f64,
    pub max_fds: u64,
    pub max_probe_failures: u64,
    /// Conversations one visitor may create during the session-reuse attack.
    pub max_chats_per_visitor: u64,
    /// Half-sent requests the hub may still hold at the end of the slow-headers hold.
    pub max_slow_held: u64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AbuseReport {
    pub profile: String,
    pub hub: String,
    pub hub_pid: Option<u32>,
    pub legit_address: String,
    pub attacker_addresses: String,
    pub baseline_rss_mb: Option<f64>,
    pub baseline_fds: Option<u64>,
    pub attacks: Vec<AttackReport>,
    pub legit: LegitFigures,
    pub thresholds: Thresholds,
    /// Empty when the suite passed.
    pub failures: Vec<String>,
}

/// Why the run fails, if it does: the legitimate chat lost or missed a message, its
/// p99 went over the bound, a legitimate connection was refused, one visitor created
/// more chats than allowed, half-sent requests were held to the end, or the hub's peak
/// RSS or descriptors went over their ceilings.
pub fn judge(legit: &LegitFigures, attacks: &[AttackReport], t: &Thresholds) -> Vec<String> {
    let mut failures = Vec::new();
    if legit.sent == 0 || legit.overall.latency.count == 0 {
        failures.push("the legitimate chat delivered nothing".into());
    }
    if legit.lost > 0 {
        failures.push(format!(
            "{} acknowledged legitimate messages never reached the agent",
            legit.lost
        ));
    }
    if legit.unanswered > 0 || !legit.errors.is_empty() {
        failures.push(format!(
            "{} legitimate messages got no ack ({} unanswered; errors: {})",
            legit.unanswered + legit.errors.total(),
            legit.unanswered,
            legit.errors.line()
        ));
    }
    for why in &legit.ended_early {
        failures.push(format!("a legitimate connection ended early: {why}"));
    }
    let p99 = legit.overall.latency.p99_ms;
    if p99 > t.max_p99_ms {
        failures.push(format!(
            "legitimate p99 {p99:.1} ms is over {:.0} ms",
            t.max_p99_ms
        ));
    }
    let probe_failures: u64 = attacks.iter().map(|a| a.during.probe_failures()).sum();
    if probe_failures > t.max_probe_failures {
        let mut kinds = Tally::default();
        for attack in attacks {
            kinds.merge(&attack.during.probes);
        }
        failures.push(format!(
            "{probe_failures} new legitimate connections failed (over {}): {}",
            t.max_probe_failures,
            kinds.line()
        ));
    }
    for attack in attacks {
        if let Some(held) = attack.slow_held.filter(|held| *held > t.max_slow_held) {
            failures.push(format!(
                "{}: the hub still held {held} half-sent requests at the end, over {}",
                attack.name, t.max_slow_held
            ));
        }
        if let Some(chats) = attack
            .visitor_chats
            .filter(|chats| *chats > t.max_chats_per_visitor)
        {
            failures.push(format!(
                "{}: one visitor created {chats} conversations, over {}",
                attack.name, t.max_chats_per_visitor
            ));
        }
    }
    // The hub's memory stays up after an attack (the allocator keeps it), so the peaks
    // are judged once, named by the attack during which they were reached.
    let peak_rss = attacks
        .iter()
        .filter_map(|a| Some((a.during.rss_peak_mb?, a.name.as_str())))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((rss, name)) = peak_rss.filter(|(rss, _)| *rss > t.max_rss_mb) {
        failures.push(format!(
            "hub RSS peaked at {rss:.0} MB (during {name}), over {:.0} MB",
            t.max_rss_mb
        ));
    }
    let peak_fds = attacks
        .iter()
        .filter_map(|a| Some((a.during.fds_peak?, a.name.as_str())))
        .max_by_key(|(fds, _)| *fds);
    if let Some((fds, name)) = peak_fds.filter(|(fds, _)| *fds > t.max_fds) {
        failures.push(format!(
            "hub descriptors peaked at {fds} (during {name}), over {}",
            t.max_fds
        ));
    }
    failures
}

fn opt_mb(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.0} MB"))
}

fn opt_n(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn latency_line(p: &Percentiles) -> String {
    if p.count == 0 {
        "no messages".into()
    } else {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} messages)",
            p.p50_ms, p.p99_ms, p.max_ms, p.count
        )
    }
}

impl AbuseReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    pub fn to_json(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        let t = &self.thresholds;
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "abuse suite ({}) against {}: attackers from {}, the legitimate chat from {}",
            self.profile, self.hub, self.attacker_addresses, self.legit_address
        );
        let _ = writeln!(
            out,
            "hub before the attacks: RSS {}, descriptors {}",
            opt_mb(self.baseline_rss_mb),
            opt_n(self.baseline_fds)
        );
        for attack in &self.attacks {
            let d = &attack.during;
            let _ = writeln!(out, "\n## {} ({:.1} s)", attack.name, attack.seconds);
            let _ = writeln!(out, "  sent:        {}", attack.sent);
            let _ = writeln!(out, "  hub answers: {}", attack.answers.line());
            for note in &attack.notes {
                let _ = writeln!(out, "  note:        {note}");
            }
            let _ = writeln!(out, "  legit chat:  {}", latency_line(&d.latency));
            let _ = writeln!(out, "  new legit connections: {}", d.probes.line());
            let _ = writeln!(
                out,
                "  hub peak:    RSS {}, descriptors {}",
                opt_mb(d.rss_peak_mb),
                opt_n(d.fds_peak)
            );
        }
        let l = &self.legit;
        let _ = writeln!(out, "\n## the legitimate chat, all attacks");
        let _ = writeln!(
            out,
            "  messages: {} sent, {} acked, {} delivered, {} lost, {} unanswered, errors: {}",
            l.sent,
            l.acked,
            l.delivered,
            l.lost,
            l.unanswered,
            l.errors.line()
        );
        let _ = writeln!(
            out,
            "  customer→agent: {}",
            latency_line(&l.overall.latency)
        );
        let _ = writeln!(
            out,
            "  hub peak: RSS {}, descriptors {}",
            opt_mb(l.overall.rss_peak_mb),
            opt_n(l.overall.fds_peak)
        );
        let _ = writeln!(
            out,
            "\nthresholds: p99 ≤ {:.0} ms, hub RSS ≤ {:.0} MB, hub descriptors ≤ {}, failed legit connections ≤ {}, chats per visitor ≤ {}, half-sent requests held to the end ≤ {}{}",
            t.max_p99_ms,
            t.max_rss_mb,
            t.max_fds,
            t.max_probe_failures,
            t.max_chats_per_visitor,
            t.max_slow_held,
            if self.hub_pid.is_none() {
                " (RSS and descriptors not checked: no --hub-pid)"
            } else {
                ""
            }
        );
        if self.failures.is_empty() {
            let _ = writeln!(out, "PASS");
        } else {
            let _ = writeln!(out, "FAIL");
            for failure in &self.failures {
                let _ = writeln!(out, "  - {failure}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thresholds() -> Thresholds {
        Thresholds {
            max_p99_ms: 500.0,
            max_rss_mb: 200.0,
            max_fds: 1000,
            max_probe_failures: 0,
            max_chats_per_visitor: 50,
            max_slow_held: 0,
        }
    }

    fn clean_legit() -> LegitFigures {
        LegitFigures {
            sent: 10,
            acked: 10,
            delivered: 10,
            overall: LegitWindow {
                latency: Percentiles {
                    count: 10,
                    p50_ms: 2.0,
                    p99_ms: 9.0,
                    ..Percentiles::default()
                },
                ..LegitWindow::default()
            },
            ..LegitFigures::default()
        }
    }

    fn attack(rss: f64, fds: u64, probes: &[&str]) -> AttackReport {
        AttackReport {
            name: "connection flood".into(),
            during: LegitWindow {
                rss_peak_mb: Some(rss),
                fds_peak: Some(fds),
                probes: probes.iter().copied().collect(),
                ..LegitWindow::default()
            },
            ..AttackReport::default()
        }
    }

    #[test]
    fn tallies_count_and_print_most_frequent_first() {
        let mut tally: Tally = ["HTTP 503", "held open", "HTTP 503"].into_iter().collect();
        tally.add_n("reset", 0);
        assert_eq!(tally.get("HTTP 503"), 2);
        assert_eq!(tally.total(), 3);
        assert_eq!(tally.line(), "HTTP 503 ×2, held open ×1");
        assert_eq!(Tally::default().line(), "nothing");
    }

    #[test]
    fn a_clean_run_passes() {
        let attacks = [attack(150.0, 900, &["ok", "ok"])];
        assert!(judge(&clean_legit(), &attacks, &thresholds()).is_empty());
    }

    #[test]
    fn each_bound_fails_on_its_own() {
        let t = thresholds();
        let mut slow = clean_legit();
        slow.overall.latency.p99_ms = 501.0;
        assert_eq!(judge(&slow, &[], &t).len(), 1);

        let mut lossy = clean_legit();
        lossy.lost = 1;
        assert!(judge(&lossy, &[], &t)[0].contains("never reached"));

        let mut refused = clean_legit();
        refused.errors.add("rate_limited");
        assert!(judge(&refused, &[], &t)[0].contains("rate_limited"));

        let mut cut = clean_legit();
        cut.ended_early.push("agent: close 1013".into());
        assert_eq!(judge(&cut, &[], &t).len(), 1);

        let mut later = attack(201.0, 10, &[]);
        later.name = "non-reading history".into();
        let fat = judge(
            &clean_legit(),
            &[attack(20.0, 1001, &["ok"]), later.clone(), later],
            &t,
        );
        assert_eq!(
            fat,
            [
                "hub RSS peaked at 201 MB (during non-reading history), over 200 MB",
                "hub descriptors peaked at 1001 (during connection flood), over 1000"
            ],
            "{fat:?}"
        );

        let unreachable = judge(
            &clean_legit(),
            &[attack(1.0, 1, &["ok", "healthz: timed out"])],
            &t,
        );
        assert!(
            unreachable[0].contains("healthz: timed out"),
            "{unreachable:?}"
        );

        let mut slow = attack(1.0, 1, &[]);
        slow.slow_held = Some(3);
        assert!(judge(&clean_legit(), &[slow], &t)[0].contains("held 3 half-sent"));

        let mut reuse = attack(1.0, 1, &[]);
        reuse.visitor_chats = Some(51);
        assert!(judge(&clean_legit(), &[reuse], &t)[0].contains("created 51"));

        let silent = judge(&LegitFigures::default(), &[], &t);
        assert!(silent[0].contains("delivered nothing"));
    }

    #[test]
    fn the_text_names_every_attack_and_the_verdict() {
        let report = AbuseReport {
            profile: "short".into(),
            hub: "http://127.0.0.1:1".into(),
            hub_pid: Some(1),
            legit_address: "127.0.0.1".into(),
            attacker_addresses: "127.0.0.2–127.0.0.5".into(),
            baseline_rss_mb: Some(20.0),
            baseline_fds: Some(30),
            attacks: vec![attack(150.0, 900, &["ok"])],
            legit: clean_legit(),
            thresholds: thresholds(),
            failures: vec!["legitimate p99 600.0 ms is over 500 ms".into()],
        };
        let text = report.text();
        assert!(text.contains("## connection flood"), "{text}");
        assert!(text.contains("FAIL\n  - legitimate p99"), "{text}");
        assert!(!report.passed());
        assert!(report
            .to_json()
            .expect("json")
            .contains("\"max_fds\": 1000"));
    }
}
