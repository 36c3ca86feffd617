//! Screen lines: the row of a rebuilt screen that shows a hit, with rows
//! of context around it.

use super::search::LineHit;
use crate::term::Emulator;

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
pub(super) fn screen_line(
    emu: &Emulator,
    exact: bool,
    found: &LineHit,
    context: usize,
) -> Option<ScreenLine> {
    let n = emu.rows();
    // Rows are built as they are looked at: usually the cursor's row shows
    // the whole line and no other is needed.
    let mut rows: Vec<Option<String>> = vec![None; n];
    let mut row = |r: usize| -> String { rows[r].get_or_insert_with(|| emu.line(r)).clone() };
    let &(s, e) = found.matches.first()?;
    let line = &found.line;
    let cursor_row = emu.cursor_row().min(n.saturating_sub(1));
    let order = (0..=cursor_row).rev().chain(cursor_row + 1..n);
    // No row can agree on more than the whole line around the match.
    let most = line[..s].chars().count() + line[e..].trim_end().chars().count();
    let mut best: Option<(usize, usize)> = None;
    if e > s {
        for r in order {
            let score = context_score(&row(r), line, s, e);
            if score.is_some_and(|sc| best.is_none_or(|(_, b)| sc > b)) {
                best = score.map(|sc| (r, sc));
            }
            if best.is_some_and(|(_, b)| b >= most) {
                break;
            }
        }
    }
    let (r, _) = best?;
    Some(ScreenLine {
        exact,
        row: r,
        line: row(r),
        before: (r.saturating_sub(context)..r).map(&mut row).collect(),
        after: (r + 1..(r + 1 + context).min(n)).map(&mut row).collect(),
    })
}

/// How well `row` shows `line`'s match `line[s..e]`: the number of
/// characters around an occurrence of the match that agree with the line.
/// The row must be a faithful window of the line — agreeing up to the start
/// of the line or of the row, and up to the end of the line or of the row —
/// so a row holding the same word in other text is not taken for it (None).
fn context_score(row: &str, line: &str, s: usize, e: usize) -> Option<usize> {
    let text = &line[s..e];
    let mut best = None;
    for (p, _) in row.match_indices(text) {
        let (row_before, line_before) = (&row[..p], &line[..s]);
        let (row_after, line_after) = (&row[p + text.len()..], line[e..].trim_end());
        let before = row_before
            .chars()
            .rev()
            .zip(line_before.chars().rev())
            .take_while(|(a, b)| a == b)
            .count();
        let after = row_after
            .chars()
            .zip(line_after.chars())
            .take_while(|(a, b)| a == b)
            .count();
        let whole = |n: usize, x: &str, y: &str| n == x.chars().count() || n == y.chars().count();
        if whole(before, row_before, line_before) && whole(after, row_after, line_after) {
            best = best.max(Some(before + after));
        }
    }
    best
}
