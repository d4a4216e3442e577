//! A local process seen through `/proc`: resident memory (`VmRSS`), open descriptors and
//! CPU time (`utime + stime`, of the whole process or of its threads with a given name,
//! plus the CPU of the children it reaped), sampled at an interval while a run lasts; and
//! this process's own open-file limit, raised for runs that hold thousands of sockets.
//! Linux only; on other systems reads fail with a clear error and the report simply has
//! no process figures.

use std::{io, time::Duration};

use serde::Serialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Resident set size of `pid` in KiB.
pub fn rss_kb(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_rss_kb(&status).ok_or_else(|| io::Error::other(format!("no VmRSS in /proc/{pid}/status")))
}

fn parse_rss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
}

/// Open file descriptors of `pid` (entries of `/proc/PID/fd`).
pub fn open_fds(pid: u32) -> io::Result<u64> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count() as u64)
}

/// User + system CPU time of `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> io::Result<u64> {
    stat_ticks(pid).map(|ticks| ticks.own)
}

/// CPU time of a process in clock ticks: its own (all its threads) and that of the
/// children it has waited for. Redis's AOF rewrites run in such children, so their cost
/// is in `children` and in no sample of Redis's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatTicks {
    pub own: u64,
    pub children: u64,
}

pub fn stat_ticks(pid: u32) -> io::Result<StatTicks> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat_ticks(&stat).ok_or_else(|| io::Error::other(format!("unreadable /proc/{pid}/stat")))
}

/// The CPU ticks of the threads of `pid` whose name is `thread_name`, summed. A thread
/// that has exited no longer counts, so read this while the threads run.
pub fn thread_cpu_ticks(pid: u32, thread_name: &str) -> io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        // A thread may exit between the listing and the read: skip it.
        let Ok(stat) = std::fs::read_to_string(entry?.path().join("stat")) else {
            continue;
        };
        if stat_name(&stat) == Some(thread_name) {
            total += parse_stat_ticks(&stat).map_or(0, |ticks| ticks.own);
        }
    }
    Ok(total)
}

/// The command (or thread) name of a `stat` line: between the first '(' and the last ')'.
fn stat_name(stat: &str) -> Option<&str> {
    stat.get(stat.find('(')? + 1..stat.rfind(')')?)
}

fn parse_stat_ticks(stat: &str) -> Option<StatTicks> {
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')' come field 3 (state) onwards: utime is field 14, stime 15, cutime 16,
    // cstime 17.
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(StatTicks {
        own: field(14)? + field(15)?,
        children: field(16)? + field(17)?,
    })
}

/// Share of one core, in percent, used between two readings of a process's CPU ticks.
pub fn cpu_pct(before: u64, after: u64, ticks_per_second: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64().max(1e-3);
    after.saturating_sub(before) as f64 / ticks_per_second.max(1) as f64 / secs * 100.0
}

/// The 1-minute load average of the machine (other work competing for the cores).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// What a sampler watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watched {
    /// A whole process.
    Process(u32),
    /// The CPU of the threads of a process with this name (e.g. the floor's relay, which
    /// runs inside the harness). RSS is the whole process's.
    Threads(u32, &'static str),
}

impl Watched {
    fn pid(self) -> u32 {
        match self {
            Watched::Process(pid) | Watched::Threads(pid, _) => pid,
        }
    }

    fn ticks(self) -> io::Result<StatTicks> {
        match self {
            Watched::Process(pid) => stat_ticks(pid),
            Watched::Threads(pid, name) => Ok(StatTicks {
                own: thread_cpu_ticks(pid, name)?,
                children: 0,
            }),
        }
    }
}

/// Samplers for several processes at once, by name.
pub struct Samplers(Vec<Sampler>);

impl Samplers {
    pub fn start(processes: &[(&str, Option<u32>)], every: Duration) -> Samplers {
        Samplers::watch(
            &processes
                .iter()
                .filter_map(|(name, pid)| pid.map(|pid| (*name, Watched::Process(pid))))
                .collect::<Vec<_>>(),
            every,
        )
    }

    pub fn watch(watched: &[(&str, Watched)], every: Duration) -> Samplers {
        Samplers(
            watched
                .iter()
                .map(|(name, what)| Sampler::watch(name, *what, every))
                .collect(),
        )
    }

    pub async fn stop(self) -> Vec<ProcSummary> {
        let mut out = Vec::with_capacity(self.0.len());
        for sampler in self.0 {
            out.push(sampler.stop().await);
        }
        out
    }
}

pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// Raises this process's soft open-file limit towards `want` (up to the hard limit).
/// Returns the soft limit in force afterwards.
pub fn raise_fd_limit(want: u64) -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let target = want.min(limit.rlim_max);
    if target > limit.rlim_cur {
        limit.rlim_cur = target;
        // SAFETY: `limit` is a valid rlimit with cur <= max.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// One sample.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct ProcSample {
    pub t_s: f64,
    pub rss_mb: f64,
    /// CPU over the last interval, in percent of one core.
    pub cpu_pct: f64,
}

/// A process over a run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProcSummary {
    /// What the process is (`hub`, `redis`, `harness`).
    pub name: String,
    pub pid: u32,
    /// Set when only the CPU of this process's threads of that name was sampled; the RSS
    /// figures are then the whole process's.
    pub threads: Option<String>,
    pub rss_start_mb: f64,
    pub rss_end_mb: f64,
    pub rss_peak_mb: f64,
    pub cpu_mean_pct: f64,
    pub cpu_peak_pct: f64,
    /// CPU seconds from the first sample to the last.
    pub cpu_s: f64,
    /// CPU seconds of children reaped in that time (Redis's AOF rewrites).
    pub children_cpu_s: f64,
    pub samples: Vec<ProcSample>,
    /// Why sampling stopped early, if it did (e.g. the process exited).
    pub error: Option<String>,
}

impl ProcSummary {
    fn of(
        name: String,
        watched: Option<Watched>,
        samples: Vec<ProcSample>,
        used: StatTicks,
        error: Option<String>,
    ) -> ProcSummary {
        let rss = |s: Option<&ProcSample>| s.map_or(0.0, |s| s.rss_mb);
        let cpu: Vec<f64> = samples.iter().skip(1).map(|s| s.cpu_pct).collect();
        let seconds = |ticks: u64| ticks as f64 / ticks_per_second() as f64;
        ProcSummary {
            name,
            pid: watched.map_or(0, Watched::pid),
            threads: match watched {
                Some(Watched::Threads(_, name)) => Some(name.to_string()),
                _ => None,
            },
            rss_start_mb: rss(samples.first()),
            rss_end_mb: rss(samples.last()),
            rss_peak_mb: samples.iter().map(|s| s.rss_mb).fold(0.0, f64::max),
            cpu_mean_pct: if cpu.is_empty() {
                0.0
            } else {
                cpu.iter().sum::<f64>() / cpu.len() as f64
            },
            cpu_peak_pct: cpu.iter().copied().fold(0.0, f64::max),
            cpu_s: seconds(used.own),
            children_cpu_s: seconds(used.children),
            samples,
            error,
        }
    }
}

/// Samples a process in the background until stopped.
pub struct Sampler {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<ProcSummary>,
}

impl Sampler {
    pub fn start(name: &str, pid: u32, every: Duration) -> Sampler {
        Sampler::watch(name, Watched::Process(pid), every)
    }

    pub fn watch(name: &str, watched: Watched, every: Duration) -> Sampler {
        let name = name.to_string();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let pid = watched.pid();
        let task = tokio::spawn(async move {
            let tick = ticks_per_second();
            let t0 = Instant::now();
            let mut samples = Vec::new();
            let mut first: Option<StatTicks> = None;
            let mut last: Option<(Instant, StatTicks)> = None;
            let mut error = None;
            let mut interval = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = interval.tick() => {}
                }
                let now = Instant::now();
                let (rss, ticks) = match (rss_kb(pid), watched.ticks()) {
                    (Ok(rss), Ok(ticks)) => (rss, ticks),
                    (Err(err), _) | (_, Err(err)) => {
                        error = Some(format!("pid {pid}: {err}"));
                        break;
                    }
                };
                let cpu_pct = match last {
                    Some((at, before)) => {
                        cpu_pct(before.own, ticks.own, tick, now.duration_since(at))
                    }
                    None => 0.0,
                };
                first.get_or_insert(ticks);
                last = Some((now, ticks));
                samples.push(ProcSample {
                    t_s: now.duration_since(t0).as_secs_f64(),
                    rss_mb: rss as f64 / 1024.0,
                    cpu_pct,
                });
            }
            let used = match (first, last) {
                (Some(first), Some((_, last))) => StatTicks {
                    own: last.own.saturating_sub(first.own),
                    children: last.children.saturating_sub(first.children),
                },
                _ => StatTicks::default(),
            };
            ProcSummary::of(name, Some(watched), samples, used, error)
        });
        Sampler { stop, task }
    }

    pub async fn stop(self) -> ProcSummary {
        self.stop.cancel();
        match self.task.await {
            Ok(summary) => summary,
            Err(err) => ProcSummary::of(
                String::new(),
                None,
                Vec::new(),
                StatTicks::default(),
                Some(format!("sampler task failed: {err}")),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_share_is_ticks_over_wall_time() {
        // 50 ticks of 100 per second over one second: half a core.
        assert_eq!(cpu_pct(1000, 1050, 100, Duration::from_secs(1)), 50.0);
        // Two cores' worth over half a second.
        assert_eq!(cpu_pct(0, 100, 100, Duration::from_millis(500)), 200.0);
        // A counter that went backwards (another process took the pid) reads as idle.
        assert_eq!(cpu_pct(500, 10, 100, Duration::from_secs(1)), 0.0);
    }

    #[test]
    fn parses_status_and_stat() {
        assert_eq!(
            parse_rss_kb("Name:\tx\nVmRSS:\t   1234 kB\nVmSwap: 0 kB\n"),
            Some(1234)
        );
        assert_eq!(parse_rss_kb("Name: x\n"), None);
        let stat =
            "42 (my (odd) prog) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 7 5 20 0 4 0 1000 0 0";
        assert_eq!(
            parse_stat_ticks(stat),
            Some(StatTicks {
                own: 300,
                children: 12
            })
        );
        assert_eq!(stat_name(stat), Some("my (odd) prog"));
        assert_eq!(parse_stat_ticks("42 (x) S 1 2 3"), None);
    }

    #[test]
    fn counts_the_threads_of_one_name_only() {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let spinning = std::sync::Arc::clone(&stop);
        let spinner = std::thread::Builder::new()
            .name("lt-cpu-probe".into())
            .spawn(move || {
                let mut turns = 0u64;
                while !spinning.load(std::sync::atomic::Ordering::Relaxed) {
                    turns = std::hint::black_box(turns.wrapping_add(1));
                }
            })
            .expect("spawn the spinning thread");
        let pid = std::process::id();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut ticks = 0;
        while ticks == 0 && std::time::Instant::now() < deadline {
            ticks = thread_cpu_ticks(pid, "lt-cpu-probe").expect("own threads");
            std::thread::yield_now();
        }
        // Asked while the spinner still runs, so that its CPU would show if names were
        // not told apart.
        let others = thread_cpu_ticks(pid, "no-such-thread").expect("own threads");
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        spinner.join().expect("spinner");
        assert!(ticks > 0, "the spinning thread's CPU was not seen");
        assert_eq!(others, 0);
        assert!(
            ticks <= cpu_ticks(pid).expect("own ticks"),
            "one thread used more CPU than its whole process"
        );
    }

    #[test]
    fn reaped_children_count_as_children() {
        let pid = std::process::id();
        let before = stat_ticks(pid).expect("own stat").children;
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        // Each child spins for a while; some 10 ms tick of it must land in `children`
        // once it is reaped.
        let mut after = before;
        while after == before && std::time::Instant::now() < deadline {
            let status = std::process::Command::new("sh")
                .args(["-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done"])
                .status()
                .expect("run sh");
            assert!(status.success());
            after = stat_ticks(pid).expect("own stat").children;
        }
        assert!(after > before, "a reaped child's CPU was not seen");
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(rss_kb(pid).expect("own rss") > 0);
        // Other tests open and close sockets meanwhile: only the listing itself is sure.
        assert!(open_fds(pid).expect("own fds") > 0);
        assert!(cpu_ticks(pid).is_ok());
        assert!(ticks_per_second() > 0);
        let limit = raise_fd_limit(1024).expect("fd limit");
        assert!(limit >= 1024 || limit > 0);
    }
}
