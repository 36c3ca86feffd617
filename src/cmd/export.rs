//! `termtrail export`: a recording as plain asciicast v3/v2, a text
//! transcript or a web page, written atomically to a file or to stdout.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use termtrail_format::text::visible;
use termtrail_player::export::{
    ExportError, ExportFormat, ExportOptions, ExportOutcome, export_path,
};

use super::args::StoreArg;
use super::locate::fetch_if_remote;
use crate::exit::Exit;

/// Text after `export --help`'s options.
pub const HELP: &str = "\
The recording is verified first; a tampered one is refused unless --force,
which exports what can be read and marks where verification stops (a marker
event and a comment in casts, a banner line in text, a red verdict and a
marker on a web page). Plain .cast input is converted without verification.

--format html writes one page that needs no network: asciinema-player (its
bundle is built into termtrail), the recording, its metadata and what
verification found. Open it in any browser; the default output format
follows -o's extension (.txt, .html, else cast-v3).

--format txt is the text as the screen showed it, meant to be read with cat
or less: terminal controls and bidi overrides left in screen cells are shown
visible (^[, \\u{202e}), so the file cannot act on the terminal that shows it.
Casts keep every byte. Terminals larger than 2000x1000 are replayed (txt) or
played (html) at that size, with a note on stderr.

Examples:
  termtrail export session.cast.zst --format txt
  termtrail export session.cast.zst -o session.cast           (v3, for asciinema 3)
  termtrail export session.cast.zst --format cast-v2 -o old.cast  (asciinema 2.x)
  termtrail export session.cast.zst -o session.html           (a page that plays it)";

/// `export` arguments.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The recording (.cast.zst, or a plain .cast): a path, an s3:// URL, or a name in the store (an id or id prefix, a file name, @last).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub store: StoreArg,
    /// Output format (default: from -o's extension: .txt → txt, .html → html, else cast-v3).
    #[arg(short, long)]
    pub format: Option<Format>,
    /// Output file (default: stdout).
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Export a tampered recording anyway, marked as unverified from the damage on.
    #[arg(long)]
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
    /// implies.
    fn options(&self) -> ExportOptions {
        let format = self.format.unwrap_or_else(|| match &self.output {
            Some(p) if p.extension().is_some_and(|e| e == "txt") => Format::Txt,
            Some(p) if p.extension().is_some_and(|e| e == "html" || e == "htm") => Format::Html,
            _ => Format::CastV3,
        });
        ExportOptions {
            format: match format {
                Format::CastV3 => ExportFormat::CastV3,
                Format::CastV2 => ExportFormat::CastV2,
                Format::Txt => ExportFormat::Txt,
                Format::Html => ExportFormat::Html,
            },
            force: self.force,
        }
    }
}

/// Runs `export`.
pub fn run(mut a: ExportArgs) -> Result<Exit> {
    a.file = super::locate::resolve(&a.file, &a.store)?;
    super::ensure_recording(&a.file)?;
    let opts = a.options();
    let (file, _fetched) = fetch_if_remote(&a.file)?;
    let result = match &a.output {
        Some(out) => export_to_file(&file, out, &opts)?,
        None => {
            let stdout = io::stdout();
            let mut lock = io::BufWriter::new(stdout.lock());
            let r = export_path(&file, &mut lock, &opts);
            lock.flush()?;
            r
        }
    };
    super::clamp_notice();
    match result {
        Ok(outcome) => Ok(report(&a.file, &outcome)),
        Err(ExportError::Tampered(_)) => {
            let e = result.unwrap_err().to_string();
            eprintln!("termtrail: {}: {}", a.file.display(), visible(&e));
            Ok(Exit::TAMPERED)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot export {}", a.file.display()))),
    }
}

/// Exports `file` into `out`: written beside it and renamed, so a refused
/// or failed export never leaves a partial file under the real name.
fn export_to_file(
    file: &Path,
    out: &Path,
    opts: &ExportOptions,
) -> Result<Result<ExportOutcome, ExportError>> {
    // A device or a pipe (`-o /dev/null`, `-o /dev/stdout`, a FIFO) is
    // written in place: renaming a file onto it would replace the device.
    if std::fs::metadata(out).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
        let mut f = io::BufWriter::new(
            std::fs::OpenOptions::new()
                .write(true)
                .open(out)
                .with_context(|| format!("cannot open {}", out.display()))?,
        );
        let r = export_path(file, &mut f, opts);
        f.flush()
            .with_context(|| format!("cannot write {}", out.display()))?;
        return Ok(r);
    }
    let tmp = partial_path(out);
    let mut f = io::BufWriter::new(
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?,
    );
    let r = export_path(file, &mut f, opts);
    let flushed = f.flush();
    match (&r, flushed) {
        (Ok(_), Ok(())) => {
            std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))?
        }
        (_, Err(e)) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).with_context(|| format!("cannot write {}", out.display()));
        }
        _ => {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(r)
}

/// Says what verification found about an exported recording; the status.
fn report(file: &Path, outcome: &ExportOutcome) -> Exit {
    use termtrail_format::reader::Status;
    let Some(report) = &outcome.report else {
        return Exit::SUCCESS;
    };
    match report.status {
        Status::Unsealed => {
            eprintln!(
                "termtrail: note: {} is unsealed; exported the verified part (up to {})",
                file.display(),
                termtrail_format::event::format_clock(report.last_verified)
            );
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
