//! Content checks of one chunk: its record against the chain (sequence,
//! SHA-256, link, times), its event lines parsed and checked against the
//! record, and the runs of intact chunks found after damage.

use crate::cast::{EventAssembler, LineError, parse_line};
use crate::chain::{ChunkRecord, link};
use crate::pipeline::Flow;
use crate::segment::{ChunkScan, DecodedSegment};

use crate::event::Micros;

use super::walk::Verifier;
use super::{ChunkRun, ProblemKind};

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
    pub(super) fn chunk(&mut self, seg: &DecodedSegment, chunk: &ChunkScan) -> Flow {
        let body = &seg.data[chunk.lines.clone()];
        let at = Some(chunk.lines.start as u64);
        let was_tampered = self.tampered;
        if !self.tampered {
            match &chunk.record {
                Err(e) => self.problem(
                    ProblemKind::BadRecord,
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
                    self.problem(ProblemKind::Sequence, seg.offset, at, msg);
                }
                Ok(_) if !chunk.content_ok => self.problem(
                    ProblemKind::ContentChanged,
                    seg.offset,
                    at,
                    format!("chunk {} content does not match its SHA-256", self.next_seq),
                ),
                Ok(r) if link(&self.link, r.body().as_bytes()) != r.link => self.problem(
                    ProblemKind::LinkMismatch,
                    seg.offset,
                    Some(chunk.record_at as u64),
                    format!(
                        "chunk {} does not link to the chunk before it",
                        self.next_seq
                    ),
                ),
                Ok(r) if r.first < self.last_t || r.last < r.first => self.problem(
                    ProblemKind::Timing,
                    seg.offset,
                    Some(chunk.record_at as u64),
                    format!("chunk {} goes back in time", self.next_seq),
                ),
                Ok(r) => {
                    let r = r.clone();
                    if self.opts.events
                        && let Err(e) = self.events_of(body, Some(&r))
                    {
                        self.problem(ProblemKind::BadEventLine, seg.offset, at, e.to_string());
                    }
                    if !self.tampered {
                        self.link = r.link;
                        self.next_seq += 1;
                        self.last_t = r.last;
                        self.report.chunks += 1;
                        self.report.lines += r.lines;
                        self.report.last_verified = r.last;
                        let flow = self.flush_events();
                        if flow == Flow::Stop
                            || self.sink.chunk_text(&r, body) == Flow::Stop
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
