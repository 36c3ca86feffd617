//! Table tests of the time parsers and printed forms.

use super::*;

const NOW: UnixMicros = 1_800_000_000_123_456; // 2027-01-15T08:00:00.123456Z
const DAY_20: UnixMicros = 1_795_132_800 * US; // 2026-11-20T00:00:00Z

#[test]
fn durations_parse() {
    let ok: &[(&str, u64)] = &[
        ("10", 10_000_000),
        ("2.5", 2_500_000),
        ("0", 0),
        ("1s", 1_000_000),
        ("500ms", 500_000),
        ("1m30s", 90_000_000),
        ("1.5s", 1_500_000),
        ("2h", 7_200_000_000),
        ("15m", 900_000_000),
        ("1d12h", 129_600_000_000),
        ("2w", 1_209_600_000_000),
        ("1h2m3s4ms", 3_723_004_000),
        ("250us", 250),
        (" 30s ", 30_000_000),
    ];
    for (s, us) in ok {
        assert_eq!(parse_duration(s), Ok(Duration::from_micros(*us)), "{s}");
    }
    for (bad, unit) in [
        ("3y", "y"),
        ("5x", "x"),
        ("1m30sec", "sec"),
        ("2hours", "hours"),
        ("1e3", "e"),
    ] {
        assert_eq!(
            parse_duration(bad),
            Err(TimeError::Unit {
                unit: unit.into(),
                text: bad.into()
            }),
            "{bad}"
        );
    }
    for bad in [
        "",
        "soon",
        "1s1m",
        "1m1m",
        "-5s",
        "1.s",
        ".5s",
        "1 s",
        "s",
        "30s10",
        "2000000000",
    ] {
        assert_eq!(
            parse_duration(bad),
            Err(TimeError::Duration(bad.to_string())),
            "{bad}"
        );
    }
}

#[test]
fn milliseconds_are_bare_for_chunk_ms() {
    assert_eq!(parse_duration_ms("250"), Ok(Duration::from_millis(250)));
    assert_eq!(parse_duration_ms("1s"), Ok(Duration::from_secs(1)));
    assert_eq!(parse_duration_ms("1.5s"), Ok(Duration::from_millis(1500)));
    assert_eq!(
        parse_duration_ms("x"),
        Err(TimeError::DurationMs("x".into()))
    );
}

#[test]
fn instants_parse() {
    let ok: &[(&str, UnixMicros)] = &[
        ("2026-11-20", DAY_20),
        ("2026-11-20T14:30:00Z", DAY_20 + 52_200 * US),
        ("2026-11-20T14:30:07.25Z", DAY_20 + 52_207 * US + 250_000),
        (
            "2026-11-20T14:30:07.123456Z",
            DAY_20 + 52_207 * US + 123_456,
        ),
        (
            "2026-11-20T14:30:07.1234567Z",
            DAY_20 + 52_207 * US + 123_456,
        ),
        ("2026-11-20t14:30:00z", DAY_20 + 52_200 * US),
        ("2026-11-20T14:30:00+01:00", DAY_20 + 48_600 * US),
        ("2026-11-20T14:30:00-0130", DAY_20 + 57_600 * US),
        ("2026-11-20 14:30", DAY_20 + 52_200 * US),
        ("2026-11-20T14:30:00", DAY_20 + 52_200 * US),
        (
            "2026-11-2 4:5",
            DAY_20 - 18 * 86_400 * US + 4 * 3_600 * US + 300 * US,
        ),
        ("now", NOW),
        ("today", 1_800_000_000 / 86_400 * 86_400 * US),
        ("yesterday", (1_800_000_000 / 86_400 - 1) * 86_400 * US),
        ("90m", NOW - 5_400 * US),
        ("2h ago", NOW - 7_200 * US),
        ("1h30m ago", NOW - 5_400 * US),
        ("7d", NOW - 7 * 86_400 * US),
        ("2w", NOW - 14 * 86_400 * US),
        ("1.5s", NOW - 1_500_000),
    ];
    for (s, at) in ok {
        assert_eq!(parse_instant(s, NOW), Ok(*at), "{s}");
    }
    for bad in [
        "",
        "90",
        "ago",
        "tomorrow",
        "2026-13-01",
        "2026-02-30",
        "2026-11-20T25:00",
        "2026-11-20T14:",
        "2026-11-20T144:30",
        "2026-11-20T14:30:00+1",
        "26-11-20",
        "7y",
        "-5d",
        "2026-11-20T14:30:07.x",
    ] {
        assert_eq!(
            parse_instant(bad, NOW),
            Err(TimeError::Instant(bad.to_string())),
            "{bad}"
        );
    }
}

#[test]
fn moments_parse_and_resolve() {
    // A recording that started 2026-11-20T14:03:00Z and lasts 10 minutes.
    let start = Some(1_795_132_800 + 50_580);
    let dur: Micros = 600 * 1_000_000;
    let ok: &[(&str, Micros)] = &[
        ("90", 90_000_000),
        ("90.5", 90_500_000),
        ("90s", 90_000_000),
        ("1m", 60_000_000),
        ("1m30s", 90_000_000),
        ("500ms", 500_000),
        ("1:30", 90_000_000),
        ("01:30.250", 90_250_000),
        ("0:01:30", 90_000_000),
        // h:mm:ss past the end as an offset, inside as a UTC clock time.
        ("14:03:07.25", 7_250_000),
        ("14:03:07.25Z", 7_250_000),
        ("14:3:7.25z", 7_250_000),
        ("2026-11-20T14:04:00.5Z", 60_500_000),
        // Past the end either way: an offset (the caller says so).
        ("3:00:00", 10_800_000_000),
    ];
    for (s, us) in ok {
        let m = parse_moment(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        // To the millisecond: its last microsecond.
        assert_eq!(m.resolve(s, start, dur), Ok(*us + 999), "{s}");
    }
    // A clock time before the start is on the next day.
    let m = parse_moment("00:01:00Z").unwrap();
    assert_eq!(
        m.resolve("", start, dur),
        Ok((86_400 - 50_580 + 60) as Micros * 1_000_000 + 999)
    );
    assert!(matches!(
        parse_moment("14:03:07Z").unwrap().resolve("x", None, dur),
        Err(TimeError::NoStart(_))
    ));
    assert!(matches!(
        parse_moment("2026-11-20T14:00:00Z")
            .unwrap()
            .resolve("x", start, dur),
        Err(TimeError::BeforeStart(..))
    ));
    for bad in [
        "",
        "soon",
        "1:60",
        "1:2:3:4",
        "25:00:00Z",
        "-5",
        "1.2.3",
        "2026-11-32",
    ] {
        assert_eq!(
            parse_moment(bad),
            Err(TimeError::Moment(bad.to_string())),
            "{bad}"
        );
    }
}

#[test]
fn printed_forms() {
    assert_eq!(format_offset(0), "00:00.000");
    assert_eq!(format_offset(23_314_999), "00:23.314");
    assert_eq!(format_offset(607_431_000), "10:07.431");
    assert_eq!(format_offset(3_723_250_000), "1:02:03.250");
    assert_eq!(
        format_instant(DAY_20 + 52_207 * US + 250_999),
        "2026-11-20T14:30:07.250Z"
    );
    assert_eq!(format_instant_secs(1_795_132_800), "2026-11-20T00:00:00Z");
    // What is printed parses back to the same millisecond.
    let at = DAY_20 + 52_207 * US + 250_000;
    assert_eq!(parse_instant(&format_instant(at), NOW), Ok(at));
    let m = parse_moment(&format_offset(3_723_250_000)).unwrap();
    assert_eq!(m.resolve("", None, u64::MAX), Ok(3_723_250_999));
}
