//! Times as every command takes and prints them: one parser for instants
//! ([`parse_instant`]: `--since`, `--until`), one for durations
//! ([`parse_duration`]: every duration flag), one for moments of a
//! recording ([`parse_moment`]: `--at`, `--start`), and one printed form for
//! each ([`format_instant`]: RFC 3339 UTC; [`format_offset`]:
//! `[h:]mm:ss.mmm`). docs/cli.md, "Times", says what each accepts.

use std::time::Duration;

use termtrail_format::civil::{civil, days_from_civil};
use termtrail_format::event::Micros;

/// Microseconds since the Unix epoch (UTC).
pub type UnixMicros = i64;

const US: i64 = 1_000_000;
const DAY_US: i64 = 86_400 * US;
/// The longest duration taken: about 31 years.
const MAX_SECS: f64 = 1e9;

/// A time or duration that does not parse, with the forms that would.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not a duration.
    #[error("bad duration {0:?}: use plain seconds (10, 2.5) or units (500ms, 1s, 1m30s, 2h, 1d)")]
    Duration(String),
    /// A duration with a unit there is not.
    #[error("unknown unit {unit:?} in {text:?}: use w, d, h, m, s, ms or us (1m30s, 500ms)")]
    Unit {
        /// The unit.
        unit: String,
        /// The value.
        text: String,
    },
    /// Not a duration; a bare number counts milliseconds.
    #[error("bad duration {0:?}: use milliseconds (250) or units (500ms, 1s, 1.5s)")]
    DurationMs(String),
    /// Not an instant.
    #[error(
        "bad time {0:?}: use RFC 3339 (2026-11-20T14:30:07.25Z), a date (2026-11-20), a time ago (90m, 2h ago, 7d), today, yesterday or now"
    )]
    Instant(String),
    /// Not a moment of a recording.
    #[error(
        "bad moment {0:?}: use an offset (90, 90.5, 90s, 1m30s, 1:30, 1:02:03.250), a UTC clock time (14:03:07.25Z) or an RFC 3339 time"
    )]
    Moment(String),
    /// A clock time or instant for a recording without a start time.
    #[error(
        "{0:?} is a time of day, but the recording has no start time: give an offset (90s, 1:30)"
    )]
    NoStart(String),
    /// An instant before the recording began.
    #[error("{0:?} is before the recording started ({1})")]
    BeforeStart(String, String),
}

/// Parses a duration: plain seconds (`10`, `2.5`) or numbers with units,
/// largest first, each once (`500ms`, `1s`, `1m30s`, `2h`, `1d12h`, `2w`;
/// units `w d h m s ms us`). Fractions are kept to the microsecond.
pub fn parse_duration(s: &str) -> Result<Duration, TimeError> {
    duration_us(s, US as f64)
        .map(Duration::from_micros)
        .ok_or_else(|| duration_error(s, TimeError::Duration(s.to_string())))
}

/// Why `s` is not a duration: a unit there is not, else `other`.
fn duration_error(s: &str, other: TimeError) -> TimeError {
    let unit: String = s
        .trim()
        .split(|c: char| c.is_ascii_digit() || c == '.')
        .find(|u| !u.is_empty() && !UNITS.iter().any(|(k, _)| k == u))
        .unwrap_or("")
        .to_string();
    let numbered = s.trim().starts_with(|c: char| c.is_ascii_digit());
    if numbered && !unit.is_empty() && unit.chars().all(|c| c.is_ascii_alphabetic()) {
        TimeError::Unit {
            unit,
            text: s.to_string(),
        }
    } else {
        other
    }
}

/// [`parse_duration`] where a bare number counts milliseconds (the old
/// form of `--chunk-ms`): `250` is 250 ms, `1s` one second.
pub fn parse_duration_ms(s: &str) -> Result<Duration, TimeError> {
    duration_us(s, 1000.0)
        .map(Duration::from_micros)
        .ok_or_else(|| duration_error(s, TimeError::DurationMs(s.to_string())))
}

/// The units of a duration, largest first, in µs.
const UNITS: [(&str, f64); 7] = [
    ("w", 7.0 * 86_400e6),
    ("d", 86_400e6),
    ("h", 3_600e6),
    ("m", 60e6),
    ("s", 1e6),
    ("ms", 1e3),
    ("us", 1.0),
];

/// Microseconds of a duration, a bare number counting `bare` µs.
fn duration_us(s: &str, bare: f64) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total = 0.0;
    let mut last_unit = None::<usize>;
    while !rest.is_empty() {
        let n_len = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let num = &rest[..n_len];
        if num.is_empty() || num.starts_with('.') || num.ends_with('.') {
            return None;
        }
        let n: f64 = num.parse().ok()?;
        rest = &rest[n_len..];
        let u_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..u_len];
        rest = &rest[u_len..];
        if unit.is_empty() {
            // A bare number: the whole value, nothing else.
            if last_unit.is_some() || !rest.is_empty() {
                return None;
            }
            total = n * bare;
            break;
        }
        let i = UNITS.iter().position(|(u, _)| *u == unit)?;
        if last_unit.is_some_and(|l| l >= i) {
            return None;
        }
        last_unit = Some(i);
        total += n * UNITS[i].1;
    }
    (total.is_finite() && total <= MAX_SECS * 1e6).then(|| total.round() as u64)
}

/// Parses an instant into Unix microseconds: RFC 3339 with or without a
/// fraction and offset (`2026-11-20T14:30:07.25Z`, `…+01:00`; no offset
/// is UTC; a space may replace the `T`; seconds may be left out), a date
/// (`2026-11-20`, its start in UTC), a time ago (`90m`, `2h ago`,
/// `1h30m ago`, `7d`: a duration with units), `now`, `today` and
/// `yesterday` (the start of that UTC day).
pub fn parse_instant(s: &str, now: UnixMicros) -> Result<UnixMicros, TimeError> {
    let bad = || TimeError::Instant(s.to_string());
    let t = s.trim();
    match t {
        "now" => return Ok(now),
        "today" => return Ok(now.div_euclid(DAY_US) * DAY_US),
        "yesterday" => return Ok(now.div_euclid(DAY_US) * DAY_US - DAY_US),
        _ => {}
    }
    if t.contains('-') {
        return date_time(t).ok_or_else(bad);
    }
    // A time ago: a duration with units (a bare number is no instant).
    let ago = t.strip_suffix("ago").map(str::trim_end).unwrap_or(t);
    let us = duration_us(ago, f64::NAN).ok_or_else(bad)?;
    Ok(now - us as i64)
}

/// `YYYY-MM-DD[(T| )HH:MM[:SS[.frac]][Z|±HH:MM|±HHMM]]` as Unix µs.
fn date_time(s: &str) -> Option<UnixMicros> {
    let (date, rest) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(s[i + 1..].trim_start())),
        None => (s, None),
    };
    let d: Vec<&str> = date.split('-').collect();
    let short = |x: &str| (1..=2).contains(&x.len());
    if d.len() != 3 || d[0].len() != 4 || !short(d[1]) || !short(d[2]) {
        return None;
    }
    let (y, mo, day) = (num(d[0], 1970, 9999)?, num(d[1], 1, 12)?, num(d[2], 1, 31)?);
    if civil_from(y, mo, day) != (y, mo, day) {
        return None; // 2026-02-30
    }
    let mut us = days_from_civil(y, mo, day) * DAY_US;
    if let Some(rest) = rest {
        let (clock, offset) = split_zone(rest)?;
        us += time_of_day(clock)? - offset;
    }
    Some(us)
}

/// Whether the date exists: the day number read back.
fn civil_from(y: i64, m: i64, d: i64) -> (i64, i64, i64) {
    let (y2, m2, d2) = termtrail_format::civil::civil_from_days(days_from_civil(y, m, d));
    (y2, m2 as i64, d2 as i64)
}

/// A clock and its zone offset in µs: `14:30Z`, `14:30+01:00`, `14:30`.
fn split_zone(s: &str) -> Option<(&str, i64)> {
    if let Some(c) = s.strip_suffix(['Z', 'z']) {
        return Some((c, 0));
    }
    let Some(i) = s.rfind(['+', '-']) else {
        return Some((s, 0));
    };
    let o = &s[i + 1..];
    let (oh, om) = match o.split_once(':') {
        Some(p) => p,
        None if o.len() == 4 => o.split_at(2),
        None => (o, "00"),
    };
    if oh.len() != 2 || om.len() != 2 {
        return None;
    }
    let sign = if s.as_bytes()[i] == b'-' { -1 } else { 1 };
    Some((
        &s[..i],
        sign * (num(oh, 0, 23)? * 3600 + num(om, 0, 59)? * 60) * US,
    ))
}

/// `HH:MM[:SS[.frac]]` as µs into the day.
fn time_of_day(s: &str) -> Option<i64> {
    let c: Vec<&str> = s.split(':').collect();
    let short = |x: &str| (1..=2).contains(&x.len());
    if !(2..=3).contains(&c.len()) || !short(c[0]) || !short(c[1]) {
        return None;
    }
    let secs = match c.get(2) {
        Some(x) => {
            let (whole, frac) = x.split_once('.').unwrap_or((x, ""));
            if !(1..=2).contains(&whole.len()) {
                return None;
            }
            num(whole, 0, 60)? * US + fraction(frac)?
        }
        None => 0,
    };
    Some((num(c[0], 0, 23)? * 3600 + num(c[1], 0, 59)? * 60) * US + secs)
}

/// A number of ASCII digits within `lo..=hi`.
fn num(x: &str, lo: i64, hi: i64) -> Option<i64> {
    if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    x.parse::<i64>().ok().filter(|v| (lo..=hi).contains(v))
}

/// The digits after a decimal point as µs (more than six are cut).
fn fraction(f: &str) -> Option<i64> {
    if f.is_empty() {
        return Some(0);
    }
    if !f.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let six: String = f.chars().chain(std::iter::repeat('0')).take(6).collect();
    six.parse().ok()
}

/// A moment of a recording as given; [`Moment::resolve`] makes it an
/// offset from the start once the recording is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Moment {
    /// An offset from the start. `h:mm:ss` also reads as a UTC clock time
    /// (`clock`, µs into the day): taken as such only when the offset is
    /// past the end and the clock time falls inside the recording.
    Offset {
        /// The offset.
        us: Micros,
        /// The same text read as a clock time, when it can be one.
        clock: Option<i64>,
    },
    /// A UTC clock time written with `Z` (`14:03:07.25Z`), on the day the
    /// recording started (or the next, for one that runs past midnight).
    Clock(i64),
    /// An instant (RFC 3339 with a date).
    At(UnixMicros),
}

/// Parses a moment of a recording (`--at`, `--start`): an offset as
/// seconds (`90`, `90.5`), a duration (`90s`, `1m`, `1m30s`) or
/// `[[h:]m:]s[.frac]` (`1:30`, `1:02:03.250`, as offsets are printed); a
/// UTC clock time `14:03:07.25Z` (or `14:03:07.25` when that is past the
/// end as an offset); or an instant with a date (RFC 3339, as grep's JSON
/// `at`).
pub fn parse_moment(s: &str) -> Result<Moment, TimeError> {
    let bad = || TimeError::Moment(s.to_string());
    let t = s.trim();
    if t.contains('-') {
        return date_time(t).map(Moment::At).ok_or_else(bad);
    }
    if let Some(c) = t.strip_suffix(['Z', 'z']) {
        return time_of_day(c).map(Moment::Clock).ok_or_else(bad);
    }
    if t.ends_with(|c: char| c.is_ascii_alphabetic()) {
        let us = duration_us(t, f64::NAN).ok_or_else(bad)?;
        return Ok(Moment::Offset { us, clock: None });
    }
    let us = colon_offset(t).ok_or_else(bad)?;
    let clock = (t.split(':').count() == 3)
        .then(|| time_of_day(t))
        .flatten();
    Ok(Moment::Offset { us, clock })
}

/// `[[h:]m:]s[.frac]` as µs: minutes and seconds under 60 after the first
/// part.
fn colon_offset(s: &str) -> Option<Micros> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() > 3 {
        return None;
    }
    let (last, rest) = parts.split_last()?;
    let (whole, frac) = last.split_once('.').unwrap_or((last, ""));
    let mut secs = num(whole, 0, i64::MAX)?;
    if !rest.is_empty() && secs >= 60 {
        return None;
    }
    let mut mult = 60;
    for (i, p) in rest.iter().rev().enumerate() {
        let v = num(p, 0, i64::MAX)?;
        if i == 0 && rest.len() == 2 && v >= 60 {
            return None;
        }
        secs = secs.checked_add(v.checked_mul(mult)?)?;
        mult *= 60;
    }
    let us = secs.checked_mul(US)?.checked_add(fraction(frac)?)?;
    (us as f64 <= MAX_SECS * 1e6).then_some(us as Micros)
}

impl Moment {
    /// The offset into a recording that started at `start` (Unix seconds,
    /// None when unknown) and lasts `duration`. Clock times are on the day
    /// the recording started, or the next day when that is before its
    /// start. Moments are taken to the millisecond, as they are printed: the
    /// offset is the last microsecond of its millisecond, so a time printed
    /// for an event (cut to the millisecond) and given back shows it.
    pub fn resolve(
        &self,
        text: &str,
        start: Option<u64>,
        duration: Micros,
    ) -> Result<Micros, TimeError> {
        let us = self.resolve_exact(text, start, duration)?;
        Ok(us / 1000 * 1000 + 999)
    }

    fn resolve_exact(
        &self,
        text: &str,
        start: Option<u64>,
        duration: Micros,
    ) -> Result<Micros, TimeError> {
        let start_us = start.map(|s| s as i64 * US);
        let on_day = |of_day: i64, start: i64| {
            let t = start.div_euclid(DAY_US) * DAY_US + of_day;
            if t < start { t + DAY_US } else { t }
        };
        match *self {
            Moment::Offset { us, clock } => {
                if us > duration
                    && let (Some(c), Some(s)) = (clock, start_us)
                {
                    let t = on_day(c, s);
                    if t - s <= duration as i64 {
                        return Ok((t - s) as Micros);
                    }
                }
                Ok(us)
            }
            Moment::Clock(c) => {
                let s = start_us.ok_or_else(|| TimeError::NoStart(text.to_string()))?;
                Ok((on_day(c, s) - s) as Micros)
            }
            Moment::At(at) => {
                let s = start_us.ok_or_else(|| TimeError::NoStart(text.to_string()))?;
                if at < s {
                    return Err(TimeError::BeforeStart(text.to_string(), format_instant(s)));
                }
                Ok((at - s) as Micros)
            }
        }
    }
}

/// An offset into a recording as printed everywhere: `[h:]mm:ss.mmm`
/// (`00:03.250`, `10:07.431`, `1:02:03.250`), cut to the millisecond.
pub fn format_offset(us: Micros) -> String {
    termtrail_format::event::format_clock(us)
}

/// An instant as printed everywhere: RFC 3339 in UTC, to the millisecond
/// (`2026-11-20T14:30:07.250Z`; cut, not rounded, so the printed instant
/// is never after the event).
pub fn format_instant(at: UnixMicros) -> String {
    let secs = at.div_euclid(US);
    let ms = at.rem_euclid(US) / 1000;
    let (y, mo, d, h, mi, s) = civil(secs.max(0) as u64);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// An instant to the second, for times known only to the second (a
/// recording's start): `2026-11-20T14:30:07Z`.
pub fn format_instant_secs(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Now, in Unix microseconds (0 before the epoch).
pub fn now() -> UnixMicros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

#[cfg(test)]
mod tests;
