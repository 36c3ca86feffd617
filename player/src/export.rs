//! `termtrail export`: a recording to plain asciicast v3/v2, a text
//! transcript, or a web page that plays it. A `.cast.zst` is verified first and refused when tampered
//! (unless forced, in which case the output is marked where verification
//! stops). Plain `.cast` files are converted as they are.

use std::fs::File;
use std::io::{self, BufReader, Write};
use std::path::Path;

use termtrail_format::cast::{CastVersion, Header};
use termtrail_format::event::{Event, EventData};
use termtrail_format::pipeline::Flow;
use termtrail_format::plain::{CastError, CastReader, CastWriter};
use termtrail_format::reader::{
    FileKind, Problem, ReadError, ReadOptions, ReadSink, Report, Status, read_path, sniff_path,
};
use termtrail_format::text::{JsonEscaper, visible, visible_lines};

use crate::html::{JsonString, Verification};
use crate::screen::TranscriptTerminal;

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// asciicast v3.
    CastV3,
    /// asciicast v2 (absolute times).
    CastV2,
    /// Plain text transcript, as the terminal showed it.
    Txt,
    /// A self-contained web page that plays it (see [`crate::html`]).
    Html,
}

/// Export settings.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Output format.
    pub format: ExportFormat,
    /// Export a tampered recording anyway, marking where verification stops.
    pub allow_tampered: bool,
}

/// What an export did.
#[derive(Debug)]
pub struct ExportOutcome {
    /// Events written.
    pub events: u64,
    /// The verification report (None for plain `.cast` input).
    pub report: Option<Report>,
}

/// Export failures.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The recording could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A plain asciicast input is malformed.
    #[error("{0}")]
    Cast(#[from] CastError),
    /// The recording is tampered and `force` was not given.
    #[error("the recording is tampered: {}; refusing to export (use --allow-tampered to export it marked as unverified)", .0.problems.first().map(|p| p.message.as_str()).unwrap_or("damage found"))]
    Tampered(Box<Report>),
}

enum Output<'w> {
    /// C1 and bidi characters escaped too (they are often printed to a
    /// terminal: `termtrail export FILE` writes to stdout).
    Cast(CastWriter<JsonEscaper<&'w mut dyn Write>>),
    Txt(Box<TranscriptTerminal>, &'w mut dyn Write),
    Html(CastWriter<JsonString<&'w mut dyn Write>>),
}

impl<'w> Output<'w> {
    fn new(
        out: &'w mut dyn Write,
        header: &Header,
        format: ExportFormat,
        name: &str,
    ) -> io::Result<Output<'w>> {
        let mut header = header.clone();
        // The export is no longer a verifiable recording.
        header.termtrail = None;
        Ok(match format {
            ExportFormat::CastV3 => Output::Cast(CastWriter::new(
                JsonEscaper::new(out),
                &header,
                CastVersion::V3,
                true,
            )?),
            ExportFormat::CastV2 => Output::Cast(CastWriter::new(
                JsonEscaper::new(out),
                &header,
                CastVersion::V2,
                true,
            )?),
            ExportFormat::Txt => Output::Txt(Box::new(TranscriptTerminal::new(header.size())), out),
            ExportFormat::Html => {
                // The browser's emulator holds every cell too: the page plays
                // the recording at the size the player replays (the table
                // shows the size recorded).
                let size = crate::term::replay_size(header.size());
                header.term.cols = size.cols;
                header.term.rows = size.rows;
                crate::html::write_head(out, &header, name)?;
                let data = JsonString::new(out);
                Output::Html(CastWriter::new(data, &header, CastVersion::V3, true)?)
            }
        })
    }

    fn event(&mut self, e: &Event) -> io::Result<()> {
        match self {
            Output::Cast(w) => w.write(e),
            Output::Html(w) => match e.data {
                EventData::Resize(size) => w.write(&Event::new(
                    e.time,
                    EventData::Resize(crate::term::replay_size(size)),
                )),
                _ => w.write(e),
            },
            Output::Txt(term, out) => {
                match &e.data {
                    // Events hold whole characters; show invalid bytes as
                    // U+FFFD the way every terminal and asciinema do.
                    EventData::Output(bytes) => term.feed(&String::from_utf8_lossy(bytes)),
                    EventData::Resize(size) => term.resize(*size),
                    _ => return Ok(()),
                }
                let lines = term.take_lines();
                out.write_all(visible_lines(&lines).as_bytes())
            }
        }
    }

    fn unverified(&mut self, e: &Event, message: &str) -> io::Result<()> {
        let label = format!("termtrail: UNVERIFIED from here: {message}");
        match self {
            Output::Cast(w) => {
                w.comment(&label)?;
                w.write(&Event::new(e.time, EventData::Marker(label)))
            }
            Output::Html(w) => w.write(&Event::new(e.time, EventData::Marker(label))),
            Output::Txt(term, out) => {
                term.break_line();
                out.write_all(visible_lines(&term.take_lines()).as_bytes())?;
                writeln!(out, "----- {} -----", visible(&label))
            }
        }
    }

    /// Finishes; an HTML page gets its writer back for the page's tail.
    fn finish(self) -> io::Result<Option<&'w mut dyn Write>> {
        match self {
            Output::Cast(w) => w.finish()?.into_inner().map(|_| None),
            Output::Html(w) => Ok(Some(w.finish()?.into_inner())),
            Output::Txt(term, out) => {
                out.write_all(visible_lines(&term.finish()).as_bytes())?;
                out.flush().map(|()| None)
            }
        }
    }
}

struct ExportSink<'w> {
    out: Option<&'w mut dyn Write>,
    output: Option<Output<'w>>,
    header: Option<Header>,
    name: String,
    format: ExportFormat,
    error: Option<io::Error>,
    events: u64,
    pending_problem: Option<String>,
    last_time: u64,
}

impl ExportSink<'_> {
    fn check(&mut self, r: io::Result<()>) -> Flow {
        match r {
            Ok(()) => Flow::Continue,
            Err(e) => {
                self.error = Some(e);
                Flow::Stop
            }
        }
    }
}

impl ReadSink for ExportSink<'_> {
    fn header(&mut self, header: &Header) -> Flow {
        let Some(out) = self.out.take() else {
            return Flow::Stop;
        };
        self.header = Some(header.clone());
        match Output::new(out, header, self.format, &self.name) {
            Ok(o) => {
                self.output = Some(o);
                Flow::Continue
            }
            Err(e) => self.check(Err(e)),
        }
    }

    fn event(&mut self, e: &Event) -> Flow {
        let Some(output) = self.output.as_mut() else {
            return Flow::Stop;
        };
        let mut r = Ok(());
        if let Some(message) = self.pending_problem.take() {
            r = output.unverified(
                &Event::new(self.last_time, EventData::Marker(String::new())),
                &message,
            );
        }
        self.last_time = e.time;
        self.events += 1;
        let r = r.and_then(|()| output.event(e));
        self.check(r)
    }

    fn problem(&mut self, p: &Problem) {
        self.pending_problem = Some(p.message.clone());
    }
}

/// Exports `input` into `out`.
pub fn export_path(
    input: &Path,
    out: &mut dyn Write,
    opts: &ExportOptions,
) -> Result<ExportOutcome, ExportError> {
    if sniff_path(input)? == Some(FileKind::Plain) {
        return export_plain(input, out, opts);
    }
    if !opts.allow_tampered {
        let check = ReadOptions {
            events: false,
            ..ReadOptions::default()
        };
        let report = read_path(input, &check, &mut ())?;
        if report.status == Status::Tampered {
            return Err(ExportError::Tampered(Box::new(report)));
        }
    }
    let read = ReadOptions {
        events: true,
        lenient: opts.allow_tampered,
        ..ReadOptions::default()
    };
    let mut sink = ExportSink {
        out: Some(out),
        output: None,
        header: None,
        name: file_name(input),
        format: opts.format,
        error: None,
        events: 0,
        pending_problem: None,
        last_time: 0,
    };
    let report = read_path(input, &read, &mut sink)?;
    if let Some(e) = sink.error.take() {
        return Err(e.into());
    }
    if let Some(message) = sink.pending_problem.take()
        && let Some(o) = sink.output.as_mut()
    {
        o.unverified(
            &Event::new(sink.last_time, EventData::Marker(String::new())),
            &message,
        )?;
    }
    if let Some(o) = sink.output.take()
        && let Some(page) = o.finish()?
        && let Some(header) = &sink.header
    {
        let v = Verification::Report(Box::new(report.clone()));
        crate::html::write_tail(page, header, &sink.name, sink.last_time, &v)?;
    }
    Ok(ExportOutcome {
        events: sink.events,
        report: Some(report),
    })
}

fn export_plain(
    input: &Path,
    out: &mut dyn Write,
    opts: &ExportOptions,
) -> Result<ExportOutcome, ExportError> {
    let mut reader = CastReader::new(BufReader::new(File::open(input)?))?;
    let header = reader.header().clone();
    let name = file_name(input);
    let mut output = Output::new(out, &header, opts.format, &name)?;
    let mut events = 0;
    let mut last = 0;
    while let Some(e) = reader.next_event()? {
        output.event(&e)?;
        events += 1;
        last = e.time;
    }
    if let Some(page) = output.finish()? {
        crate::html::write_tail(page, &header, &name, last, &Verification::Plain)?;
    }
    Ok(ExportOutcome {
        events,
        report: None,
    })
}
