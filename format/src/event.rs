//! The event model shared by every codec: what happened on a terminal, and when.

use std::fmt;

/// Microseconds since the start of a recording. Every timestamp in termtrail
/// is an integer count of microseconds, so sums of intervals are exact.
pub type Micros = u64;

/// A terminal size. asciicast orders sizes as columns × rows; some emulator
/// crates order them rows, cols — named fields keep the two apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TermSize {
    /// Columns (width).
    pub cols: u16,
    /// Rows (height).
    pub rows: u16,
}

impl TermSize {
    /// The conventional default, 80×24.
    pub const DEFAULT: TermSize = TermSize { cols: 80, rows: 24 };

    /// Parses `COLSxROWS`, as used by asciicast `r` events and `--size`.
    pub fn parse(s: &str) -> Option<TermSize> {
        let (c, r) = s.split_once('x')?;
        let cols: u16 = c.trim().parse().ok()?;
        let rows: u16 = r.trim().parse().ok()?;
        (cols > 0 && rows > 0).then_some(TermSize { cols, rows })
    }
}

impl fmt::Display for TermSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.cols, self.rows)
    }
}

/// What an event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventData {
    /// Bytes written to the terminal (`o`). Raw bytes: they need not be UTF-8;
    /// the codec stores invalid sequences losslessly (see `docs/format.md`).
    Output(Vec<u8>),
    /// Bytes typed into the terminal (`i`), raw like [`EventData::Output`].
    Input(Vec<u8>),
    /// A marker (`m`) with a label, possibly empty.
    Marker(String),
    /// The terminal was resized (`r`).
    Resize(TermSize),
    /// The recorded program exited with this status (`x`).
    Exit(i32),
    /// An event code termtrail does not interpret; passed through unchanged.
    Other {
        /// The event code.
        code: String,
        /// The event data.
        data: String,
    },
}

impl EventData {
    /// The asciicast event code.
    pub fn code(&self) -> &str {
        match self {
            EventData::Output(_) => "o",
            EventData::Input(_) => "i",
            EventData::Marker(_) => "m",
            EventData::Resize(_) => "r",
            EventData::Exit(_) => "x",
            EventData::Other { code, .. } => code,
        }
    }
}

/// One event at an absolute time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Time since the start of the recording.
    pub time: Micros,
    /// What happened.
    pub data: EventData,
}

impl Event {
    /// A new event.
    pub fn new(time: Micros, data: EventData) -> Event {
        Event { time, data }
    }
}

/// Formats microseconds as asciicast seconds with six decimals (`1.000250`).
pub fn format_secs(us: Micros) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// Formats an offset into a recording for people, the one printed form
/// of offsets and durations: `[h:]mm:ss.mmm` (`00:03.250`, `10:07.431`,
/// `1:02:03.250`), cut to the millisecond.
pub fn format_clock(us: Micros) -> String {
    let ms = us / 1000;
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}.{frac:03}")
    } else {
        format!("{m:02}:{s:02}.{frac:03}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn term_size_parses_cols_by_rows() {
        assert_eq!(
            TermSize::parse("100x50"),
            Some(TermSize {
                cols: 100,
                rows: 50
            })
        );
        assert_eq!(TermSize::parse("0x5"), None);
        assert_eq!(TermSize::parse("100"), None);
        assert_eq!(TermSize::parse("70000x5"), None);
    }

    #[test]
    fn secs_have_six_decimals() {
        assert_eq!(format_secs(1_000_250), "1.000250");
        assert_eq!(format_secs(0), "0.000000");
        assert_eq!(format_clock(3_723_250_000), "1:02:03.250");
        assert_eq!(format_clock(3_250_000), "00:03.250");
        assert_eq!(format_clock(607_431_000), "10:07.431");
    }
}
