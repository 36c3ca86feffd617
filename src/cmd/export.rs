//! `termtrail export`: a recording as plain asciicast v3/v2, a text
//! transcript or a web page, written atomically to a file or to stdout.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use clap::{Args, ValueEnum};
use termtrail_format::text::visible;
use termtrail_player::export::{
    ExportError, ExportFormat, ExportOptions, ExportOutcome, export_path,
};

use super::args::StoreArg;
use super::locate::fetch_if_remote;
use super::outfile::{self, io_text};
use crate::exit::Exit;

/// Text after `export --help`'s options.
pub const HELP: &str = "\
The recording is verified first; a tampered one is refused unless
--allow-tampered, which exports what can be read and marks where verification
stops (a marker event and a comment in casts, a banner line in text, a red
verdict and a marker on a web page). (--force is the deprecated name of
--allow-tampered.) When the damage is in the header itself there is nothing
to export: no OUT is written (an existing one is left as it was), the cause is
said on stderr and the exit status is 1; `termtrail verify` says where the
damage is. Plain .cast input is converted without verification.

-o OUT is written whole or not at all (beside it, then renamed), and never
over an existing file without --overwrite. Its format is --format's, else its
extension's: .cast → cast-v3, .txt → txt, .html or .htm → html; another
extension needs --format (.cast.zst is refused: export writes plain formats,
a .cast.zst is what rec and import write). A device or a pipe (-o /dev/null)
is written in place, cast-v3 unless --format says otherwise; -o - is stdout.

--format html writes one page that needs no network: asciinema-player (its
bundle is built into termtrail), the recording, its metadata and what
verification found. Open it in any browser.

--format txt is the text as the screen showed it, the same as asciinema 3's
`asciinema convert -f txt` (resizes reflow lines, none is cut), meant to be
read with cat or less: terminal controls and bidi overrides left in screen cells are shown
visible (^[, \\u{202e}), so the file cannot act on the terminal that shows it.
Casts keep every byte. Terminals larger than 2000x1000 are replayed (txt) or
played (html) at that size, with a note on stderr.

Examples:
  termtrail export session.cast.zst --format txt
  termtrail export session.cast.zst -o session.cast           (v3, for asciinema 3)
  termtrail export session.cast.zst --format cast-v2 -o old.cast  (asciinema 2.x)
  termtrail export session.cast.zst -o session.html           (a page that plays it)
  termtrail export session.cast.zst -o session.cast --overwrite   (replace an earlier export)
  termtrail export session.cast.zst -o notes.log --format txt";

/// `export` arguments.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The recording (.cast.zst, or a plain .cast): a path, an s3:// URL, or a name in the store (an id or id prefix, a file name, @last).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub store: StoreArg,
    /// Output format (default: from -o's extension: .cast → cast-v3, .txt → txt, .html/.htm → html; stdout: cast-v3).
    #[arg(short, long, help_heading = super::headings::OUTPUT)]
    pub format: Option<Format>,
    /// Output file (default: stdout).
    #[arg(short, long, value_name = "OUT", help_heading = super::headings::OUTPUT)]
    pub output: Option<PathBuf>,
    /// Replace OUT if it exists.
    #[arg(long, requires = "output", help_heading = super::headings::OUTPUT)]
    pub overwrite: bool,
    /// Export a tampered recording anyway, marked as unverified from the damage on (`--force`: its deprecated name).
    #[arg(long, help_heading = super::headings::GENERAL)]
    pub allow_tampered: bool,
    /// The deprecated name of --allow-tampered (said so on stderr).
    #[arg(long, hide = true)]
    pub force: bool,
}

/// Export formats.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// asciicast v3 (asciinema 3, asciinema-player).
    CastV3,
    /// asciicast v2 (asciinema 2.x).
    CastV2,
    /// Plain text transcript, as the screen showed it.
    Txt,
    /// One self-contained web page that plays it (asciinema-player inside).
    Html,
}

impl ExportArgs {
    /// The export options: the format named, or the one -o's extension
    /// implies (an unknown extension is an error).
    fn options(&self) -> Result<ExportOptions> {
        let format = match (self.format, &self.output) {
            (Some(f), Some(out)) if !outfile::is_special(out) => agrees(f, out)?,
            (Some(f), _) => f,
            (None, None) => Format::CastV3,
            (None, Some(out)) if outfile::is_special(out) => Format::CastV3,
            (None, Some(out)) => format_of(out)?,
        };
        Ok(ExportOptions {
            format: match format {
                Format::CastV3 => ExportFormat::CastV3,
                Format::CastV2 => ExportFormat::CastV2,
                Format::Txt => ExportFormat::Txt,
                Format::Html => ExportFormat::Html,
            },
            allow_tampered: self.allow_tampered,
        })
    }
}

/// The extensions `-o` may end in without `--format`.
const KNOWN: &str = ".cast (cast-v3), .txt, .html, .htm";

/// `format` when `out`'s extension does not name another one (an
/// extension termtrail does not know is the user's choice); else the
/// error saying which extension goes with the format.
fn agrees(format: Format, out: &Path) -> Result<Format> {
    let name = out.to_string_lossy().to_ascii_lowercase();
    let wants = match format {
        Format::CastV3 | Format::CastV2 => ".cast",
        Format::Txt => ".txt",
        Format::Html => ".html",
    };
    let named = if name.ends_with(".cast.zst") {
        Some(".cast.zst")
    } else if out.is_dir() {
        None
    } else {
        match out
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("cast") => Some(".cast"),
            Some("txt") => Some(".txt"),
            Some("html" | "htm") => Some(".html"),
            _ => None,
        }
    };
    match named {
        Some(ext) if ext != wants => bail!(
            "{}: --format {} goes with {wants}, not {ext}: name it *{wants}",
            out.display(),
            format
                .to_possible_value()
                .map(|v| v.get_name().to_string())
                .unwrap_or_default()
        ),
        _ => Ok(format),
    }
}

/// The format `out`'s extension names.
fn format_of(out: &Path) -> Result<Format> {
    let name = out.to_string_lossy();
    let shown = out.display();
    if name.ends_with(".cast.zst") {
        bail!(
            "{shown}: export writes plain formats ({KNOWN}); a .cast.zst is a termtrail recording (rec, import): name it .cast"
        );
    }
    if out.is_dir() {
        bail!("{shown} is a directory: give a file name (e.g. {shown}/out.cast)");
    }
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("cast") => Ok(Format::CastV3),
        Some("txt") => Ok(Format::Txt),
        Some("html" | "htm") => Ok(Format::Html),
        Some(_) => bail!(
            "{shown}: unknown extension .{}; known: {KNOWN}, or give --format",
            out.extension().unwrap_or_default().to_string_lossy()
        ),
        None => bail!("{shown}: no extension; known: {KNOWN}, or give --format"),
    }
}

/// Runs `export`.
pub fn run(mut a: ExportArgs) -> Result<Exit> {
    // `-o -` is stdout, as when -o is not given.
    if a.output.as_deref() == Some(Path::new("-")) {
        a.output = None;
    }
    if a.force {
        eprintln!("termtrail: note: --force is now --allow-tampered");
        a.allow_tampered = true;
    }
    // Refused before anything is read.
    let opts = a.options()?;
    if let Some(out) = &a.output {
        outfile::check(out, a.overwrite)?;
    }
    a.file = super::locate::resolve(&a.file, &a.store)?;
    super::ensure_recording(&a.file)?;
    let (file, _fetched) = fetch_if_remote(&a.file)?;
    let (result, written) = match &a.output {
        Some(out) => export_to_file(&file, out, &opts)?,
        None => {
            let mut lock = Counted::new(io::BufWriter::new(super::stdout::lock()));
            let r = export_path(&file, &mut lock, &opts);
            lock.flush()?;
            (r, lock.bytes)
        }
    };
    super::clamp_notice();
    match result {
        Ok(outcome) if written == 0 && unreadable_header(&outcome) => {
            nothing_exported(&a.file, a.output.as_deref(), &outcome);
            Ok(Exit::TAMPERED)
        }
        Ok(outcome) => Ok(report(&a.file, &outcome)),
        Err(ExportError::Tampered(_)) => {
            let e = result.unwrap_err().to_string();
            eprintln!("termtrail: {}: {}", a.file.display(), visible(&e));
            Ok(Exit::TAMPERED)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot export {}", a.file.display()))),
    }
}

/// Whether an export that wrote nothing did so because the recording is
/// tampered before its header could be read: nothing to export at all.
fn unreadable_header(outcome: &ExportOutcome) -> bool {
    use termtrail_format::reader::Status;
    outcome
        .report
        .as_ref()
        .is_some_and(|r| r.status == Status::Tampered && r.header.is_none())
}

/// Says that a recording tampered in its header gave nothing to export
/// (and that no OUT was left behind).
fn nothing_exported(file: &Path, out: Option<&Path>, outcome: &ExportOutcome) {
    let why = (outcome.report.as_ref())
        .and_then(|r| r.problems.first())
        .map_or("damaged", |p| p.message.as_str());
    let left = match out {
        Some(out) if !outfile::is_special(out) => format!("; {} not written", out.display()),
        _ => String::new(),
    };
    eprintln!(
        "termtrail: {}: TAMPERED before its header could be read ({}); nothing exported{left} (`termtrail verify` says where the damage is)",
        file.display(),
        visible(why)
    );
}

/// What an export returned, and how many bytes it wrote.
type Written = (Result<ExportOutcome, ExportError>, u64);

/// Exports `file` into `out`: written beside it and renamed, so a refused
/// or failed export never leaves a partial file under the real name, and
/// an export that wrote nothing of a tampered recording leaves no file.
fn export_to_file(file: &Path, out: &Path, opts: &ExportOptions) -> Result<Written> {
    // A device or a pipe (`-o /dev/null`, `-o /dev/stdout`, a FIFO) is
    // written in place: renaming a file onto it would replace the device.
    if std::fs::metadata(out).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        let mut f = Counted::new(io::BufWriter::new(
            std::fs::OpenOptions::new()
                .write(true)
                .open(out)
                .map_err(|e| anyhow!("cannot open {}: {}", out.display(), io_text(&e)))?,
        ));
        let r = export_path(file, &mut f, opts);
        f.flush().map_err(|e| match e.kind() {
            // A closed pipe (-o /dev/stdout | head) ends quietly.
            io::ErrorKind::BrokenPipe => anyhow::Error::new(e),
            _ => anyhow!("cannot write {}: {}", out.display(), io_text(&e)),
        })?;
        return Ok((r, f.bytes));
    }
    // Errors name OUT, never the temporary file.
    let cannot = |e: io::Error| match out.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if e.kind() == io::ErrorKind::NotFound && !dir.is_dir() => anyhow!(
            "cannot write {}: no such directory {}",
            out.display(),
            dir.display()
        ),
        _ => anyhow!("cannot write {}: {}", out.display(), io_text(&e)),
    };
    let tmp = partial_path(out);
    let mut f = Counted::new(io::BufWriter::new(
        std::fs::File::create(&tmp).map_err(cannot)?,
    ));
    let r = export_path(file, &mut f, opts);
    let flushed = f.flush();
    let written = f.bytes;
    // A write that failed (a full disk) is said of OUT, as a failed flush
    // is, never of the recording read.
    let r = match r {
        Err(ExportError::Io(e)) if f.write_failed => {
            let _ = std::fs::remove_file(&tmp);
            return Err(cannot(e));
        }
        r => r,
    };
    let nothing = written == 0 && r.as_ref().is_ok_and(unreadable_header);
    match (&r, flushed) {
        (Ok(_), Ok(())) if !nothing => std::fs::rename(&tmp, out).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            cannot(e)
        })?,
        (_, Err(e)) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(cannot(e));
        }
        _ => {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok((r, written))
}

/// Says what verification found about an exported recording; the status.
fn report(file: &Path, outcome: &ExportOutcome) -> Exit {
    use termtrail_format::reader::Status;
    let Some(report) = &outcome.report else {
        return Exit::SUCCESS;
    };
    match report.status {
        Status::Unsealed => {
            let upto = termtrail_format::event::format_clock(report.last_verified);
            match termtrail_format::recover::live::writer_of(file) {
                Some(live) => eprintln!(
                    "termtrail: note: {live}; exported what is written so far (up to {upto})"
                ),
                None => eprintln!(
                    "termtrail: note: {} is unsealed; exported the verified part (up to {upto})",
                    file.display()
                ),
            }
            Exit::SUCCESS
        }
        Status::Tampered => {
            eprintln!(
                "termtrail: warning: {} is TAMPERED; the export is marked where verification stops",
                file.display()
            );
            Exit::TAMPERED
        }
        Status::Intact => Exit::SUCCESS,
    }
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// A writer that counts the bytes written through it.
struct Counted<W> {
    inner: W,
    bytes: u64,
    /// Whether a write or flush into `inner` failed.
    write_failed: bool,
}

impl<W> Counted<W> {
    fn new(inner: W) -> Self {
        Counted {
            inner,
            bytes: 0,
            write_failed: false,
        }
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self
            .inner
            .write(buf)
            .inspect_err(|_| self.write_failed = true)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|_| self.write_failed = true)
    }
}
