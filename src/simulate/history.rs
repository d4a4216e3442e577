//! Traffic from the stored tickets (`--from-redis URL --from DATE --to DATE`): each chat
//! opened in the window arrives at its `opened_at`, on its topic; an answered one is held
//! from its first `joined` to its close, one never joined gave up after waiting from open
//! to close. Offline messages (tickets without a conversation) are not chats.

use std::time::Duration;

use super::input::{check_topic, Arrival, Routing};
use super::SimError;
use crate::protocol::EventBody;
use crate::store::{Store, StreamCursor};
use crate::tickets::Ticket;

const DAY_MS: u64 = 86_400_000;
const PAGE: usize = 500;

/// A `--from`/`--to` date: `YYYY-MM-DD` (midnight UTC) or RFC 3339. With `end_of_day`, a
/// bare date means the midnight after it, so `--to 2026-12-03` includes that day.
pub fn parse_date(text: &str, end_of_day: bool) -> Result<u64, String> {
    let bad = || format!("bad date {text:?}: expected YYYY-MM-DD or RFC 3339");
    let number = |s: &str| -> Result<i64, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let (date, rest) = text.split_at(text.len().min(10));
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts[..] else {
        return Err(bad());
    };
    let (y, m, d) = (number(y)?, number(m)?, number(d)?);
    if y < 1970 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut ms = days_from_civil(y, m, d) * DAY_MS as i64;
    if rest.is_empty() {
        if end_of_day {
            ms += DAY_MS as i64;
        }
        return u64::try_from(ms).map_err(|_| bad());
    }
    // `THH:MM:SS[.fff](Z|±HH:MM)`
    let rest = rest
        .strip_prefix('T')
        .or_else(|| rest.strip_prefix('t'))
        .or_else(|| rest.strip_prefix(' '))
        .ok_or_else(bad)?;
    if rest.len() < 8 {
        return Err(bad());
    }
    let (clock, mut zone) = rest.split_at(8);
    let hms: Vec<&str> = clock.split(':').collect();
    let [h, mi, s] = hms[..] else {
        return Err(bad());
    };
    let (h, mi, s) = (number(h)?, number(mi)?, number(s)?);
    if h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    ms += ((h * 60 + mi) * 60 + s) * 1000;
    if let Some(fraction) = zone.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        let (frac, after) = fraction.split_at(digits);
        let millis: String = frac.chars().chain("000".chars()).take(3).collect();
        ms += number(&millis)?;
        zone = after;
    }
    let offset = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = match zone.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return Err(bad()),
            };
            let (oh, om) = zone[1..].split_once(':').ok_or_else(bad)?;
            sign * (number(oh)? * 60 + number(om)?) * 60_000
        }
    };
    u64::try_from(ms - offset).map_err(|_| bad())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The arrival a ticket stands for, `at_ms` counted from `from_ms`; `None` for an offline
/// message or a ticket opened outside `[from_ms, to_ms)`.
pub fn arrival_of(ticket: &Ticket, from_ms: u64, to_ms: u64) -> Option<Arrival> {
    ticket.conversation_id.as_ref()?;
    if ticket.opened_at < from_ms || ticket.opened_at >= to_ms {
        return None;
    }
    let joined = ticket.transcript.iter().find_map(|e| match e.body {
        EventBody::Joined { .. } => Some(e.ts),
        _ => None,
    });
    let at_ms = ticket.opened_at - from_ms;
    Some(match joined {
        Some(joined) => Arrival {
            at_ms,
            topic: ticket.topic.clone(),
            handle_ms: ticket.closed_at.saturating_sub(joined),
            patience_ms: None,
            response_ms: None,
        },
        None => Arrival {
            at_ms,
            topic: ticket.topic.clone(),
            handle_ms: 0,
            patience_ms: Some(ticket.closed_at.saturating_sub(ticket.opened_at)),
            response_ms: None,
        },
    })
}

/// Reads every ticket flushed from `from_ms` until a day after `to_ms` (a chat is
/// flushed when it closes, so one opened before `to_ms` may be flushed after it) and
/// keeps those opened in the window, in opening order. A ticket on a topic the config
/// does not have is an error: the config must be the one the tickets were made under.
pub async fn traffic_from_redis(
    url: &str,
    from_ms: u64,
    to_ms: u64,
    routing: &Routing,
) -> Result<Vec<Arrival>, SimError> {
    let store = Store::connect(url, Duration::from_secs(5))
        .await
        .map_err(|e| SimError::Store(e.to_string()))?;
    let stop_ms = to_ms.saturating_add(DAY_MS);
    // The first log entry at or after `from_ms`: the page after `<from_ms - 1>-<max>`.
    let mut cursor = from_ms
        .checked_sub(1)
        .and_then(|ms| StreamCursor::parse(&format!("{ms}-{}", u64::MAX)));
    let mut traffic = Vec::new();
    loop {
        let page = store
            .tickets(cursor.as_ref(), PAGE)
            .await
            .map_err(|e| SimError::Store(e.to_string()))?;
        for json in &page.tickets {
            let ticket: Ticket = serde_json::from_str(json)
                .map_err(|e| SimError::Store(format!("unreadable ticket: {e}")))?;
            if let Some(arrival) = arrival_of(&ticket, from_ms, to_ms) {
                check_topic(&arrival.topic, routing).map_err(|cause| {
                    SimError::Store(format!("ticket {}: {cause}", ticket.ticket_id))
                })?;
                traffic.push(arrival);
            }
        }
        let Some(next) = page.next else { break };
        // The log's ids are `<flush ms>-<n>`.
        let flushed_ms = next
            .split_once('-')
            .and_then(|(ms, _)| ms.parse::<u64>().ok());
        let Some(parsed) = StreamCursor::parse(&next) else {
            break;
        };
        cursor = Some(parsed);
        if flushed_ms.is_none_or(|ms| ms >= stop_ms) {
            break;
        }
    }
    traffic.sort_by_key(|a| a.at_ms);
    Ok(traffic)
}

#[cfg(test)]
mod tests {
    use super::parse_date;

    #[test]
    fn dates_and_rfc3339() {
        assert_eq!(parse_date("1970-01-01", false), Ok(0));
        assert_eq!(parse_date("1970-01-01", true), Ok(86_400_000));
        assert_eq!(parse_date("2026-12-03", false), Ok(1_796_256_000_000));
        assert_eq!(
            parse_date("2026-12-03T14:23:04Z", false),
            Ok(1_796_256_000_000 + (14 * 3600 + 23 * 60 + 4) * 1000)
        );
        assert_eq!(
            parse_date("2026-12-03T14:23:04.5+01:00", false),
            Ok(1_796_256_000_000 + (13 * 3600 + 23 * 60 + 4) * 1000 + 500)
        );
        for bad in [
            "",
            "2026-13-01",
            "2026-12-03T25:00:00Z",
            "yesterday",
            "2026-12-03T10:00:00",
        ] {
            assert!(parse_date(bad, false).is_err(), "{bad}");
        }
    }
}
