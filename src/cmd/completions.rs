//! `termtrail completions SHELL` and `termtrail man`: shell completion
//! scripts and man pages, both generated from the command line's own clap
//! definition (clap_complete, clap_mangen), so they list exactly the
//! subcommands and flags this binary takes.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::exit::Exit;

/// Text after `completions --help`'s options.
pub const COMPLETIONS_HELP: &str = "\
The script goes to stdout; load it the way your shell loads completions.

Examples:
  source <(termtrail completions bash)              this bash session
  termtrail completions bash > ~/.local/share/bash-completion/completions/termtrail
  termtrail completions zsh > ~/.zfunc/_termtrail   with fpath+=(~/.zfunc) before compinit
  termtrail completions fish > ~/.config/fish/completions/termtrail.fish
  termtrail completions powershell >> $PROFILE";

/// Text after `man --help`'s options.
pub const MAN_HELP: &str = "\
Without --dir, the page termtrail(1) goes to stdout. With --dir, termtrail.1
and one page per subcommand (termtrail-rec.1, termtrail-policy-check.1, …) are
written there; an existing page is replaced only with --overwrite.

Examples:
  termtrail man | man -l -
  termtrail man --dir ~/.local/share/man/man1 --overwrite && man termtrail-grep";

/// `completions` arguments.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum, value_name = "SHELL")]
    pub shell: Shell,
}

/// `man` arguments.
#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write termtrail.1 and one page per subcommand into DIR (created if missing).
    #[arg(long, value_name = "DIR", help_heading = super::headings::OUTPUT)]
    pub dir: Option<PathBuf>,
    /// Replace pages that already exist in DIR.
    #[arg(long, requires = "dir", help_heading = super::headings::OUTPUT)]
    pub overwrite: bool,
}

/// Runs `completions`: the script on stdout.
pub fn completions(a: CompletionsArgs) -> Result<Exit> {
    let mut cmd = visible();
    // Generated into memory first: clap_complete panics when its writer
    // fails (a closed pipe, a full disk); a failed write to stdout is an
    // error here (a closed pipe ends quietly, as everywhere).
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "termtrail", &mut script);
    let mut out = super::stdout::lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(Exit::SUCCESS)
}

/// The command line without its hidden subcommands (the internal
/// `__supervise`): the generators would offer them, and the bash one splits
/// subcommand paths at "__".
fn visible() -> clap::Command {
    let full = super::Cli::command();
    clap::Command::new("termtrail")
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true)
        .about(full.get_about().cloned().unwrap_or_default())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned())
}

/// Runs `man`: termtrail(1) on stdout, or every page into `--dir`.
pub fn man(a: ManArgs) -> Result<Exit> {
    let mut cmd = super::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let Some(dir) = a.dir else {
        let mut out = super::stdout::lock();
        out.write_all(render(&clap_mangen::Man::new(cmd))?.as_bytes())?;
        out.flush()?;
        return Ok(Exit::SUCCESS);
    };
    if dir.exists() && !dir.is_dir() {
        bail!(
            "{}: not a directory; --dir names the directory the pages go into",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot create {}: {}",
            dir.display(),
            super::outfile::io_text(&e)
        )
    })?;
    let mut pages = Vec::new();
    collect(&cmd, &mut pages);
    if !a.overwrite
        && let Some(p) = pages
            .iter()
            .map(|m| dir.join(m.get_filename()))
            .find(|p| p.exists())
    {
        bail!("{} exists; use --overwrite to replace it", p.display());
    }
    // Every page first, then their names: a reader that stops early
    // (`| head -1`) does not stop the pages being written.
    let mut written = Vec::new();
    for page in &pages {
        let path = dir.join(page.get_filename());
        write_page(page, &path)?;
        written.push(path);
    }
    let mut out = super::stdout::lock();
    for path in written {
        writeln!(out, "{}", path.display())?;
    }
    Ok(Exit::SUCCESS)
}

/// The page of `cmd` and of each visible subcommand, depth first.
fn collect(cmd: &clap::Command, pages: &mut Vec<clap_mangen::Man>) {
    pages.push(clap_mangen::Man::new(cmd.clone()));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, pages);
    }
}

fn write_page(page: &clap_mangen::Man, path: &Path) -> Result<()> {
    std::fs::write(path, render(page)?).map_err(|e| {
        anyhow::anyhow!(
            "cannot write {}: {}",
            path.display(),
            super::outfile::io_text(&e)
        )
    })
}

/// The page as roff in plain ASCII: characters beyond it (…, →, —) become
/// groff's `\[uXXXX]` escapes, so any troff renders them without a
/// preprocessor (`man` runs preconv, plain `groff -man` does not).
fn render(page: &clap_mangen::Man) -> Result<String> {
    let mut raw = Vec::new();
    page.render(&mut raw)?;
    let text = String::from_utf8(raw).context("man page: not UTF-8")?;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    Ok(out)
}
