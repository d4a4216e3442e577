//! Business hours (issue 18): a topic's time zone, weekly schedule and holidays, and
//! the pure answer to "is it open at this instant, and when does it open next".
//!
//! A leaf: no I/O, the instant is passed in. `HoursConfig` is the TOML form; `compile`
//! checks it once (unknown zone, bad, reversed or overlapping ranges) and gives `Hours`,
//! which answers in the topic's own zone, so a local 09:00 opening stays at 09:00
//! across a daylight-saving change.

use jiff::civil::Date;
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;
use serde::Deserialize;
use std::collections::BTreeSet;

/// Longest out-of-hours message: it is shown in the widget above a form.
const MAX_MESSAGE_CHARS: usize = 500;
/// How far ahead `next_opening` looks (a year of holidays cannot hide more).
const LOOKAHEAD_DAYS: u32 = 400;

/// `hours = { time_zone, weekly, holidays, message }` of a `[[topic]]`, as written.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HoursConfig {
    /// An IANA zone name, e.g. `Europe/Paris`.
    pub time_zone: String,
    /// Open ranges per weekday (`"09:00-12:30"`, end may be `"24:00"`); a day left out
    /// is closed all day.
    #[serde(default)]
    pub weekly: Weekly,
    /// Local dates (`YYYY-MM-DD`) closed all day.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Shown to customers while the topic is closed.
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Weekly {
    #[serde(default)]
    pub mon: Vec<String>,
    #[serde(default)]
    pub tue: Vec<String>,
    #[serde(default)]
    pub wed: Vec<String>,
    #[serde(default)]
    pub thu: Vec<String>,
    #[serde(default)]
    pub fri: Vec<String>,
    #[serde(default)]
    pub sat: Vec<String>,
    #[serde(default)]
    pub sun: Vec<String>,
}

/// A topic's `hours`, compiled once: by the config's validation at start-up (or at the
/// first ask, for a config built without it). Every `welcome`, `presence` and `start`
/// asks, so the schedule is not parsed again each time. A cache, not configuration:
/// it never makes two configs differ.
#[derive(Debug, Clone, Default)]
pub struct CompiledHours(pub(crate) std::sync::OnceLock<Option<Hours>>);

impl PartialEq for CompiledHours {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Checked business hours, ready to ask.
#[derive(Debug, Clone)]
pub struct Hours {
    zone: TimeZone,
    /// Monday first; each day's ranges sorted, minutes of the day, `start < end <= 1440`.
    days: [Vec<(u16, u16)>; 7],
    holidays: BTreeSet<Date>,
    pub message: Option<String>,
}

impl HoursConfig {
    /// Checks the schedule; the error names the offending value.
    pub fn compile(&self) -> Result<Hours, String> {
        let zone = TimeZone::get(&self.time_zone)
            .map_err(|_| format!("unknown time zone {:?}", self.time_zone))?;
        let w = &self.weekly;
        let named = [
            ("mon", &w.mon),
            ("tue", &w.tue),
            ("wed", &w.wed),
            ("thu", &w.thu),
            ("fri", &w.fri),
            ("sat", &w.sat),
            ("sun", &w.sun),
        ];
        let mut days: [Vec<(u16, u16)>; 7] = Default::default();
        for (slot, (name, ranges)) in days.iter_mut().zip(named) {
            let mut parsed = ranges
                .iter()
                .map(|r| parse_range(r).map_err(|e| format!("weekly.{name}: {r:?}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            parsed.sort_unstable();
            if let Some(pair) = parsed.windows(2).find(|p| p[1].0 < p[0].1) {
                return Err(format!(
                    "weekly.{name}: ranges {} and {} overlap",
                    show(pair[0]),
                    show(pair[1])
                ));
            }
            *slot = parsed;
        }
        let holidays = self
            .holidays
            .iter()
            .map(|d| {
                d.parse::<Date>()
                    .map_err(|_| format!("holidays: {d:?} is not a date (YYYY-MM-DD)"))
            })
            .collect::<Result<_, _>>()?;
        if let Some(message) = &self.message {
            if message.trim().is_empty() || message.chars().count() > MAX_MESSAGE_CHARS {
                return Err(format!(
                    "message must be non-blank, at most {MAX_MESSAGE_CHARS} characters"
                ));
            }
        }
        Ok(Hours {
            zone,
            days,
            holidays,
            message: self.message.clone(),
        })
    }
}

/// `"HH:MM-HH:MM"` as minutes of the day; the end may be `24:00`, never before the start.
fn parse_range(text: &str) -> Result<(u16, u16), &'static str> {
    let (from, to) = text.split_once('-').ok_or("expected HH:MM-HH:MM")?;
    let (start, end) = (parse_clock(from)?, parse_clock(to)?);
    if start >= 24 * 60 {
        return Err("cannot start at 24:00");
    }
    if end <= start {
        return Err("ends before it starts (split a range across midnight in two days)");
    }
    Ok((start, end))
}

fn parse_clock(text: &str) -> Result<u16, &'static str> {
    let bad = "expected HH:MM-HH:MM with 00:00 to 24:00";
    let (h, m) = text.trim().split_once(':').ok_or(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad);
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad)?, m.parse().map_err(|_| bad)?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad);
    }
    Ok(h * 60 + m)
}

fn show((start, end): (u16, u16)) -> String {
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        start / 60,
        start % 60,
        end / 60,
        end % 60
    )
}

impl Hours {
    /// Whether the topic is open at `unix_ms`: not a local holiday, and the local time
    /// of day falls in one of that weekday's ranges (start included, end excluded).
    pub fn is_open(&self, unix_ms: u64) -> bool {
        let Some(local) = self.local(unix_ms) else {
            return false;
        };
        let date = local.date();
        if self.holidays.contains(&date) {
            return false;
        }
        let time = local.time();
        let second = i32::from(time.hour()) * 3600
            + i32::from(time.minute()) * 60
            + i32::from(time.second());
        self.day(date)
            .iter()
            .any(|&(start, end)| i32::from(start) * 60 <= second && second < i32::from(end) * 60)
    }

    /// When the topic next opens (Unix ms) if it is closed at `unix_ms`; `None` while it
    /// is open, or when no opening comes within about a year.
    pub fn next_opening(&self, unix_ms: u64) -> Option<u64> {
        if self.is_open(unix_ms) {
            return None;
        }
        let mut date = self.local(unix_ms)?.date();
        for _ in 0..LOOKAHEAD_DAYS {
            if !self.holidays.contains(&date) {
                for &(start, _) in self.day(date) {
                    let ms = self.instant(date.at((start / 60) as i8, (start % 60) as i8, 0, 0))?;
                    if ms > unix_ms as i64 {
                        return u64::try_from(ms).ok();
                    }
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }

    /// The first instant whose local time is `at` or later on that day: `at` itself,
    /// the earlier of two in a fall-back fold, and the end of a spring-forward gap
    /// (where `is_open` starts answering true) when `at` falls in one.
    fn instant(&self, at: jiff::civil::DateTime) -> Option<i64> {
        let ambiguous = self.zone.to_ambiguous_timestamp(at);
        let ts = match ambiguous.offset() {
            AmbiguousOffset::Gap { after, .. } => {
                let inside = after.to_timestamp(at).ok()?;
                self.zone.following(inside).next()?.timestamp()
            }
            _ => ambiguous.earlier().ok()?,
        };
        Some(ts.as_millisecond())
    }

    fn local(&self, unix_ms: u64) -> Option<jiff::ZonedDateTime> {
        let ts = Timestamp::from_millisecond(i64::try_from(unix_ms).ok()?).ok()?;
        Some(ts.to_zoned_datetime(self.zone.clone()))
    }

    fn day(&self, date: Date) -> &[(u16, u16)] {
        &self.days[date.weekday().to_monday_zero_offset() as usize]
    }
}

#[cfg(test)]
mod tests;
