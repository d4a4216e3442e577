//! Reports: the figures of a run as JSON (for scripts and CI) and as one self-contained
//! HTML page with inline SVG plots (latency over time, latency by percentile, delivered
//! messages per second, hub memory and CPU) — no JavaScript, no external assets. It owns
//! presentation; the numbers come from [`crate::metrics`] and [`crate::verify`].
//! [`durable`] compares the hub with the durable floor (issue 19).

mod durable;

pub use durable::DurableRatios;

use std::{collections::BTreeMap, fmt::Write as _, sync::atomic::Ordering};

use serde::Serialize;

use crate::{
    failover::FailoverFigures,
    floor::durable::{DurableFloor, JournalFigures},
    metrics::{CurvePoint, Lat, Metrics, Percentiles, SeriesPoint},
    procfs::ProcSummary,
    scenario::Scenario,
    verify::{Problem, Verdict, PROBLEMS_KEPT},
};

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ConversationCounts {
    pub started: u64,
    pub joined: u64,
    pub closed: u64,
    pub unassigned: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct MessageCounts {
    pub sent: u64,
    pub acked: u64,
    /// Message events read live by the other side.
    pub delivered: u64,
    /// Delivered per second from the first send to the last delivery.
    pub per_sec: f64,
    /// Median of the per-second delivery counts (seconds with traffic).
    pub median_second_per_sec: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LatencyFigures {
    /// Both directions together.
    pub message: Percentiles,
    pub customer_to_agent: Percentiles,
    pub agent_to_customer: Percentiles,
    pub ack: Percentiles,
    pub first_offer: Percentiles,
    pub joined: Percentiles,
}

/// The figures of one load (hub or floor).
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadFigures {
    pub label: String,
    pub connections_peak: i64,
    pub connects: u64,
    pub conversations: ConversationCounts,
    pub messages: MessageCounts,
    pub latency: LatencyFigures,
    pub offers: u64,
    pub reconnects: u64,
    pub resends: u64,
    pub transfers_requested: u64,
    pub transfers_failed: u64,
    pub replies_missing: u64,
    pub errors: BTreeMap<String, u64>,
    pub client_failures: Vec<String>,
    /// RSS and CPU of the processes involved (hub, redis, this harness), when sampled.
    pub processes: Vec<ProcSummary>,
    /// The hubs' ticket flushes after the load, waited for before the CPU was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tickets: Option<crate::tickets::TicketsSettled>,
    pub series: Vec<SeriesPoint>,
    pub curve: Vec<CurvePoint>,
}

impl LoadFigures {
    pub fn from_metrics(label: &str, m: &Metrics) -> LoadFigures {
        let c = &m.counters;
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        LoadFigures {
            label: label.to_string(),
            connections_peak: c.connections_peak.load(Ordering::Relaxed),
            connects: get(&c.connects),
            conversations: ConversationCounts {
                started: get(&c.conversations_started),
                joined: get(&c.conversations_joined),
                closed: get(&c.conversations_closed),
                unassigned: get(&c.conversations_unassigned),
            },
            messages: MessageCounts {
                sent: get(&c.messages_sent),
                acked: get(&c.messages_acked),
                delivered: get(&c.messages_delivered),
                per_sec: m.delivered_per_sec(),
                median_second_per_sec: m.median_second_rate(),
            },
            latency: LatencyFigures {
                message: m.message_percentiles(),
                customer_to_agent: m.percentiles(Lat::CustomerToAgent),
                agent_to_customer: m.percentiles(Lat::AgentToCustomer),
                ack: m.percentiles(Lat::Ack),
                first_offer: m.percentiles(Lat::FirstOffer),
                joined: m.percentiles(Lat::Joined),
            },
            offers: get(&c.offers),
            reconnects: get(&c.reconnects),
            resends: get(&c.resends),
            transfers_requested: get(&c.transfers_requested),
            transfers_failed: get(&c.transfers_failed),
            replies_missing: get(&c.replies_missing),
            errors: m.errors(),
            client_failures: Vec::new(),
            processes: Vec::new(),
            tickets: None,
            series: m.series(),
            curve: m.message_curve(),
        }
    }
}

/// The hub's figures over the floor's.
#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    /// Hub delivered/s ÷ floor delivered/s (1.0 = as fast as the floor).
    pub throughput: f64,
    /// Hub message latency ÷ floor message latency (1.0 = as fast as the floor).
    pub p50_latency: f64,
    pub p99_latency: f64,
}

impl Ratios {
    pub fn of(hub: &LoadFigures, floor: &LoadFigures) -> Ratios {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        Ratios {
            throughput: ratio(hub.messages.per_sec, floor.messages.per_sec),
            p50_latency: ratio(hub.latency.message.p50_ms, floor.latency.message.p50_ms),
            p99_latency: ratio(hub.latency.message.p99_ms, floor.latency.message.p99_ms),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VerificationSummary {
    pub ok: bool,
    pub summary: String,
    pub conversations: usize,
    pub messages_checked: u64,
    pub unassigned: usize,
    pub counts: BTreeMap<&'static str, usize>,
    /// The first problems found (at most [`PROBLEMS_KEPT`]).
    pub problems: Vec<Problem>,
}

impl VerificationSummary {
    pub fn of(v: &Verdict) -> VerificationSummary {
        VerificationSummary {
            ok: v.is_clean(),
            summary: v.summary(),
            conversations: v.conversations,
            messages_checked: v.messages_checked,
            unassigned: v.unassigned,
            counts: v.counts(),
            problems: v.problems.iter().take(PROBLEMS_KEPT).cloned().collect(),
        }
    }
}

/// `idle`: memory of the hub per idle connection.
#[derive(Debug, Clone, Serialize)]
pub struct IdleFigures {
    pub requested: usize,
    pub connected: usize,
    pub failed: usize,
    pub errors: BTreeMap<String, u64>,
    pub connect_seconds: f64,
    pub hold_seconds: f64,
    pub hub_pid: Option<u32>,
    pub rss_before_mb: Option<f64>,
    pub rss_held_mb: Option<f64>,
    pub rss_after_close_mb: Option<f64>,
    /// (held − before) ÷ connected.
    pub rss_per_connection_kb: Option<f64>,
    pub harness_rss_mb: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub started_at_unix_ms: u64,
    pub finished_at_unix_ms: u64,
    pub run_id: Option<String>,
    pub machine: Machine,
    pub scenario: Option<Scenario>,
    pub hub: Option<LoadFigures>,
    pub floor: Option<LoadFigures>,
    pub ratios: Option<Ratios>,
    /// The durable floor (issue 19): the floor's relay, storing each frame in Redis first.
    pub durable_floor: Option<LoadFigures>,
    /// What the durable floor appended and what Redis held at the end.
    pub durable_journal: Option<JournalFigures>,
    /// The hub's figures over the durable floor's.
    pub durable_ratios: Option<DurableRatios>,
    /// Why a run has no durable floor (not asked for, no Redis URL, or it failed).
    pub durable_floor_skipped: Option<String>,
    pub verification: Option<VerificationSummary>,
    pub hub_process: Option<ProcSummary>,
    pub idle: Option<IdleFigures>,
    /// A run with `--kill-node-after`: how the killed node's clients came back.
    pub failover: Option<FailoverFigures>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub os: &'static str,
    /// 1-minute load average when the report was made: other work on the machine skews
    /// every figure, so it is kept with them.
    pub load_average: Option<f64>,
}

impl Machine {
    fn here() -> Machine {
        Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            os: std::env::consts::OS,
            load_average: crate::procfs::load_average(),
        }
    }
}

impl Report {
    fn empty(kind: &'static str, started_at: u64) -> Report {
        Report {
            tool: "switchboard-loadtest",
            version: env!("CARGO_PKG_VERSION"),
            kind,
            started_at_unix_ms: started_at,
            finished_at_unix_ms: unix_ms(),
            run_id: None,
            machine: Machine::here(),
            scenario: None,
            hub: None,
            floor: None,
            ratios: None,
            durable_floor: None,
            durable_journal: None,
            durable_ratios: None,
            durable_floor_skipped: None,
            verification: None,
            hub_process: None,
            idle: None,
            failover: None,
        }
    }

    pub fn for_run(
        scenario: Scenario,
        started_at: u64,
        run_id: String,
        hub: LoadFigures,
        floor: Option<LoadFigures>,
        verdict: &Verdict,
    ) -> Report {
        Report {
            run_id: Some(run_id),
            scenario: Some(scenario),
            ratios: floor.as_ref().map(|f| Ratios::of(&hub, f)),
            hub: Some(hub),
            floor,
            verification: Some(VerificationSummary::of(verdict)),
            ..Report::empty("run", started_at)
        }
    }

    pub fn for_floor(scenario: Scenario, started_at: u64, floor: LoadFigures) -> Report {
        Report {
            scenario: Some(scenario),
            floor: Some(floor),
            ..Report::empty("floor", started_at)
        }
    }

    /// `floor --durable`: the durable floor alone.
    pub fn for_durable_floor(scenario: Scenario, started_at: u64, durable: DurableFloor) -> Report {
        Report {
            scenario: Some(scenario),
            durable_floor: Some(durable.figures),
            durable_journal: Some(durable.journal),
            ..Report::empty("durable-floor", started_at)
        }
    }

    /// Adds a run's durable floor, or why it has none, and the hub's ratios to it.
    pub fn set_durable_floor(&mut self, outcome: Result<DurableFloor, String>) {
        match outcome {
            Ok(durable) => {
                self.durable_ratios = self
                    .hub
                    .as_ref()
                    .map(|hub| DurableRatios::of(hub, &durable.figures));
                self.durable_floor = Some(durable.figures);
                self.durable_journal = Some(durable.journal);
            }
            Err(why) => self.durable_floor_skipped = Some(why),
        }
    }

    pub fn for_idle(
        started_at: u64,
        idle: IdleFigures,
        hub_process: Option<ProcSummary>,
    ) -> Report {
        Report {
            idle: Some(idle),
            hub_process,
            ..Report::empty("idle", started_at)
        }
    }

    pub fn to_json(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// A plain-text summary for the terminal.
    pub fn text_summary(&self) -> String {
        let mut out = String::new();
        for figures in [&self.hub, &self.floor, &self.durable_floor]
            .into_iter()
            .flatten()
        {
            let _ = writeln!(out, "{}", figures_text(figures));
        }
        if let Some(j) = &self.durable_journal {
            let _ = writeln!(out, "  {}", j.text());
        }
        if let Some(why) = &self.durable_floor_skipped {
            let _ = writeln!(out, "durable floor: {why}");
        }
        if let Some(r) = &self.ratios {
            let _ = writeln!(
                out,
                "hub vs floor: throughput {:.2}×, p50 latency {:.2}×, p99 latency {:.2}×",
                r.throughput, r.p50_latency, r.p99_latency
            );
        }
        if let Some(r) = &self.durable_ratios {
            let _ = writeln!(out, "{}", r.text());
        }
        if let Some(p) = &self.hub_process {
            let _ = writeln!(out, "{}", process_text(p));
        }
        if let Some(f) = &self.failover {
            out.push_str(&f.text());
        }
        if let Some(load) = self.machine.load_average {
            let _ = writeln!(
                out,
                "machine: {} cores, load average {load:.2} at the end",
                self.machine.cores
            );
        }
        if let Some(i) = &self.idle {
            let _ = writeln!(
                out,
                "idle: {} of {} connections held ({} failed) in {:.1} s; hub RSS {} → {} MB, {} per connection; after close {} MB",
                i.connected,
                i.requested,
                i.failed,
                i.connect_seconds,
                opt(i.rss_before_mb, 1),
                opt(i.rss_held_mb, 1),
                i.rss_per_connection_kb
                    .map_or("n/a (no --hub-pid)".into(), |kb| format!("{kb:.1} KB")),
                opt(i.rss_after_close_mb, 1),
            );
        }
        if let Some(v) = &self.verification {
            let _ = writeln!(out, "verification: {}", v.summary);
            for problem in v.problems.iter().take(20) {
                let _ = writeln!(out, "  {problem}");
            }
        }
        out
    }
}

/// CPU per delivered message, by process: where one message's cost goes on the machine.
/// A thread subset (the floor's relay) is shown as part of its process, not added to the
/// total; reaped children (Redis's AOF rewrites) are added.
fn cpu_per_message(f: &LoadFigures) -> Option<String> {
    let delivered = f.messages.delivered;
    if delivered == 0 || f.processes.is_empty() {
        return None;
    }
    let us = |seconds: f64| seconds * 1e6 / delivered as f64;
    let mut parts = Vec::new();
    let mut total = 0.0;
    for p in &f.processes {
        let own = us(p.cpu_s);
        let mut part = match &p.threads {
            Some(_) => format!("of which {} {own:.1} µs", p.name),
            None => {
                total += own;
                format!("{} {own:.1} µs", p.name)
            }
        };
        if p.children_cpu_s > 0.0 {
            let children = us(p.children_cpu_s);
            total += children;
            let _ = write!(part, " (+{children:.1} µs in its children)");
        }
        parts.push(part);
    }
    Some(format!(
        "CPU per delivered message: {}; all {total:.1} µs",
        parts.join(", ")
    ))
}

fn process_text(p: &ProcSummary) -> String {
    if let Some(threads) = &p.threads {
        return format!(
            "{} ({threads} threads of process {}): CPU mean {:.0}% peak {:.0}% of a core",
            p.name, p.pid, p.cpu_mean_pct, p.cpu_peak_pct
        );
    }
    format!(
        "{} process {}: RSS {:.1} → {:.1} MB (peak {:.1}), CPU mean {:.0}% peak {:.0}% of a core{}",
        p.name,
        p.pid,
        p.rss_start_mb,
        p.rss_end_mb,
        p.rss_peak_mb,
        p.cpu_mean_pct,
        p.cpu_peak_pct,
        p.error
            .as_deref()
            .map_or(String::new(), |e| format!(" ({e})"))
    )
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.decimals$}"))
}

fn pct_text(p: &Percentiles) -> String {
    format!(
        "p50 {:.2} p90 {:.2} p99 {:.2} p999 {:.2} max {:.2} ms (n={})",
        p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms, p.count
    )
}

fn figures_text(f: &LoadFigures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "[{}] delivered {} msgs at {:.0}/s (median second {:.0}/s), sent {}, acked {}, peak connections {}",
        f.label,
        f.messages.delivered,
        f.messages.per_sec,
        f.messages.median_second_per_sec,
        f.messages.sent,
        f.messages.acked,
        f.connections_peak
    );
    let _ = writeln!(out, "  message latency   {}", pct_text(&f.latency.message));
    let _ = writeln!(
        out,
        "  customer→agent    {}",
        pct_text(&f.latency.customer_to_agent)
    );
    let _ = writeln!(
        out,
        "  agent→customer    {}",
        pct_text(&f.latency.agent_to_customer)
    );
    if f.latency.ack.count > 0 {
        let _ = writeln!(out, "  ack               {}", pct_text(&f.latency.ack));
        let _ = writeln!(
            out,
            "  first offer       {}",
            pct_text(&f.latency.first_offer)
        );
        let _ = writeln!(out, "  joined (queue)    {}", pct_text(&f.latency.joined));
        let c = &f.conversations;
        let _ = writeln!(
            out,
            "  chats started {} joined {} closed {} unassigned {}; reconnects {} resends {} transfers {} (failed {}); replies missing {}",
            c.started, c.joined, c.closed, c.unassigned, f.reconnects, f.resends,
            f.transfers_requested, f.transfers_failed, f.replies_missing
        );
    } else if f.replies_missing > 0 {
        let _ = writeln!(out, "  replies missing {}", f.replies_missing);
    }
    if !f.errors.is_empty() {
        let _ = writeln!(out, "  errors {:?}", f.errors);
    }
    for failure in f.client_failures.iter().take(5) {
        let _ = writeln!(out, "  client failure: {failure}");
    }
    if let Some(tickets) = &f.tickets {
        let _ = writeln!(out, "  {}", tickets.text());
    }
    for p in &f.processes {
        let _ = writeln!(out, "  {}", process_text(p));
    }
    if let Some(line) = cpu_per_message(f) {
        let _ = writeln!(out, "  {line}");
    }
    out.trim_end().to_string()
}

// ---------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Line {
    name: String,
    color: &'static str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

#[derive(Clone, Copy)]
enum XAxis {
    Seconds,
    /// x = −log10(1 − p): 0 → 0 %, 1 → 90 %, 2 → 99 % …
    Percentile,
}

fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(v.log10().floor());
    for step in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if step * magnitude >= v {
            return step * magnitude;
        }
    }
    10.0 * magnitude
}

fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn chart(title: &str, y_label: &str, axis: XAxis, lines: &[Line]) -> String {
    const W: f64 = 760.0;
    const H: f64 = 300.0;
    const L: f64 = 64.0;
    const R: f64 = 16.0;
    const T: f64 = 28.0;
    const B: f64 = 44.0;
    let all = lines.iter().flat_map(|l| l.points.iter());
    let x_max = match axis {
        XAxis::Seconds => nice_max(all.clone().map(|p| p.0).fold(0.0, f64::max)),
        XAxis::Percentile => 5.0,
    };
    // A few extreme points (the drain at the end of a run, one stall) would flatten
    // everything else: scale to the 98th percentile of the points and clip above it.
    let mut ys: Vec<f64> = all.map(|p| p.1).filter(|y| y.is_finite()).collect();
    ys.sort_by(f64::total_cmp);
    let top = ys.last().copied().unwrap_or(0.0);
    let p98 = ys
        .get((ys.len() * 98 / 100).min(ys.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0);
    let clipped = top > p98 * 2.0;
    let y_max = nice_max(if clipped { p98 * 1.5 } else { top * 1.05 });
    let title = if clipped {
        format!(
            "{title} (clipped at {}; max {})",
            fmt_tick(y_max),
            fmt_tick(top)
        )
    } else {
        title.to_string()
    };
    let sx = |x: f64| L + (x / x_max).clamp(0.0, 1.0) * (W - L - R);
    let sy = |y: f64| H - B - (y / y_max).clamp(0.0, 1.0) * (H - T - B);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" font-family="sans-serif" font-size="11">"##
    );
    let _ = write!(
        svg,
        r##"<text x="{L}" y="16" font-size="13" font-weight="bold">{}</text>"##,
        esc(&title)
    );
    // Grid and ticks.
    for i in 0..=5 {
        let v = y_max * f64::from(i) / 5.0;
        let y = sy(v);
        let _ = write!(
            svg,
            r##"<line x1="{L}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - R,
            L - 6.0,
            y + 4.0,
            fmt_tick(v)
        );
    }
    let x_ticks: Vec<(f64, String)> = match axis {
        XAxis::Seconds => (0..=5)
            .map(|i| {
                let v = x_max * f64::from(i) / 5.0;
                (v, fmt_tick(v))
            })
            .collect(),
        XAxis::Percentile => ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
            .iter()
            .enumerate()
            .map(|(i, label)| (i as f64, (*label).to_string()))
            .collect(),
    };
    for (v, label) in x_ticks {
        let x = sx(v);
        let _ = write!(
            svg,
            r##"<line x1="{x:.1}" y1="{T}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            H - B,
            H - B + 16.0
        );
    }
    let x_label = match axis {
        XAxis::Seconds => "seconds into the run",
        XAxis::Percentile => "percentile",
    };
    let _ = write!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">{x_label}</text><text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"##,
        (L + W - R) / 2.0,
        H - 8.0,
        (T + H - B) / 2.0,
        esc(y_label)
    );
    let _ = write!(
        svg,
        r##"<rect x="{L}" y="{T}" width="{:.1}" height="{:.1}" fill="none" stroke="#999"/>"##,
        W - L - R,
        H - T - B
    );
    // Lines and legend.
    for (i, line) in lines.iter().enumerate() {
        if line.points.is_empty() {
            continue;
        }
        let path: Vec<String> = line
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let dash = if line.dashed {
            r#" stroke-dasharray="5 3""#
        } else {
            ""
        };
        let _ = write!(
            svg,
            r##"<polyline fill="none" stroke="{}" stroke-width="1.6"{dash} points="{}"/>"##,
            line.color,
            path.join(" ")
        );
        let lx = W - R - 170.0;
        let ly = T + 14.0 + 14.0 * i as f64;
        let _ = write!(
            svg,
            r##"<line x1="{lx:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{ly:.1}">{}</text>"##,
            ly - 4.0,
            lx + 18.0,
            ly - 4.0,
            line.color,
            lx + 24.0,
            esc(&line.name)
        );
    }
    svg.push_str("</svg>");
    svg
}

fn percentile_x(p: f64) -> f64 {
    if p >= 100.0 {
        5.0
    } else {
        (-(1.0 - p / 100.0).log10()).clamp(0.0, 5.0)
    }
}

const HUB_COLOR: &str = "#1f6fd1";
const FLOOR_COLOR: &str = "#d1601f";
const DURABLE_COLOR: &str = "#7b3fb5";

fn figures_lines(
    f: &LoadFigures,
    color: &'static str,
    pick: impl Fn(&SeriesPoint) -> f64,
    suffix: &str,
    dashed: bool,
) -> Line {
    Line {
        name: format!("{} {suffix}", f.label),
        color,
        dashed,
        points: f.series.iter().map(|p| (p.t_s, pick(p))).collect(),
    }
}

fn pct_row(name: &str, p: &Percentiles) -> String {
    format!(
        "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td><td>{:.3}</td></tr>",
        esc(name),
        p.count,
        p.mean_ms,
        p.p50_ms,
        p.p90_ms,
        p.p99_ms,
        p.p999_ms,
        p.max_ms
    )
}

fn figures_html(f: &LoadFigures) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<h2>{}</h2><p>Delivered <b>{}</b> messages at <b>{:.0}/s</b> (median second {:.0}/s); sent {}, acknowledged {}; peak connections {}, connects {}.</p>",
        esc(&f.label),
        f.messages.delivered,
        f.messages.per_sec,
        f.messages.median_second_per_sec,
        f.messages.sent,
        f.messages.acked,
        f.connections_peak,
        f.connects
    );
    out.push_str("<table><tr><th>latency (ms)</th><th>n</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>");
    out.push_str(&pct_row("message (both ways)", &f.latency.message));
    out.push_str(&pct_row("customer → agent", &f.latency.customer_to_agent));
    out.push_str(&pct_row("agent → customer", &f.latency.agent_to_customer));
    if f.latency.ack.count > 0 {
        out.push_str(&pct_row("ack", &f.latency.ack));
        out.push_str(&pct_row("start → first offer", &f.latency.first_offer));
        out.push_str(&pct_row("start → joined (queue wait)", &f.latency.joined));
    }
    out.push_str("</table>");
    if f.latency.ack.count > 0 {
        let c = &f.conversations;
        let _ = write!(
            out,
            "<p>Chats: started {}, joined {}, closed {}, unassigned {}. Offers {}. Reconnects {}, resends {}. Transfers {} (failed {}). Replies missing {}.</p>",
            c.started, c.joined, c.closed, c.unassigned, f.offers, f.reconnects, f.resends,
            f.transfers_requested, f.transfers_failed, f.replies_missing
        );
    }
    if !f.errors.is_empty() {
        out.push_str("<table><tr><th>error</th><th>count</th></tr>");
        for (code, n) in &f.errors {
            let _ = write!(out, "<tr><td>{}</td><td>{n}</td></tr>", esc(code));
        }
        out.push_str("</table>");
    }
    for failure in f.client_failures.iter().take(20) {
        let _ = write!(out, "<p class=bad>client failure: {}</p>", esc(failure));
    }
    if !f.processes.is_empty() {
        out.push_str("<table><tr><th>process</th><th>pid</th><th>RSS start (MB)</th><th>end</th><th>peak</th><th>CPU mean (% of a core)</th><th>peak</th></tr>");
        for p in &f.processes {
            let rss = match p.threads {
                Some(_) => "<td>—</td><td>—</td><td>—</td>".to_string(),
                None => format!(
                    "<td>{:.1}</td><td>{:.1}</td><td>{:.1}</td>",
                    p.rss_start_mb, p.rss_end_mb, p.rss_peak_mb
                ),
            };
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td>{rss}<td>{:.0}</td><td>{:.0}</td></tr>",
                esc(&p.name),
                p.pid,
                p.cpu_mean_pct,
                p.cpu_peak_pct
            );
        }
        out.push_str("</table>");
        if let Some(line) = cpu_per_message(f) {
            let _ = write!(out, "<p>{}</p>", esc(&line));
        }
        out.push_str(&process_charts(&f.label, &f.processes));
    }
    out
}

const PROCESS_COLORS: [&str; 4] = ["#1f6fd1", "#2a9d3a", "#d1601f", "#7b3fb5"];

fn process_charts(label: &str, processes: &[ProcSummary]) -> String {
    let line = |i: usize, p: &ProcSummary, pick: fn(&crate::procfs::ProcSample) -> f64| Line {
        name: p.name.clone(),
        color: PROCESS_COLORS[i % PROCESS_COLORS.len()],
        dashed: false,
        points: p.samples.iter().map(|s| (s.t_s, pick(s))).collect(),
    };
    let rss: Vec<Line> = processes
        .iter()
        .enumerate()
        .filter(|(_, p)| p.threads.is_none())
        .map(|(i, p)| line(i, p, |s| s.rss_mb))
        .collect();
    let cpu: Vec<Line> = processes
        .iter()
        .enumerate()
        .map(|(i, p)| line(i, p, |s| s.cpu_pct))
        .collect();
    format!(
        "{}{}",
        chart(
            &format!("{label}: resident memory"),
            "MB",
            XAxis::Seconds,
            &rss
        ),
        chart(
            &format!("{label}: CPU"),
            "% of one core",
            XAxis::Seconds,
            &cpu
        )
    )
}

impl Report {
    /// The whole report as one HTML page.
    pub fn to_html(&self) -> String {
        let mut body = String::new();
        let _ = write!(
            body,
            "<h1>Switchboard load test — {}</h1><p>{} {}; {} cores; run id {}.</p>",
            self.kind,
            self.tool,
            self.version,
            self.machine.cores,
            esc(self.run_id.as_deref().unwrap_or("-"))
        );
        if let Some(v) = &self.verification {
            let class = if v.ok { "good" } else { "bad" };
            let _ = write!(
                body,
                "<p class={class}><b>Verification:</b> {}</p>",
                esc(&v.summary)
            );
            if !v.problems.is_empty() {
                body.push_str("<ul>");
                for p in v.problems.iter().take(50) {
                    let _ = write!(body, "<li>{}</li>", esc(&p.to_string()));
                }
                body.push_str("</ul>");
            }
        }
        if let Some(r) = &self.ratios {
            let _ = write!(
                body,
                "<p><b>Hub vs floor:</b> throughput {:.2}× the floor's, p50 latency {:.2}×, p99 latency {:.2}×.</p>",
                r.throughput, r.p50_latency, r.p99_latency
            );
        }
        if let Some(r) = &self.durable_ratios {
            let _ = write!(body, "<p><b>Durable floor:</b> {}.</p>", esc(&r.text()));
        }
        if let Some(why) = &self.durable_floor_skipped {
            let _ = write!(body, "<p><b>Durable floor:</b> {}.</p>", esc(why));
        }
        let loads: Vec<(&LoadFigures, &'static str)> = [
            (&self.hub, HUB_COLOR),
            (&self.floor, FLOOR_COLOR),
            (&self.durable_floor, DURABLE_COLOR),
        ]
        .into_iter()
        .filter_map(|(f, c)| f.as_ref().map(|f| (f, c)))
        .collect();
        if !loads.is_empty() {
            let mut lines = Vec::new();
            for (f, color) in &loads {
                lines.push(figures_lines(f, color, |p| p.p50_ms, "p50", false));
                lines.push(figures_lines(f, color, |p| p.p99_ms, "p99", true));
            }
            body.push_str(&chart(
                "Message latency over time",
                "ms",
                XAxis::Seconds,
                &lines,
            ));
            let curves: Vec<Line> = loads
                .iter()
                .map(|(f, color)| Line {
                    name: f.label.clone(),
                    color,
                    dashed: false,
                    points: f
                        .curve
                        .iter()
                        .map(|c| (percentile_x(c.percentile), c.ms))
                        .collect(),
                })
                .collect();
            body.push_str(&chart(
                "Message latency by percentile",
                "ms",
                XAxis::Percentile,
                &curves,
            ));
            let rates: Vec<Line> = loads
                .iter()
                .map(|(f, color)| {
                    figures_lines(f, color, |p| p.delivered as f64, "delivered/s", false)
                })
                .collect();
            body.push_str(&chart(
                "Messages delivered per second",
                "messages/s",
                XAxis::Seconds,
                &rates,
            ));
            for (f, _) in &loads {
                body.push_str(&figures_html(f));
            }
            if let Some(j) = &self.durable_journal {
                let _ = write!(body, "<p>{}</p>", esc(&j.text()));
            }
        }
        if let Some(p) = &self.hub_process {
            let _ = write!(body, "<h2>Hub process</h2><p>{}</p>", esc(&process_text(p)));
            body.push_str(&process_charts("hub", std::slice::from_ref(p)));
        }
        if let Some(i) = &self.idle {
            let _ = write!(
                body,
                "<h2>Idle connections</h2><table><tr><th>requested</th><th>held</th><th>failed</th><th>hub RSS before (MB)</th><th>held (MB)</th><th>per connection (KB)</th><th>after close (MB)</th></tr><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
                i.requested,
                i.connected,
                i.failed,
                opt(i.rss_before_mb, 1),
                opt(i.rss_held_mb, 1),
                opt(i.rss_per_connection_kb, 1),
                opt(i.rss_after_close_mb, 1)
            );
        }
        if let Some(s) = &self.scenario {
            let toml = toml::to_string(s).unwrap_or_default();
            let _ = write!(body, "<h2>Scenario</h2><pre>{}</pre>", esc(&toml));
        }
        format!(
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>Switchboard load test</title><style>body{{font-family:sans-serif;max-width:800px;margin:2em auto;color:#222}}table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}.good{{color:#176d2a}}.bad{{color:#b00020}}svg{{display:block;margin:1em 0}}</style></head><body>{body}</body></html>"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Clock;

    fn figures(label: &str, scale: u64) -> LoadFigures {
        let m = Metrics::new(Clock::new());
        for i in 1..=100u64 {
            m.sent_at(i * 20_000);
            m.record_at(Lat::CustomerToAgent, i * 10 * scale, i * 20_000);
        }
        LoadFigures::from_metrics(label, &m)
    }

    #[test]
    fn ratios_and_html_are_self_contained() {
        let hub = figures("hub", 2);
        let floor = figures("floor", 1);
        let verdict = Verdict::default();
        let report = Report::for_run(
            Scenario::default(),
            0,
            "lt1".into(),
            hub,
            Some(floor),
            &verdict,
        );
        let r = report.ratios.as_ref().expect("ratios");
        assert!((r.p50_latency - 2.0).abs() < 0.05, "{r:?}");
        assert!((r.throughput - 1.0).abs() < 0.05, "{r:?}");
        let html = report.to_html();
        assert!(html.contains("<svg"));
        assert!(html.contains("Message latency by percentile"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("src=\"http"), "no external assets");
        let json = report.to_json().expect("json");
        assert!(json.contains("\"ratios\""));
        assert!(report.text_summary().contains("hub vs floor"));
    }

    /// A process summary for tests (also `durable.rs`'s).
    pub(super) fn process(
        name: &str,
        threads: Option<&str>,
        cpu_s: f64,
        children_cpu_s: f64,
    ) -> ProcSummary {
        ProcSummary {
            name: name.into(),
            pid: 7,
            threads: threads.map(String::from),
            rss_start_mb: 1.0,
            rss_end_mb: 2.0,
            rss_peak_mb: 2.0,
            cpu_mean_pct: 50.0,
            cpu_peak_pct: 90.0,
            cpu_s,
            children_cpu_s,
            samples: Vec::new(),
            error: None,
        }
    }

    #[test]
    fn cpu_per_message_adds_processes_and_children_not_thread_subsets() {
        let mut hub = figures("hub", 1);
        hub.messages.delivered = 1_000_000;
        hub.processes = vec![
            process("hub", None, 11.7, 0.0),
            process("redis", None, 7.0, 2.8),
            process("harness", None, 11.4, 0.0),
        ];
        assert_eq!(
            cpu_per_message(&hub).as_deref(),
            Some(
                "CPU per delivered message: hub 11.7 µs, redis 7.0 µs (+2.8 µs in its \
                 children), harness 11.4 µs; all 32.9 µs"
            )
        );
        let mut floor = figures("floor", 1);
        floor.messages.delivered = 2_000_000;
        floor.processes = vec![
            process("harness+relay", None, 28.0, 0.0),
            process("relay", Some("floor-relay"), 12.0, 0.0),
        ];
        let text = figures_text(&floor);
        assert!(
            text.contains("CPU per delivered message: harness+relay 14.0 µs, of which relay 6.0 µs; all 14.0 µs"),
            "{text}"
        );
        assert!(
            text.contains("relay (floor-relay threads of process 7): CPU mean 50%"),
            "{text}"
        );
        floor.messages.delivered = 0;
        assert_eq!(cpu_per_message(&floor), None);
    }

    #[test]
    fn axis_helpers() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.3), 10.0);
        assert_eq!(nice_max(1.2), 2.0);
        assert!((percentile_x(99.0) - 2.0).abs() < 1e-9);
        assert_eq!(percentile_x(100.0), 5.0);
        assert_eq!(percentile_x(0.0), 0.0);
    }
}
