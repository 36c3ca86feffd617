//! The user's terminal: raw mode that is restored on every exit path, window
//! size, and the PTY's echo flag (to withhold passwords).

use std::os::fd::AsFd;
use std::sync::Mutex;

use rustix::termios::{self, LocalModes, OptionalActions, Termios};
use termtrail_format::event::TermSize;

/// The terminal settings to restore, shared with the panic hook and the
/// signal thread (a process has one controlling terminal).
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// Puts stdin's terminal into raw mode until dropped (or until
/// [`restore_terminal`] is called from a panic hook or signal handler).
pub struct RawMode(());

impl RawMode {
    /// Enters raw mode; None when stdin is not a terminal.
    pub fn enter() -> std::io::Result<Option<RawMode>> {
        let stdin = std::io::stdin();
        if !termios::isatty(stdin.as_fd()) {
            return Ok(None);
        }
        let original = termios::tcgetattr(stdin.as_fd())?;
        let mut raw = original.clone();
        raw.make_raw();
        if let Ok(mut saved) = SAVED.lock() {
            *saved = Some(original);
        }
        install_panic_hook();
        termios::tcsetattr(stdin.as_fd(), OptionalActions::Flush, &raw)?;
        Ok(Some(RawMode(())))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore_terminal();
    }
}

/// Restores the saved terminal settings, if any. Idempotent.
pub fn restore_terminal() {
    let saved = SAVED.lock().ok().and_then(|mut s| s.take());
    if let Some(t) = saved {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), OptionalActions::Now, &t);
    }
}

fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            previous(info);
        }));
    });
}

/// The size of the terminal on stdout (or stdin), if either is one.
pub fn terminal_size() -> Option<TermSize> {
    let try_fd = |fd: std::os::fd::BorrowedFd<'_>| {
        termios::tcgetwinsize(fd).ok().and_then(|w| {
            (w.ws_col > 0 && w.ws_row > 0).then_some(TermSize {
                cols: w.ws_col,
                rows: w.ws_row,
            })
        })
    };
    try_fd(std::io::stdout().as_fd()).or_else(|| try_fd(std::io::stdin().as_fd()))
}

/// Whether the terminal behind `fd` is reading a secret: echo off in
/// canonical (line) mode. That is what `getpass(3)`, sudo, ssh, `read -s`
/// and Python's getpass set. Line editors (readline, vim, …) also turn echo
/// off, but in non-canonical mode, because they echo themselves — their
/// input is not secret. On Linux the PTY master reports the settings of its
/// slave. Unknown counts as secret, so input is withheld rather than leaked.
pub fn reading_secret(fd: impl AsFd) -> bool {
    termios::tcgetattr(fd)
        .map(|t| {
            !t.local_modes.contains(LocalModes::ECHO) && t.local_modes.contains(LocalModes::ICANON)
        })
        .unwrap_or(true)
}

/// Whether stdin is a terminal.
pub fn stdin_is_tty() -> bool {
    termios::isatty(std::io::stdin().as_fd())
}
