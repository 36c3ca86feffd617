//! `rec`'s one-line confirmation that a marker was added (the Ctrl+\ key or
//! SIGUSR1): the terminal's title reads `termtrail: marker N added at T`
//! for two seconds, then the title from before comes back.
//!
//! The title, not a line on the screen: the screen belongs to the recorded
//! program (a line drawn over it could not be taken back without knowing
//! what was under it), while the title is shown beside it (a window's or
//! tab's title; tmux's status line shows it by default). The title from
//! before is kept on the terminal's title stack (xterm's `CSI 22 t` saves,
//! `CSI 23 t` restores; xterm, VTE, kitty, foot, iTerm2 and tmux have it;
//! a terminal without it keeps the notice until the program sets a title).
//! asciinema 3 says "Marker added" through tmux's `display-message` or a
//! desktop notification instead, which needs tmux or a notification daemon.
//!
//! The bytes go out through the output thread, between two of the
//! program's escape sequences (and never inside a UTF-8 character), so the
//! program's output is never split. They reach the terminal only: the
//! recording does not contain them.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use termtrail_format::event::{Micros, format_clock};

/// How long the title shows the notice.
const SHOW_FOR: Duration = Duration::from_secs(2);
/// Saves the title (and icon name) on the terminal's title stack.
const PUSH_TITLE: &[u8] = b"\x1b[22;0t";
/// Restores the title saved by [`PUSH_TITLE`].
const POP_TITLE: &[u8] = b"\x1b[23;0t";

/// Markers added but not yet confirmed, and whether the title shows one.
#[derive(Debug, Default)]
pub(super) struct MarkerNotice {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Markers added so far.
    count: u64,
    /// The time of the latest marker not yet shown.
    pending: Option<Micros>,
    /// While the title shows a notice: when to restore it.
    shown_until: Option<Instant>,
}

impl MarkerNotice {
    /// A marker was added at `at` (recording time).
    pub(super) fn added(&self, at: Micros) {
        if let Ok(mut s) = self.state.lock() {
            s.count += 1;
            s.pending = Some(at);
        }
    }

    /// The bytes to write to the terminal now, if any.
    pub(super) fn due(&self, now: Instant) -> Option<Vec<u8>> {
        let mut s = self.state.lock().ok()?;
        if let Some(at) = s.pending.take() {
            let mut out = Vec::new();
            if s.shown_until.is_none() {
                out.extend_from_slice(PUSH_TITLE);
            }
            let title = format!(
                "termtrail: marker {} added at {}",
                s.count,
                format_clock(at)
            );
            out.extend_from_slice(format!("\x1b]2;{title}\x07").as_bytes());
            s.shown_until = Some(now + SHOW_FOR);
            return Some(out);
        }
        if s.shown_until.is_some_and(|u| now >= u) {
            s.shown_until = None;
            return Some(POP_TITLE.to_vec());
        }
        None
    }

    /// At the end of the session: what restores the title, if it shows a
    /// notice.
    pub(super) fn finish(&self) -> Option<Vec<u8>> {
        let mut s = self.state.lock().ok()?;
        s.pending = None;
        s.shown_until.take().map(|_| POP_TITLE.to_vec())
    }
}

/// Where a stream of terminal output is: between escape sequences and
/// characters (where bytes of our own may go) or inside one.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Boundary {
    state: Esc,
    /// UTF-8 continuation bytes still to come.
    utf8_left: u8,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Esc {
    #[default]
    Ground,
    /// After ESC (and intermediates).
    Escape,
    /// In a control sequence (ESC [).
    Csi,
    /// In a string (OSC, DCS, SOS, PM, APC), ended by BEL or ST.
    Str,
    /// ESC inside a string: ST when a backslash follows.
    StrEscape,
}

impl Boundary {
    /// Follows `bytes` of output.
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.state = match (self.state, b) {
                // CAN and SUB cancel any sequence.
                (_, 0x18 | 0x1a) => Esc::Ground,
                (Esc::Str, 0x07) => Esc::Ground,
                (Esc::Str, 0x1b) => Esc::StrEscape,
                (Esc::Str, _) => Esc::Str,
                (Esc::StrEscape, b'\\') => Esc::Ground,
                (Esc::StrEscape, 0x1b) => Esc::StrEscape,
                (Esc::StrEscape, _) => Esc::Str,
                (_, 0x1b) => Esc::Escape,
                (Esc::Escape, b'[') => Esc::Csi,
                (Esc::Escape, b']' | b'P' | b'X' | b'^' | b'_') => Esc::Str,
                (Esc::Escape, 0x20..=0x2f) => Esc::Escape,
                (Esc::Escape, _) => Esc::Ground,
                (Esc::Csi, 0x40..=0x7e) => Esc::Ground,
                (Esc::Csi, _) => Esc::Csi,
                (Esc::Ground, _) => {
                    self.utf8_left = match b {
                        0x80..=0xbf => self.utf8_left.saturating_sub(1),
                        0xc0..=0xdf => 1,
                        0xe0..=0xef => 2,
                        0xf0..=0xf7 => 3,
                        _ => 0,
                    };
                    Esc::Ground
                }
            };
        }
    }

    /// Whether bytes of our own may be written here.
    pub(super) fn between(&self) -> bool {
        self.state == Esc::Ground && self.utf8_left == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(bytes: &[u8]) -> bool {
        let mut b = Boundary::default();
        b.feed(bytes);
        b.between()
    }

    #[test]
    fn boundaries() {
        assert!(after(b""));
        assert!(after(b"plain text\r\n"));
        assert!(after(b"\x1b[1;31mred\x1b[0m"));
        assert!(!after(b"\x1b"));
        assert!(!after(b"\x1b[1;3"));
        assert!(after(b"\x1b[1;31m"));
        assert!(!after(b"\x1b]0;a title"));
        assert!(after(b"\x1b]0;a title\x07"));
        assert!(!after(b"\x1b]0;a title\x1b"));
        assert!(after(b"\x1b]0;a title\x1b\\"));
        assert!(after(b"\x1bPq#0;2;0;0;0\x1b\\x"));
        assert!(after(b"\x1b(B"));
        assert!(!after(b"\x1b("));
        assert!(!after("é".as_bytes().split_at(1).0));
        assert!(after("é€😀".as_bytes()));
        assert!(!after("😀".as_bytes().split_at(3).0));
        assert!(after(b"\x1b[12\x18"));
    }

    #[test]
    fn a_notice_saves_shows_and_restores_the_title() {
        let n = MarkerNotice::default();
        let t0 = Instant::now();
        assert_eq!(n.due(t0), None);
        n.added(61_500_000);
        let shown = String::from_utf8(n.due(t0).unwrap()).unwrap();
        assert_eq!(
            shown,
            "\x1b[22;0t\x1b]2;termtrail: marker 1 added at 01:01.500\x07"
        );
        assert_eq!(n.due(t0), None);
        // A second marker while the first shows: the title changes, the
        // saved one stays saved (no second push).
        n.added(62_000_000);
        let again = String::from_utf8(n.due(t0 + Duration::from_secs(1)).unwrap()).unwrap();
        assert_eq!(again, "\x1b]2;termtrail: marker 2 added at 01:02.000\x07");
        assert_eq!(n.due(t0 + Duration::from_millis(2900)), None);
        assert_eq!(n.due(t0 + SHOW_FOR * 2), Some(POP_TITLE.to_vec()));
        assert_eq!(n.due(t0 + SHOW_FOR * 3), None);
        assert_eq!(n.finish(), None);
        n.added(0);
        n.due(t0);
        assert_eq!(n.finish(), Some(POP_TITLE.to_vec()));
    }
}
