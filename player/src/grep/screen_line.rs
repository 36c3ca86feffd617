//! Screen lines: the row of a rebuilt screen that shows a hit, with rows
//! of context around it.

use super::search::LineHit;
use crate::term::Emulator;

/// What [`screen_line`] reads of a screen: its rows' text and the cursor's
/// row (avt's [`Emulator`], or grep's text-only screen).
pub(super) trait ScreenText {
    /// The number of visible rows.
    fn rows(&self) -> usize;
    /// Row `r` as text, trailing blanks trimmed.
    fn line(&self, r: usize) -> String;
    /// The cursor's row.
    fn cursor_row(&self) -> usize;
}

impl ScreenText for Emulator {
    fn rows(&self) -> usize {
        Emulator::rows(self)
    }
    fn line(&self, r: usize) -> String {
        Emulator::line(self, r)
    }
    fn cursor_row(&self) -> usize {
        Emulator::cursor_row(self)
    }
}

/// The screen row a hit was on.
#[derive(Debug, Clone, PartialEq)]
pub struct ScreenLine {
    /// Whether the screen was rebuilt exactly (see [`SCREEN_WINDOW`](super::SCREEN_WINDOW)).
    pub exact: bool,
    /// Row number, 0 at the top.
    pub row: usize,
    /// The row's text.
    pub line: String,
    /// Up to `context` rows above it.
    pub before: Vec<String>,
    /// Up to `context` rows below it.
    pub after: Vec<String>,
}

/// The screen row that shows `found`'s first match, with `context` rows
/// around it: the row showing the matched text with the most of the line's
/// text around it; among equals, the nearest at or above the cursor (where
/// output just went). None when the line is no longer on the screen
/// (scrolled away, overwritten, cleared).
///
/// `rows` caches the screen's rows as they are built: empty for a screen
/// not looked at before, else what the last call on the same screen left
/// (hits written by the same output share their screen).
pub(super) fn screen_line(
    emu: &impl ScreenText,
    exact: bool,
    found: &LineHit,
    context: usize,
    rows: &mut Vec<Option<String>>,
) -> Option<ScreenLine> {
    let n = emu.rows();
    // Rows are built as they are looked at: usually the cursor's row shows
    // the whole line and no other is needed.
    rows.resize(n, None);
    let &(s, e) = found.matches.first()?;
    let line = &found.line;
    let cursor_row = emu.cursor_row().min(n.saturating_sub(1));
    let order = (0..=cursor_row).rev().chain(cursor_row + 1..n);
    // No row can agree on more than the whole line around the match (and
    // end where it ends: see `context_score`).
    let most = 2 * (line[..s].chars().count() + line[e..].trim_end().chars().count()) + 1;
    let mut best: Option<(usize, usize)> = None;
    if e > s {
        for r in order {
            let score = context_score(row(rows, emu, r), line, s, e);
            if score.is_some_and(|sc| best.is_none_or(|(_, b)| sc > b)) {
                best = score.map(|sc| (r, sc));
            }
            if best.is_some_and(|(_, b)| b >= most) {
                break;
            }
        }
    }
    let (r, _) = best?;
    let mut row = |r: usize| row(rows, emu, r).to_string();
    Some(ScreenLine {
        exact,
        row: r,
        line: row(r),
        before: (r.saturating_sub(context)..r).map(&mut row).collect(),
        after: (r + 1..(r + 1 + context).min(n)).map(&mut row).collect(),
    })
}

/// Row `r` of `emu`, built once into `rows`.
fn row<'a>(rows: &'a mut [Option<String>], emu: &impl ScreenText, r: usize) -> &'a str {
    rows[r].get_or_insert_with(|| emu.line(r))
}

/// How well `row` shows `line`'s match `line[s..e]`: twice the number of
/// characters around an occurrence of the match that agree with the line,
/// plus one when the row holds nothing after the line's end (so `line 1`
/// is found on the row `line 1`, not on `line 19` next to the cursor).
/// The row must be a faithful window of the line — agreeing up to the start
/// of the line or of the row, and up to the end of the line or of the row —
/// so a row holding the same word in other text is not taken for it (None).
///
/// Linear in the row for each occurrence (whole-string comparisons, char
/// counts kept as the occurrences go): a row of one repeated character
/// holds an occurrence at every column, and a 2,000-column screen made a
/// character-by-character comparison per occurrence cost seconds per hit.
fn context_score(row: &str, line: &str, s: usize, e: usize) -> Option<usize> {
    let text = &line[s..e];
    let (line_before, line_after) = (&line[..s], line[e..].trim_end());
    // Counted at the first occurrence (most rows hold none).
    let mut counts = None;
    let mut best = None;
    // Characters of `row` before the occurrence, counted as `p` grows.
    let (mut counted_to, mut row_before_n) = (0, 0);
    for (p, _) in row.match_indices(text) {
        let (line_before_n, line_after_n, row_n, text_n) = *counts.get_or_insert_with(|| {
            let n = |s: &str| s.chars().count();
            (n(line_before), n(line_after), n(row), n(text))
        });
        row_before_n += row[counted_to..p].chars().count();
        counted_to = p;
        let (row_before, row_after) = (&row[..p], &row[p + text.len()..]);
        let row_after_n = row_n - row_before_n - text_n;
        // Agreeing up to the start of the row, or of the line.
        let before = if line_before.ends_with(row_before) {
            row_before_n
        } else if row_before.ends_with(line_before) {
            line_before_n
        } else {
            continue;
        };
        // Agreeing up to the end of the row, or of the line.
        let after = if line_after.starts_with(row_after) {
            row_after_n
        } else if row_after.starts_with(line_after) {
            line_after_n
        } else {
            continue;
        };
        let ends_with_line = row_after.trim_end().len() <= line_after.len();
        best = best.max(Some(2 * (before + after) + usize::from(ends_with_line)));
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rows(Vec<&'static str>, usize);

    impl ScreenText for Rows {
        fn rows(&self) -> usize {
            self.0.len()
        }
        fn line(&self, r: usize) -> String {
            self.0[r].to_string()
        }
        fn cursor_row(&self) -> usize {
            self.1
        }
    }

    fn hit(line: &str, s: usize, e: usize) -> LineHit {
        LineHit {
            time: 0,
            written: (0, 0),
            line: line.to_string(),
            matches: vec![(s, e)],
            number: 0,
            before: Vec::new(),
            after: Vec::new(),
        }
    }

    #[test]
    fn the_row_showing_the_whole_line_wins_over_a_longer_one_nearer_the_cursor() {
        // A pager's screen: `line 1` at the top, `line 19` by the cursor.
        let mut rows = vec!["line 1"];
        rows.extend(["line 2"; 17]);
        rows.push("line 19");
        rows.push(":");
        let screen = Rows(rows, 19);
        let found = screen_line(&screen, true, &hit("line 1", 0, 6), 0, &mut Vec::new()).unwrap();
        assert_eq!((found.row, found.line.as_str()), (0, "line 1"));
        // A row that shows the line cut by the screen's edge still counts
        // when no row shows it whole.
        let screen = Rows(vec!["error: disk f", "$"], 1);
        let found = screen_line(
            &screen,
            true,
            &hit("error: disk full", 0, 5),
            0,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(found.row, 0);
    }
}
