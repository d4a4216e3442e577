//! `is_open` and `next_opening` across daylight-saving changes and holidays, and the
//! checks of `compile`.

use super::*;

fn utc(text: &str) -> u64 {
    text.parse::<Timestamp>().unwrap().as_millisecond() as u64
}

fn paris(weekly: Weekly) -> Hours {
    HoursConfig {
        time_zone: "Europe/Paris".into(),
        weekly,
        holidays: vec!["2026-12-25".into()],
        message: Some("We're closed; we answer from 9:00 (Paris time).".into()),
    }
    .compile()
    .unwrap()
}

fn days(ranges: &[&str], weekend: bool) -> Weekly {
    let r: Vec<String> = ranges.iter().map(|s| s.to_string()).collect();
    let end = if weekend { r.clone() } else { Vec::new() };
    Weekly {
        mon: r.clone(),
        tue: r.clone(),
        wed: r.clone(),
        thu: r.clone(),
        fri: r,
        sat: end.clone(),
        sun: end,
    }
}

#[test]
fn opening_moves_with_spring_forward() {
    let hours = paris(days(&["09:00-12:30", "13:30-18:00"], true));
    // Saturday 2026-03-28, CET (+01:00): 09:00 local is 08:00 UTC.
    assert!(!hours.is_open(utc("2026-03-28T07:59:59Z")));
    assert!(hours.is_open(utc("2026-03-28T08:00:00Z")));
    // Monday 2026-03-30, CEST (+02:00): 09:00 local is 07:00 UTC.
    assert!(!hours.is_open(utc("2026-03-30T06:59:59Z")));
    assert!(hours.is_open(utc("2026-03-30T07:00:00Z")));
    // Lunch break and closing in local time too.
    assert!(!hours.is_open(utc("2026-03-30T10:30:00Z")));
    assert!(hours.is_open(utc("2026-03-30T15:59:59Z")));
    assert!(!hours.is_open(utc("2026-03-30T16:00:00Z")));
}

#[test]
fn opening_moves_with_fall_back() {
    let hours = paris(days(&["09:00-18:00"], true));
    // Saturday 2026-10-24, CEST: 09:00 local is 07:00 UTC.
    assert!(hours.is_open(utc("2026-10-24T07:00:00Z")));
    // Monday 2026-10-26, CET: 07:30 UTC is 08:30 local, still closed.
    assert!(!hours.is_open(utc("2026-10-26T07:30:00Z")));
    assert!(hours.is_open(utc("2026-10-26T08:00:00Z")));
    assert!(!hours.is_open(utc("2026-10-26T17:00:00Z")));
}

#[test]
fn next_opening_crosses_the_change() {
    let hours = paris(days(&["09:00-18:00"], false));
    // Closed from Friday evening; Monday after the spring change opens at 07:00 UTC.
    assert_eq!(
        hours.next_opening(utc("2026-03-27T20:00:00Z")),
        Some(utc("2026-03-30T07:00:00Z"))
    );
    // And after the autumn change at 08:00 UTC.
    assert_eq!(
        hours.next_opening(utc("2026-10-23T20:00:00Z")),
        Some(utc("2026-10-26T08:00:00Z"))
    );
    assert_eq!(hours.next_opening(utc("2026-10-26T09:00:00Z")), None);
}

#[test]
fn holidays_are_closed_all_day() {
    let hours = paris(days(&["00:00-24:00"], true));
    assert!(hours.is_open(utc("2026-12-24T22:59:59Z")));
    // Paris midnight is 23:00 UTC in winter: the holiday begins there.
    assert!(!hours.is_open(utc("2026-12-24T23:00:00Z")));
    assert!(!hours.is_open(utc("2026-12-25T12:00:00Z")));
    assert!(hours.is_open(utc("2026-12-25T23:00:00Z")));
    assert_eq!(
        hours.next_opening(utc("2026-12-25T12:00:00Z")),
        Some(utc("2026-12-25T23:00:00Z"))
    );
}

#[test]
fn a_start_in_the_spring_gap_opens_after_it() {
    let hours = paris(Weekly {
        sun: vec!["02:30-05:00".into()],
        ..Weekly::default()
    });
    // 02:30 does not exist on 2026-03-29; 03:00 CEST (01:00 UTC) is the first instant after.
    assert_eq!(
        hours.next_opening(utc("2026-03-28T12:00:00Z")),
        Some(utc("2026-03-29T01:00:00Z"))
    );
    assert!(hours.is_open(utc("2026-03-29T01:00:00Z")));
}

#[test]
fn empty_schedule_is_always_closed() {
    let hours = paris(Weekly::default());
    assert!(!hours.is_open(utc("2026-03-30T10:00:00Z")));
    assert_eq!(hours.next_opening(utc("2026-03-30T10:00:00Z")), None);
}

fn compile_err(zone: &str, mon: &[&str], holidays: &[&str]) -> String {
    HoursConfig {
        time_zone: zone.into(),
        weekly: Weekly {
            mon: mon.iter().map(|s| s.to_string()).collect(),
            ..Weekly::default()
        },
        holidays: holidays.iter().map(|s| s.to_string()).collect(),
        message: None,
    }
    .compile()
    .unwrap_err()
}

#[test]
fn bad_schedules_are_refused_with_the_value() {
    assert!(compile_err("Europe/Pariss", &[], &[]).contains("unknown time zone \"Europe/Pariss\""));
    assert!(compile_err("UTC", &["18:00-09:00"], &[]).contains("ends before it starts"));
    assert!(compile_err("UTC", &["09:00-09:00"], &[]).contains("ends before it starts"));
    let overlap = compile_err("UTC", &["13:00-18:00", "09:00-13:30"], &[]);
    assert!(overlap.contains("overlap"), "{overlap}");
    for bad in [
        "9:00-12:00",
        "09:00-24:30",
        "09:60-10:00",
        "09:00",
        "24:00-24:00",
        "xx:00-10:00",
    ] {
        assert!(
            compile_err("UTC", &[bad], &[]).contains("weekly.mon"),
            "{bad}"
        );
    }
    assert!(compile_err("UTC", &[], &["2026-02-30"]).contains("holidays"));
    // Adjacent ranges are fine.
    let ok = HoursConfig {
        time_zone: "UTC".into(),
        weekly: Weekly {
            mon: vec!["09:00-12:00".into(), "12:00-24:00".into()],
            ..Weekly::default()
        },
        holidays: vec![],
        message: None,
    };
    assert!(ok.compile().is_ok());
}

#[test]
fn a_start_in_the_autumn_fold_opens_at_its_first_occurrence() {
    let hours = paris(Weekly {
        sun: vec!["02:30-05:00".into()],
        ..Weekly::default()
    });
    // 02:30 happens twice on 2026-10-25: first at 00:30 UTC (CEST), then 01:30 UTC (CET).
    assert_eq!(
        hours.next_opening(utc("2026-10-24T12:00:00Z")),
        Some(utc("2026-10-25T00:30:00Z"))
    );
    assert!(!hours.is_open(utc("2026-10-25T00:29:59Z")));
    assert!(hours.is_open(utc("2026-10-25T00:50:00Z")), "02:50 CEST");
    // The clock reads by local time: when it falls back to 02:00 it is before 02:30
    // again, so the repeated half hour is closed (documented in decisions.md).
    assert!(!hours.is_open(utc("2026-10-25T01:10:00Z")), "02:10 CET");
    assert!(hours.is_open(utc("2026-10-25T01:30:00Z")), "02:30 CET");
    assert!(hours.is_open(utc("2026-10-25T03:59:59Z")));
    assert!(!hours.is_open(utc("2026-10-25T04:00:00Z")));
}
