//! Which part of the recording's screen `play` shows: all of it when it
//! fits the viewer's terminal, otherwise a window that follows the cursor
//! (prompts and errors are where the cursor is) and that the viewer can pan.

use termtrail_format::event::TermSize;

/// How the viewer's terminal is split between the recording and the status
/// line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Rows of the recording shown.
    pub rows: usize,
    /// Columns of the recording shown.
    pub cols: usize,
    /// Whether the status line has a row of its own (otherwise it covers
    /// the last row while it shows).
    pub own_status_row: bool,
}

impl Layout {
    /// The layout for a recording `screen` in a terminal `term`: the status
    /// line gets its own row when the terminal is taller than the
    /// recording, and when the recording is taller (a window on it is shown
    /// anyway, and the status line says which part).
    pub fn new(screen: TermSize, term: TermSize) -> Layout {
        let (sr, tr) = (
            usize::from(screen.rows.max(1)),
            usize::from(term.rows.max(1)),
        );
        let (rows, own_status_row) = if sr < tr {
            (sr, true)
        } else if sr == tr || tr < 2 {
            (tr, false)
        } else {
            (tr - 1, true)
        };
        Layout {
            rows,
            cols: usize::from(term.cols.max(1)),
            own_status_row,
        }
    }
}

/// The window's position on the recording's screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// First row shown (0-based).
    pub top: usize,
    /// First column shown (0-based).
    pub left: usize,
    /// Whether the window moves to keep the cursor in it (until the viewer
    /// pans).
    pub follow: bool,
}

/// A pan the viewer asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pan {
    /// One row up.
    Up,
    /// One row down.
    Down,
    /// A window's height up.
    PageUp,
    /// A window's height down.
    PageDown,
    /// Half a window's width left.
    Left,
    /// Half a window's width right.
    Right,
}

impl Default for View {
    fn default() -> View {
        View {
            top: 0,
            left: 0,
            follow: true,
        }
    }
}

impl View {
    /// Whether the recording's screen is larger than what is shown.
    pub fn cropped(screen: TermSize, layout: Layout) -> bool {
        usize::from(screen.rows) > layout.rows || usize::from(screen.cols) > layout.cols
    }

    /// When following, puts the window as high and as far left as it can
    /// be while it shows `cursor` (column, row): the top left corner when
    /// the cursor is there, the rows above the cursor when it is lower (a
    /// shell's prompt, a command's last lines). Keeps the window on the
    /// screen.
    pub fn place(&mut self, screen: TermSize, layout: Layout, cursor: (usize, usize)) {
        if self.follow {
            let (col, row) = cursor;
            self.top = (row + 1).saturating_sub(layout.rows);
            self.left = (col + 1).saturating_sub(layout.cols);
        }
        self.top = self
            .top
            .min(usize::from(screen.rows).saturating_sub(layout.rows));
        self.left = self
            .left
            .min(usize::from(screen.cols).saturating_sub(layout.cols));
    }

    /// Pans (and stops following the cursor).
    pub fn pan(&mut self, pan: Pan, screen: TermSize, layout: Layout) {
        self.follow = false;
        let half = (layout.cols / 2).max(1);
        match pan {
            Pan::Up => self.top = self.top.saturating_sub(1),
            Pan::Down => self.top += 1,
            Pan::PageUp => self.top = self.top.saturating_sub(layout.rows),
            Pan::PageDown => self.top += layout.rows,
            Pan::Left => self.left = self.left.saturating_sub(half),
            Pan::Right => self.left += half,
        }
        self.place(screen, layout, (0, 0));
    }

    /// The part shown, 1-based and inclusive, e.g. `rows 13-35/35 cols
    /// 1-80/120`.
    pub fn describe(&self, screen: TermSize, layout: Layout) -> String {
        let (sr, sc) = (usize::from(screen.rows), usize::from(screen.cols));
        format!(
            "rows {}-{}/{sr} cols {}-{}/{sc}",
            self.top + 1,
            (self.top + layout.rows).min(sr),
            self.left + 1,
            (self.left + layout.cols).min(sc)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BIG: TermSize = TermSize {
        cols: 120,
        rows: 35,
    };
    const TERM: TermSize = TermSize { cols: 80, rows: 24 };

    #[test]
    fn layouts() {
        let fits = Layout::new(TermSize { cols: 80, rows: 20 }, TERM);
        assert_eq!((fits.rows, fits.own_status_row), (20, true));
        let same = Layout::new(TERM, TERM);
        assert_eq!((same.rows, same.own_status_row), (24, false));
        assert!(!View::cropped(TERM, same));
        let big = Layout::new(BIG, TERM);
        assert_eq!((big.rows, big.cols, big.own_status_row), (23, 80, true));
        assert!(View::cropped(BIG, big));
        let one = Layout::new(BIG, TermSize { cols: 80, rows: 1 });
        assert_eq!((one.rows, one.own_status_row), (1, false));
    }

    #[test]
    fn the_window_follows_the_cursor_until_panned() {
        let layout = Layout::new(BIG, TERM);
        let mut v = View::default();
        v.place(BIG, layout, (5, 10));
        assert_eq!((v.top, v.left), (0, 0));
        v.place(BIG, layout, (100, 34));
        assert_eq!((v.top, v.left), (12, 21));
        assert_eq!(v.describe(BIG, layout), "rows 13-35/35 cols 22-101/120");
        v.place(BIG, layout, (0, 30));
        assert_eq!((v.top, v.left), (8, 0));
        v.pan(Pan::PageUp, BIG, layout);
        assert_eq!(v.top, 0);
        v.pan(Pan::Right, BIG, layout);
        v.pan(Pan::Right, BIG, layout);
        assert_eq!(v.left, 40, "stops at the right edge");
        v.place(BIG, layout, (0, 34));
        assert_eq!(
            (v.top, v.left),
            (0, 40),
            "panned: the cursor is not followed"
        );
        v.pan(Pan::Down, BIG, layout);
        assert_eq!(v.top, 1);
        for _ in 0..30 {
            v.pan(Pan::Down, BIG, layout);
        }
        assert_eq!(v.top, 12, "stops at the bottom");
    }
}
