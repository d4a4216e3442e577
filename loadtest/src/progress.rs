//! The live progress line (indicatif): elapsed time against the duration, connections,
//! sent and delivered messages per second, the last second's p99, and errors. Hidden when
//! stdout is not a terminal, so logs and CI output stay clean.

use std::{
    io::IsTerminal,
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

pub struct Progress {
    bar: ProgressBar,
    stop: CancellationToken,
}

impl Progress {
    /// Starts the line for `label`; `enabled = false` (or a non-terminal stdout) hides it.
    pub fn start(
        label: &str,
        metrics: Arc<Metrics>,
        duration: Option<Duration>,
        enabled: bool,
    ) -> Progress {
        let visible = enabled && std::io::stdout().is_terminal();
        let bar = match duration {
            Some(d) => ProgressBar::new(d.as_secs().max(1)),
            None => ProgressBar::new_spinner(),
        };
        if !visible {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        let template = if duration.is_some() {
            "{prefix:>5} [{elapsed_precise}] {bar:24} {msg}"
        } else {
            "{prefix:>5} [{elapsed_precise}] {spinner} {msg}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_prefix(label.to_string());
        let stop = CancellationToken::new();
        let token = stop.clone();
        let line = bar.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            let started = tokio::time::Instant::now();
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let c = &metrics.counters;
                let last = metrics.last_second();
                line.set_position(started.elapsed().as_secs());
                line.set_message(format!(
                    "conns {} | sent {}/s delivered {}/s | p99 {:.1} ms | chats {} | errors {}",
                    c.connections_open.load(Ordering::Relaxed),
                    last.map_or(0, |s| s.sent),
                    last.map_or(0, |s| s.delivered),
                    last.map_or(0.0, |s| s.p99_ms),
                    c.conversations_started.load(Ordering::Relaxed),
                    metrics.error_total(),
                ));
            }
        });
        Progress { bar, stop }
    }

    pub fn finish(self) {
        self.stop.cancel();
        self.bar.finish_and_clear();
    }
}
