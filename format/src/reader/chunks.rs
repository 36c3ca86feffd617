//! Content checks of one chunk: its record against the chain (sequence,
//! SHA-256, link, times), its event lines parsed and checked against the
//! record, and the runs of intact chunks found after damage.

use crate::cast::{EventAssembler, LineError, parse_line};
use crate::chain::{ChunkRecord, link};
use crate::pipeline::Flow;
use crate::segment::{ChunkScan, DecodedSegment};
use crate::stored::LineFault;

use crate::event::Micros;

use super::walk::Verifier;
use super::{ChunkOutput, ChunkRun, ProblemKind, Reason};

/// Why a chunk's event lines do not agree with it (reported as a
/// [`ProblemKind::BadEventLine`]).
#[derive(Debug, thiserror::Error)]
enum LinesError {
    /// A line does not parse.
    #[error("line {line} of chunk {chunk}: {source}")]
    Line {
        line: usize,
        chunk: u64,
        source: LineError,
    },
    /// A line's data does not fit its event.
    #[error("chunk {chunk}: {source}")]
    Event { chunk: u64, source: LineError },
    /// The first event is not at the time the record gives.
    #[error("chunk {chunk} starts at {found} µs, record says {record}")]
    Start {
        chunk: u64,
        found: Micros,
        record: Micros,
    },
    /// The last event is not at the time the record gives.
    #[error("chunk {chunk} ends at {found} µs, record says {record}")]
    End {
        chunk: u64,
        found: Micros,
        record: Micros,
    },
}

impl Verifier<'_> {
    pub(super) fn chunk(
        &mut self,
        seg: &DecodedSegment,
        chunk: &ChunkScan,
        work: Option<ChunkOutput>,
    ) -> Flow {
        let body = &seg.data[chunk.lines.clone()];
        let at = Some(chunk.lines.start as u64);
        let was_tampered = self.tampered;
        if !self.tampered {
            let lines = self.line_problem(chunk);
            match &chunk.record {
                Err(e) => self.problem(
                    ProblemKind::BadRecord,
                    Reason::BadRecord,
                    seg.offset,
                    Some(chunk.record_at as u64),
                    e.to_string(),
                ),
                Ok(r) if r.seq != self.next_seq => {
                    let what = if r.seq < self.next_seq {
                        "duplicated or out of order"
                    } else {
                        "missing"
                    };
                    let msg = format!(
                        "expected chunk {}, found chunk {} (chunks {what})",
                        self.next_seq, r.seq
                    );
                    self.problem(ProblemKind::Sequence, Reason::Sequence, seg.offset, at, msg);
                }
                Ok(_) if !chunk.content_ok => self.problem(
                    ProblemKind::ContentChanged,
                    Reason::ContentMismatch,
                    seg.offset,
                    at,
                    format!("chunk {} content does not match its SHA-256", self.next_seq),
                ),
                Ok(r) if link(&self.link, r.body().as_bytes()) != r.link => self.problem(
                    ProblemKind::LinkMismatch,
                    Reason::LinkMismatch,
                    seg.offset,
                    Some(chunk.record_at as u64),
                    format!(
                        "chunk {} does not link to the chunk before it",
                        self.next_seq
                    ),
                ),
                Ok(r) if r.first < self.last_t || r.last < r.first => self.problem(
                    ProblemKind::Timing,
                    Reason::RecordTime,
                    seg.offset,
                    Some(chunk.record_at as u64),
                    format!("chunk {} goes back in time", self.next_seq),
                ),
                Ok(r) if r.lines == 0 => self.problem(
                    ProblemKind::BadRecord,
                    Reason::EmptyChunk,
                    seg.offset,
                    Some(chunk.record_at as u64),
                    format!("chunk {} has no event lines", self.next_seq),
                ),
                Ok(_) if lines.is_some() => {
                    if let Some((kind, reason, offset, msg)) = lines {
                        let offset = chunk.lines.start as u64 + offset;
                        self.problem(kind, reason, seg.offset, Some(offset), msg);
                    }
                }
                Ok(r) => {
                    let r = r.clone();
                    if self.opts.events
                        && let Err(e) = self.events_of(body, Some(&r))
                    {
                        let reason = match e {
                            LinesError::Start { .. } | LinesError::End { .. } => Reason::EventTime,
                            _ => Reason::BadEvent,
                        };
                        self.problem(
                            ProblemKind::BadEventLine,
                            reason,
                            seg.offset,
                            at,
                            e.to_string(),
                        );
                    }
                    if !self.tampered {
                        self.link = r.link;
                        self.next_seq += 1;
                        self.last_t = r.last;
                        self.report.chunks += 1;
                        self.report.lines += r.lines;
                        self.report.last_verified = r.last;
                        let flow = self.flush_events();
                        let text = match work {
                            Some(w) => self.sink.chunk_worked(&r, body, w),
                            None => self.sink.chunk_text(&r, body),
                        };
                        if flow == Flow::Stop
                            || text == Flow::Stop
                            || self.sink.chunk(&r) == Flow::Stop
                        {
                            return Flow::Stop;
                        }
                        return Flow::Continue;
                    }
                    self.events.clear();
                }
            }
        }
        // Damage has been found: track runs of chunks intact among themselves.
        if let (Ok(r), true) = (&chunk.record, chunk.content_ok) {
            let extends = self.report.detached.last().is_some_and(|run| {
                run.last_chunk + 1 == r.seq && link(&run.link, r.body().as_bytes()) == r.link
            });
            if extends {
                if let Some(run) = self.report.detached.last_mut() {
                    run.last_chunk = r.seq;
                    run.t1 = r.last;
                    run.link = r.link;
                }
            } else if (was_tampered
                || r.seq != self.next_seq
                || link(&self.link, r.body().as_bytes()) != r.link)
                && self.report.detached.len() < 1000
            {
                {
                    self.report.detached.push(ChunkRun {
                        first_chunk: r.seq,
                        last_chunk: r.seq,
                        t0: r.first,
                        t1: r.last,
                        link: r.link,
                    });
                }
            }
        }
        if self.opts.lenient && self.opts.events {
            let _ = self.events_of(body, chunk.record.as_ref().ok());
            return self.flush_events();
        }
        Flow::Continue
    }

    /// What the checks of a chunk's event lines found, against its record
    /// and the chunk before: (kind, reason, offset in the chunk, message).
    fn line_problem(&self, chunk: &ChunkScan) -> Option<(ProblemKind, Reason, u64, String)> {
        let r = chunk.record.as_ref().ok()?;
        let seq = self.next_seq;
        match chunk.lines_check.as_ref()? {
            Err(f @ LineFault::Event { .. }) => Some((
                ProblemKind::BadEventLine,
                Reason::BadEvent,
                f.at() as u64,
                format!("chunk {seq}: {f}"),
            )),
            Err(f @ LineFault::Companion { .. }) => Some((
                ProblemKind::BadEventLine,
                Reason::BadCompanion,
                f.at() as u64,
                format!("chunk {seq}: {f}"),
            )),
            Ok(span) => {
                let first = self.last_t.checked_add(span.first);
                let last = first.and_then(|f| f.checked_add(span.span));
                if first != Some(r.first) || last != Some(r.last) {
                    let (found, record) = if first != Some(r.first) {
                        (first, format!("t={}..", r.first))
                    } else {
                        (last, format!("t=..{}", r.last))
                    };
                    let found = found.map_or("past 2^64 µs".into(), |t| format!("{t} µs"));
                    return Some((
                        ProblemKind::Timing,
                        Reason::EventTime,
                        0,
                        format!("chunk {seq}: its events are at {found}, its record says {record}"),
                    ));
                }
                None
            }
        }
    }

    /// Parses a chunk's event lines into `self.events`, checking times
    /// against the record.
    fn events_of(&mut self, body: &[u8], record: Option<&ChunkRecord>) -> Result<(), LinesError> {
        let mut asm = EventAssembler::new();
        let mut t = self.last_t;
        for (i, line) in body.split_inclusive(|&b| b == b'\n').enumerate() {
            let l = parse_line(line).map_err(|source| LinesError::Line {
                line: i + 1,
                chunk: self.next_seq,
                source,
            })?;
            t += l.time;
            if i == 0
                && let Some(r) = record
                && t != r.first
            {
                if !self.opts.lenient {
                    return Err(LinesError::Start {
                        chunk: self.next_seq,
                        found: t,
                        record: r.first,
                    });
                }
                // Unverified chunk in lenient mode: place it where its
                // record says.
                t = r.first;
            }
            asm.push(t, &l.code, l.data, &mut self.events)
                .map_err(|source| LinesError::Event {
                    chunk: self.next_seq,
                    source,
                })?;
        }
        asm.finish(&mut self.events);
        if let Some(r) = record {
            if t != r.last && !body.is_empty() && !self.opts.lenient {
                return Err(LinesError::End {
                    chunk: self.next_seq,
                    found: t,
                    record: r.last,
                });
            }
            if self.opts.lenient {
                self.last_t = r.last.max(self.last_t);
            }
        }
        Ok(())
    }

    pub(super) fn flush_events(&mut self) -> Flow {
        let mut flow = Flow::Continue;
        for e in self.events.drain(..) {
            if flow == Flow::Continue {
                flow = self.sink.event(&e);
            }
        }
        flow
    }
}
