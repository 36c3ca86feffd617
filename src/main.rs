//! The `termtrail` binary: parses arguments, calls into the crates, maps the
//! outcome to an exit code. Nothing else lives here.

mod cli;

use std::io::{self, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use termtrail_format::reader::ContentCheck;
use termtrail_format::store::{KeyParts, LocalStore};
use termtrail_format::writer::WriterOptions;

use cli::{
    AttachArgs, Cli, ColorWhen, Command, ExecArgs, ExportArgs, Format, GrepArgs, ImportArgs,
    KeygenArgs, LsArgs, PlayArgs, ProxyArgs, RecArgs, RecoverArgs, ServeArgs, SnapshotArgs,
    UploadArgs, VerifyArgs,
};

/// glibc raises its mmap threshold each time a large block is freed, so with
/// hundreds of shells the zstd contexts (about 1 MiB each, freed when a shell
/// goes idle) end up in a fragmented heap that is never returned: a host kept
/// ~350 KiB per idle shell instead of ~80 KiB (bench/shells.py). A fixed
/// threshold keeps such blocks mmapped, so freeing returns them. The setting
/// is read only at process start, hence the re-exec; an operator's own
/// MALLOC_MMAP_THRESHOLD_ wins.
fn fix_malloc_threshold_for_hosts() {
    const VAR: &str = "MALLOC_MMAP_THRESHOLD_";
    if std::env::var_os(VAR).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(VAR, "131072")
        .exec();
    // exec only returns on failure; carry on with the default allocator.
    eprintln!("termtrail: note: could not re-exec with {VAR} set: {err}");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Serve(_) | Command::Proxy(_)) {
        fix_malloc_threshold_for_hosts();
    }
    let result = match cli.command {
        Command::Rec(a) => rec(a),
        Command::Verify(a) => verify(a),
        Command::Export(a) => export(a),
        Command::Grep(a) => grep(a),
        Command::Ls(a) => ls(a),
        Command::Upload(a) => upload(a),
        Command::Recover(a) => recover(a),
        Command::Play(a) => play(a),
        Command::Snapshot(a) => snapshot(a),
        Command::Import(a) => import(a),
        Command::Keygen(a) => keygen(a),
        Command::Serve(a) => serve(a),
        Command::Attach(a) => attach(a),
        Command::Proxy(a) => proxy(a),
        Command::Exec(a) => exec(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // `termtrail export … | head` ends quietly, like ripgrep.
            if e.chain().any(|c| {
                c.downcast_ref::<io::Error>()
                    .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            // Causes whose text a wrapper already shows are not repeated.
            let mut msg = String::new();
            for cause in e.chain() {
                let text = cause.to_string();
                if !msg.contains(&text) {
                    if !msg.is_empty() {
                        msg.push_str(": ");
                    }
                    msg.push_str(&text);
                }
            }
            eprintln!("termtrail: {msg}");
            ExitCode::from(2)
        }
    }
}

fn snapshot(a: SnapshotArgs) -> Result<u8> {
    use termtrail_player::seek::{SeekError, cache_dir, parse_time};
    let at = parse_time(&a.at).map_err(anyhow::Error::msg)?;
    let cache = if a.no_cache { None } else { cache_dir() };
    let mut bar = Progress::new("building keyframes");
    let (found, _fetched) = open_seeker(&a.file, cache.as_deref(), &mut |done, total| {
        bar.update(done, total)
    })?;
    let found = found.and_then(|seeker| Ok((seeker.screen_at(at)?, seeker)));
    drop(bar);
    let (screen, seeker) = match found {
        Ok(found) => found,
        // Damage is a verdict (exit 1, as `verify`), not a failure to run.
        Err(e @ SeekError::Tampered { .. }) => {
            eprintln!("termtrail: {}: {e}", a.file.display());
            return Ok(1);
        }
        Err(e) => return Err(anyhow::Error::new(e).context(a.file.display().to_string())),
    };
    let clock = termtrail_format::event::format_clock;
    if let Some(damage) = seeker.damage() {
        eprintln!(
            "termtrail: warning: the recording does not verify after {}: {damage}; showing the verified part before it (run `termtrail verify` for details)",
            clock(seeker.duration())
        );
    } else if !seeker.sealed() && !seeker.is_plain() {
        eprintln!(
            "termtrail: note: the recording is not sealed (cut short or still being written); it is shown up to its last verified event"
        );
    } else if at > seeker.duration() {
        eprintln!(
            "termtrail: note: {} is past the end of the recording ({}); showing the last screen",
            clock(at),
            clock(seeker.duration())
        );
    }
    let mut out = io::stdout().lock();
    out.write_all(screen.render(a.color).as_bytes())?;
    out.flush()?;
    Ok(0)
}

/// The S3 protection options as the store takes them.
fn protection(p: &cli::ProtectArgs) -> Result<termtrail_format::store::s3::Protection> {
    use termtrail_format::store::s3::{LockMode, Protection, Sse};
    let retain = p.retain_days.map(|days| {
        let mode = match p.lock_mode {
            Some(cli::LockModeArg::Compliance) => LockMode::Compliance,
            _ => LockMode::Governance,
        };
        (mode, days)
    });
    let sse = match (p.sse.as_deref(), &p.kms_key_id) {
        (None, _) => None,
        (Some("AES256"), Some(_)) => bail!("--kms-key-id goes with --sse aws:kms, not AES256"),
        (Some("AES256"), None) => Some(Sse::Aes256),
        (Some(_), key) => Some(Sse::Kms(key.clone())),
    };
    Ok(Protection { retain, sse })
}

/// Opens FILE for seeking: a local file, or an `s3://` object — a
/// `.cast.zst` read by ranged GETs (index, then the segments needed), a plain
/// `.cast` fetched first.
fn open_seeker(
    file: &Path,
    cache: Option<&Path>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(
    Result<termtrail_player::seek::Seeker, termtrail_player::seek::SeekError>,
    Option<tempfile::TempPath>,
)> {
    use termtrail_player::remote::{Target, is_s3, list_url};
    use termtrail_player::seek::Seeker;
    if is_s3(file) {
        let url = file.to_string_lossy();
        let mut targets = list_url(&url).map_err(anyhow::Error::msg)?;
        if targets.len() != 1 {
            bail!(
                "{url} names {} recordings; name one object (termtrail ls {url} lists them)",
                targets.len()
            );
        }
        if let Target::S3 { store, key, size } = targets.remove(0)
            && key.ends_with(".cast.zst")
        {
            return Ok((Seeker::open_s3(store, &key, size, cache, progress), None));
        }
    }
    // A fetched file is read again when seeking: the caller keeps the guard.
    let (local, fetched) = fetch_if_remote(file)?;
    Ok((Seeker::open(&local, cache, progress), fetched))
}

/// A local copy of FILE: the file itself, or an `s3://` object fetched into
/// a temporary file (deleted when the guard drops).
fn fetch_if_remote(file: &Path) -> Result<(PathBuf, Option<tempfile::TempPath>)> {
    use termtrail_player::remote::{is_s3, list_url};
    if !is_s3(file) {
        return Ok((file.to_path_buf(), None));
    }
    let url = file.to_string_lossy();
    let mut targets = list_url(&url).map_err(anyhow::Error::msg)?;
    if targets.len() != 1 {
        bail!(
            "{url} names {} recordings; name one object (termtrail ls {url} lists them)",
            targets.len()
        );
    }
    let t = targets.remove(0);
    t.local().map_err(anyhow::Error::msg)
}

/// Recordings named on the command line (paths, directories, `s3://`
/// URLs), or the local store; with what could not be read.
fn targets(paths: &[PathBuf], since: Option<i64>) -> Result<termtrail_player::remote::Expanded> {
    let args: Vec<String> = search_roots(paths)?
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    Ok(termtrail_player::remote::expand(&args, since))
}

/// The paths to look at: those given, or the local store.
fn search_roots(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if !paths.is_empty() {
        return Ok(paths.to_vec());
    }
    let root = LocalStore::default_root()
        .context("no store directory: set HOME or XDG_DATA_HOME, or name files or directories")?;
    if !root.exists() {
        bail!(
            "no recordings yet in the local store ({}); name files or directories to search",
            root.display()
        );
    }
    Ok(vec![root])
}

/// The filters as the player takes them: metadata, and --since / --until
/// as Unix seconds.
fn filters(
    f: cli::FilterArgs,
) -> Result<(
    termtrail_player::select::MetaFilter,
    Option<i64>,
    Option<i64>,
)> {
    let now = unix_now() as i64;
    let when = |v: &Option<String>| {
        v.as_deref()
            .map(|s| termtrail_player::select::parse_when(s, now))
            .transpose()
            .map_err(anyhow::Error::msg)
    };
    let (since, until) = (when(&f.since)?, when(&f.until)?);
    let meta = termtrail_player::select::MetaFilter {
        session: f.session,
        shell: f.shell,
        principal: f.principal,
        title: f.title,
    };
    Ok((meta, since, until))
}

/// The Ed25519 secret key in `path`, when one is named (`--sign-key`).
fn secret_key(path: Option<&Path>) -> Result<Option<termtrail_format::sign::SecretKey>> {
    Ok(path
        .map(termtrail_format::sign::SecretKey::load)
        .transpose()?)
}

fn recover(a: RecoverArgs) -> Result<u8> {
    use termtrail_format::recover::{RecoverError, seal_interrupted};
    let key = secret_key(a.sign_key.as_deref())?;
    let mut code = 0;
    for f in &a.files {
        match seal_interrupted(
            f,
            "the recorder stopped before sealing; sealed by termtrail recover",
            key.as_ref(),
        ) {
            Ok(Some(r)) => println!(
                "{}: sealed as interrupted ({} chunks, {}{}{})",
                f.display(),
                r.chunks,
                termtrail_format::event::format_clock(r.duration),
                if r.dropped > 0 {
                    format!("; {} bytes of an unfinished chunk left out", r.dropped)
                } else {
                    String::new()
                },
                match (r.signed, &key) {
                    (true, _) => "; signed",
                    (false, Some(_)) => "; not signed: its header names another key or none",
                    (false, None) => "",
                }
            ),
            Ok(None) => println!("{}: already sealed", f.display()),
            Err(e @ RecoverError::Tampered(_)) => {
                eprintln!("termtrail: {}: {e}", f.display());
                code = code.max(1);
            }
            Err(e) => {
                eprintln!("termtrail: {}: {e}", f.display());
                code = 2;
            }
        }
    }
    Ok(code)
}

fn upload(a: UploadArgs) -> Result<u8> {
    use termtrail_format::store::Location;
    use termtrail_recorder::store::{DEFAULT_UPLOAD_INTERVAL, Destination};
    if !matches!(a.store, Location::S3 { .. }) {
        bail!("upload needs an S3 store (s3://BUCKET/PREFIX); a local store needs no upload");
    }
    let key = secret_key(a.sign_key.as_deref())?;
    let dest = Destination::open(
        &a.store,
        DEFAULT_UPLOAD_INTERVAL,
        false,
        protection(&a.protect)?,
        key,
    )
    .map_err(anyhow::Error::msg)?;
    let status = dest.flush(a.wait);
    for key in &status.uploaded {
        println!("uploaded s3://{}/{key}", bucket_of(&a.store));
    }
    Ok(report_pending(&status))
}

/// Says what is still in the spool after waiting for uploads; the exit
/// status: 0 when nothing is, 2 otherwise.
fn report_pending(status: &termtrail_format::store::s3::UploadStatus) -> u8 {
    for p in &status.pending {
        let why = status
            .errors
            .get(p)
            .map_or("not done in time", String::as_str);
        eprintln!("termtrail: still in the spool: {} ({why})", p.display());
    }
    if status.pending.is_empty() { 0 } else { 2 }
}

fn bucket_of(l: &termtrail_format::store::Location) -> &str {
    match l {
        termtrail_format::store::Location::S3 { bucket, .. } => bucket,
        termtrail_format::store::Location::Local(_) => "",
    }
}

fn ls(a: LsArgs) -> Result<u8> {
    use termtrail_player::list::{State, entries, print_table, sort};

    let (filter, since, until) = filters(a.filter)?;
    let (files, missing) = targets(&a.paths, since)?;
    let mut errors = missing.len();
    for (p, e) in &missing {
        eprintln!("termtrail: {p}: {e}");
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Reading an object's header and index is a few small ranged GETs:
    // waiting, not computing, so more at once than there are CPUs.
    let remote = termtrail_player::remote::Target::any_remote(&files);
    let jobs = a.threads.unwrap_or(if remote && !a.verify {
        cpus.max(16)
    } else {
        cpus
    });
    let mut bar = Progress::new(if a.verify { "verifying" } else { "reading" });
    let mut list = Vec::new();
    // In slices, so the progress bar moves.
    for (i, slice) in files.chunks(64).enumerate() {
        for (path, r) in slice.iter().zip(entries(slice, a.verify, jobs)) {
            match r {
                Ok(e) if e.selected(&filter, since, until) => list.push(e),
                Ok(_) => {}
                Err(e) => {
                    errors += 1;
                    bar.suspend(|| eprintln!("termtrail: {}: {e}", path.name()));
                }
            }
        }
        bar.update((i * 64 + slice.len()).min(files.len()), files.len());
    }
    drop(bar);
    sort(&mut list);
    let mut out = io::stdout().lock();
    if a.json {
        for e in &list {
            writeln!(out, "{}", e.to_json())?;
        }
    } else if !list.is_empty() {
        print_table(&mut out, &list)?;
    }
    out.flush()?;
    let tampered = list
        .iter()
        .any(|e| matches!(e.state, State::Tampered(_)) || e.signed == Some(false));
    Ok(if errors > 0 {
        2
    } else if tampered {
        1
    } else {
        0
    })
}

fn grep(a: GrepArgs) -> Result<u8> {
    use termtrail_format::pipeline::Flow;
    use termtrail_player::grep::{Pattern, PatternOptions, SearchOptions, search_all};
    use termtrail_player::hits::{Mode, PrintOptions, Totals, print_result, summary_json};

    let started = std::time::Instant::now();
    let mut a = a;
    let patterns = if a.regexp.is_empty() {
        a.pattern.iter().cloned().collect()
    } else {
        // With -e, the first positional argument is a path.
        if let Some(p) = a.pattern.take() {
            a.paths.insert(0, PathBuf::from(p));
        }
        a.regexp.clone()
    };
    let pattern = Pattern::new(
        &patterns,
        PatternOptions {
            ignore_case: a.ignore_case,
            word: a.word_regexp,
            fixed: a.fixed_strings,
        },
    )
    .map_err(anyhow::Error::msg)?;
    let (filter, since, until) = filters(a.filter)?;
    let mode = if a.quiet {
        Mode::Quiet
    } else if a.files_with_matches {
        Mode::Files
    } else if a.count {
        Mode::Count
    } else if a.json {
        Mode::Json
    } else {
        Mode::Lines
    };
    let (files, missing) = targets(&a.paths, since)?;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let jobs = a.threads.unwrap_or(cpus).max(1);
    let opts = SearchOptions {
        input: a.input,
        max_count: a.max_count,
        screen: matches!(mode, Mode::Lines | Mode::Json),
        context: a.context,
        since,
        until,
        filter,
        // Few files: let each decode on several threads.
        threads: (cpus / files.len().clamp(1, cpus)).clamp(1, 4),
        cache: termtrail_player::seek::cache_dir(),
        content: if a.hash_every_chunk {
            ContentCheck::EveryChunk
        } else {
            ContentCheck::SealedFrames
        },
    };
    let color = match a.color {
        ColorWhen::Always => true,
        ColorWhen::Never => false,
        ColorWhen::Auto => io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let print = PrintOptions {
        mode,
        color,
        context: a.context,
    };
    let mut totals = Totals::default();
    for (p, e) in &missing {
        eprintln!("termtrail: {p}: {e}");
        totals.errors += 1;
    }
    let mut bar = Progress::new("searching");
    let mut failure: Option<io::Error> = None;
    let mut done = 0usize;
    let stdout = io::stdout();
    search_all(&files, &pattern, &opts, jobs, &mut |path, result| {
        done += 1;
        let mut out = stdout.lock();
        let written = bar.suspend(|| {
            print_result(
                &mut out,
                &mut io::stderr(),
                path,
                &result,
                &pattern,
                &print,
                &mut totals,
            )
            .and_then(|()| out.flush())
        });
        bar.update(done, files.len());
        if let Err(e) = written {
            failure = Some(e);
            return Flow::Stop;
        }
        // -q: the first hit decides.
        if mode == Mode::Quiet && totals.hits > 0 {
            Flow::Stop
        } else {
            Flow::Continue
        }
    });
    drop(bar);
    if let Some(e) = failure {
        return Err(e.into());
    }
    if mode == Mode::Json {
        let mut out = stdout.lock();
        writeln!(
            out,
            "{}",
            summary_json(&totals, started.elapsed().as_millis())
        )?;
        out.flush()?;
    }
    Ok(
        if totals.errors > 0 && !(mode == Mode::Quiet && totals.hits > 0) {
            2
        } else if totals.hits > 0 {
            0
        } else {
            1
        },
    )
}

fn play(a: PlayArgs) -> Result<u8> {
    use std::sync::mpsc;
    use termtrail_player::play::{Input, Outcome, PlayOptions, control};
    use termtrail_player::seek::{cache_dir, parse_time};
    use termtrail_recorder::tty;

    let start = parse_time(&a.start).map_err(anyhow::Error::msg)?;
    if !io::stdout().is_terminal() {
        bail!(
            "play needs a terminal on stdout; for a screen use `termtrail snapshot {} --at T`, for a file `termtrail export`",
            a.file.display()
        );
    }
    let cache = if a.no_cache { None } else { cache_dir() };
    let mut bar = Progress::new("building keyframes");
    let (seeker, _fetched) = open_seeker(&a.file, cache.as_deref(), &mut |done, total| {
        bar.update(done, total)
    })?;
    let seeker = seeker.with_context(|| a.file.display().to_string())?;
    drop(bar);
    let idle = a
        .idle_time_limit
        .or(seeker.header().idle_time_limit)
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| (s * 1e6) as u64);

    let (tx, rx) = mpsc::channel();
    let raw = tty::RawMode::enter().context("putting the terminal into raw mode")?;
    if raw.is_some() {
        let keys = tx.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 64];
            let mut stdin = io::stdin().lock();
            while let Ok(n @ 1..) = stdin.read(&mut buf) {
                if keys.send(Input::Bytes(buf[..n].to_vec())).is_err() {
                    break;
                }
            }
        });
    }
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGWINCH};
        let mut signals = signal_hook::iterator::Signals::new([SIGWINCH, SIGTERM, SIGINT, SIGHUP])
            .context("installing signal handlers")?;
        let tx = tx.clone();
        std::thread::spawn(move || {
            for sig in signals.forever() {
                let msg = match sig {
                    SIGWINCH => match tty::terminal_size() {
                        Some(size) => Input::Resize(size),
                        None => continue,
                    },
                    _ => Input::Quit,
                };
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
    }
    let opts = PlayOptions {
        speed: a.speed,
        idle_time_limit: idle,
        start,
        exit_at_end: raw.is_none(),
    };
    let size =
        tty::terminal_size().unwrap_or(termtrail_format::event::TermSize { cols: 80, rows: 24 });
    let outcome = {
        // Leaves the alternate screen on every path, unwinding included.
        struct Screen;
        impl Drop for Screen {
            fn drop(&mut self) {
                let mut out = io::stdout();
                let _ = out.write_all(control::LEAVE.as_bytes());
                let _ = out.flush();
            }
        }
        let _screen = Screen;
        termtrail_player::play::play(&seeker, &opts, size, &rx, &mut io::stdout().lock())
    };
    drop(raw);
    match outcome? {
        Outcome::Quit | Outcome::End => Ok(0),
        Outcome::Damaged(problem) => {
            eprintln!(
                "termtrail: {}: playback stopped: {problem}",
                a.file.display()
            );
            Ok(1)
        }
    }
}

/// A progress bar on stderr, shown only on a terminal and only when the
/// work takes longer than a moment.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    label: &'static str,
    start: std::time::Instant,
}

impl Progress {
    fn new(label: &'static str) -> Progress {
        Progress {
            bar: None,
            label,
            start: std::time::Instant::now(),
        }
    }

    fn update(&mut self, done: usize, total: usize) {
        if self.bar.is_none() {
            if self.start.elapsed() < std::time::Duration::from_millis(300)
                || !io::stderr().is_terminal()
            {
                return;
            }
            let bar = indicatif::ProgressBar::new(total as u64);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} {eta}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message(self.label);
            self.bar = Some(bar);
        }
        if let Some(b) = &self.bar {
            b.set_position(done as u64);
        }
    }
}

impl Progress {
    /// Runs `f` with the bar (if shown) out of the way of other output.
    fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

fn store_root(store: Option<PathBuf>) -> Result<LocalStore> {
    match store.or_else(LocalStore::default_root) {
        Some(root) => Ok(LocalStore::new(root)),
        None => {
            bail!("no store directory: set HOME or XDG_DATA_HOME, or pass --store DIR or -o FILE")
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn rec(a: RecArgs) -> Result<u8> {
    use termtrail_format::store::Location;
    use termtrail_recorder::rec::{MARKER_KEY, RecOptions, record};
    use termtrail_recorder::store::Destination;
    let writer = WriterOptions::default().chunk_age(Duration::from_millis(a.chunk_ms));
    // Signs the seal, and the seals of spools a killed recorder left.
    let key = secret_key(a.sign_key.as_deref())?;
    let (dest, new) = match &a.output {
        Some(_) => (None, None),
        None => {
            let location = match a.store {
                Some(l) => l,
                None => Location::Local(store_root(None)?.root().to_path_buf()),
            };
            let dest = Destination::open(
                &location,
                a.upload_interval,
                a.strict,
                protection(&a.protect)?,
                key.clone(),
            )
            .map_err(anyhow::Error::msg)?;
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "localhost".into());
            let shell = format!("{}-{}", std::process::id(), unix_now());
            let new = dest
                .create(&KeyParts {
                    source: "local",
                    session: &host,
                    shell: &shell,
                    start: unix_now(),
                })
                .context("cannot create the recording in the store")?;
            (Some(dest), Some(new))
        }
    };
    let path = match (&a.output, &new) {
        (Some(p), _) => p.clone(),
        (None, Some(n)) => n.path.clone(),
        (None, None) => unreachable!("one of them is set above"),
    };
    let shown = match (&dest, &new) {
        (Some(d), Some(n)) => d.describe(n),
        _ => path.display().to_string(),
    };
    let opts = RecOptions {
        command: a.command,
        headless: a.headless,
        size: a.size,
        input: a.input,
        title: a.title,
        sign_key: key,
        marker_key: (!a.no_marker_key).then_some(MARKER_KEY),
        writer,
        overwrite: a.overwrite,
        echo_output: true,
        after: new.as_ref().and_then(|n| n.after.clone()),
    };
    if !a.quiet {
        eprintln!(
            "::: termtrail recording to {shown}{}",
            if a.headless {
                ""
            } else {
                " (Ctrl+\\ adds a marker; exit the shell to stop)"
            }
        );
    }
    let result = record(&opts, &path);
    let code = match &result {
        Ok(outcome) => {
            if !a.quiet {
                eprintln!(
                    "::: recording sealed ({}): {shown} ({} events, {:.1} s)",
                    outcome.end,
                    outcome.summary.events,
                    outcome.summary.duration as f64 / 1e6
                );
            }
            u8::try_from(outcome.exit_code & 0xff).unwrap_or(255)
        }
        Err(e) => {
            eprintln!("termtrail: {e}");
            125
        }
    };
    if let (Some(dest), Some(new)) = (dest, new) {
        dest.finished(&new, result.as_ref().ok().map(|o| &o.summary));
        if dest.is_s3() {
            if !a.quiet {
                eprintln!("::: uploading to {shown}");
            }
            let status = dest.flush(a.upload_wait);
            if !status.pending.is_empty() {
                let why = status
                    .errors
                    .values()
                    .next()
                    .cloned()
                    .unwrap_or_else(|| "S3 did not answer in time".into());
                eprintln!(
                    "termtrail: the recording is not in S3 yet: {why}; it is kept in the spool ({}) and uploaded by the next termtrail run with this store (or `termtrail upload --store URL`)",
                    path.display()
                );
                return Ok(2);
            }
        }
    }
    Ok(code)
}

fn verify(a: VerifyArgs) -> Result<u8> {
    use termtrail_player::verify::{Verdict, verify_named};
    let key = a
        .key
        .as_deref()
        .map(termtrail_format::sign::PublicKey::load)
        .transpose()?;
    let mut verdicts = Vec::new();
    let stdout = io::stdout();
    if a.since.is_some() && a.store.is_none() {
        bail!(
            "--since works with --store (it narrows a store's check); to verify files, name them"
        );
    }
    if let Some(location) = &a.store {
        let since = a
            .since
            .as_deref()
            .map(|w| termtrail_player::select::parse_when(w, unix_now() as i64))
            .transpose()
            .map_err(anyhow::Error::msg)?
            // Whole days: keys are dated by day.
            .map(|s| s.max(0) as u64 / 86_400 * 86_400);
        return verify_store(location, since, key.as_ref(), a.json);
    }
    for file in &a.files {
        if !termtrail_player::remote::is_s3(file) {
            let (verdict, line) =
                verify_named(file, &file.display().to_string(), key.as_ref(), a.json);
            writeln!(stdout.lock(), "{line}")?;
            verdicts.push(verdict);
            continue;
        }
        // Every recording under an S3 prefix, each fetched and verified.
        let url = file.to_string_lossy();
        let found = termtrail_player::remote::list_url(&url).map_err(anyhow::Error::msg)?;
        if found.is_empty() {
            bail!("no recordings under {url}");
        }
        verdicts.extend(verify_targets(
            &found,
            key.as_ref(),
            a.json,
            &mut stdout.lock(),
        )?);
    }
    Ok(Verdict::worst(verdicts).exit_code() as u8)
}

/// Verifies recordings in order, printing a line for each. S3 objects are
/// fetched one or two ahead of the one being verified, so downloading and
/// verifying overlap.
fn verify_targets(
    targets: &[termtrail_player::remote::Target],
    key: Option<&termtrail_format::sign::PublicKey>,
    json: bool,
    out: &mut dyn Write,
) -> Result<Vec<termtrail_player::verify::Verdict>> {
    use termtrail_player::verify::{Verdict, verify_named};
    // One fetcher, two ahead: lines come out in order.
    termtrail_player::remote::fetch_ahead(targets, 1, 2, |ready| {
        let mut verdicts = Vec::new();
        while let Some((i, local)) = ready.lock().ok().and_then(|r| r.recv().ok()) {
            let name = targets[i].name();
            // A fetched copy is deleted when `_copy` goes, after verifying.
            let (verdict, line) = match local {
                Ok((path, _copy)) => verify_named(&path, &name, key, json),
                Err(e) => (Verdict::Error, format!("{name}: error: {e}")),
            };
            writeln!(out, "{line}")?;
            verdicts.push(verdict);
        }
        Ok(verdicts)
    })
}

/// `verify --store`: every recording, then the journals.
fn verify_store(
    location: &termtrail_format::store::Location,
    since: Option<u64>,
    key: Option<&termtrail_format::sign::PublicKey>,
    json: bool,
) -> Result<u8> {
    use termtrail_player::remote::StoreView;
    use termtrail_player::verify::Verdict;
    let view = StoreView::open(location).map_err(anyhow::Error::msg)?;
    let recordings = view.recordings(since).map_err(anyhow::Error::msg)?;
    let mut out = io::stdout().lock();
    let targets: Vec<_> = recordings.iter().map(|rel| view.target(rel)).collect();
    let verdicts = verify_targets(&targets, key, json, &mut out)?;
    let journal = view.journal(since).map_err(anyhow::Error::msg)?;
    // The seals the check will ask for, read all at once.
    let wanted: Vec<String> = journal
        .entries
        .iter()
        .flatten()
        .filter(|e| e.in_range(since))
        .map(|e| e.key.clone())
        .collect();
    let mut seals = view.seals_of(&wanted);
    let report = termtrail_format::journal::check(journal, since, &recordings, &mut |k| {
        seals.remove(k).unwrap_or_else(|| view.seal_of(k))
    });
    let scope = since.map_or(String::new(), |s| {
        let (y, m, d, ..) = termtrail_format::store::civil(s);
        format!(" since {y:04}-{m:02}-{d:02}")
    });
    let mut code = Verdict::worst(verdicts).exit_code() as u8;
    if !report.problems.is_empty() {
        code = code.max(1);
    }
    if json {
        let v = serde_json::json!({
            "journal": {
                "since": since,
                "recorders": report.recorders,
                "journaled": report.journaled,
                "unjournaled": report.unjournaled.len(),
                "problems": report.problems,
                "verdict": if report.problems.is_empty() { "intact" } else { "tampered" },
            }
        });
        writeln!(out, "{v}")?;
    } else {
        let recorders = report.recorders.len();
        if report.problems.is_empty() {
            writeln!(
                out,
                "journal: intact — {} recordings{scope} accounted for by {recorders} recorder journal(s); {} recordings not journaled",
                report.journaled,
                report.unjournaled.len()
            )?;
        } else {
            writeln!(
                out,
                "journal: TAMPERED — {} problem(s) across {recorders} recorder journal(s):",
                report.problems.len()
            )?;
            for p in &report.problems {
                writeln!(out, "  {p}")?;
            }
        }
    }
    Ok(code)
}

fn export(a: ExportArgs) -> Result<u8> {
    use termtrail_player::export::{ExportError, ExportFormat, ExportOptions, export_path};
    let format = a.format.unwrap_or_else(|| match &a.output {
        Some(p) if p.extension().is_some_and(|e| e == "txt") => Format::Txt,
        Some(p) if p.extension().is_some_and(|e| e == "html" || e == "htm") => Format::Html,
        _ => Format::CastV3,
    });
    let opts = ExportOptions {
        format: match format {
            Format::CastV3 => ExportFormat::CastV3,
            Format::CastV2 => ExportFormat::CastV2,
            Format::Txt => ExportFormat::Txt,
            Format::Html => ExportFormat::Html,
        },
        force: a.force,
    };
    let (file, _fetched) = fetch_if_remote(&a.file)?;
    let result = match &a.output {
        Some(out) => {
            // Write beside the target and rename, so a refused or failed
            // export never leaves a partial file under the real name.
            let tmp = partial_path(out);
            let mut f = io::BufWriter::new(
                std::fs::File::create(&tmp)
                    .with_context(|| format!("cannot create {}", tmp.display()))?,
            );
            let r = export_path(&file, &mut f, &opts);
            let flushed = f.flush();
            match (&r, flushed) {
                (Ok(_), Ok(())) => std::fs::rename(&tmp, out)
                    .with_context(|| format!("cannot write {}", out.display()))?,
                (_, Err(e)) => {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e).with_context(|| format!("cannot write {}", out.display()));
                }
                _ => {
                    let _ = std::fs::remove_file(&tmp);
                }
            }
            r
        }
        None => {
            let stdout = io::stdout();
            let mut lock = io::BufWriter::new(stdout.lock());
            let r = export_path(&file, &mut lock, &opts);
            lock.flush()?;
            r
        }
    };
    match result {
        Ok(outcome) => {
            if let Some(report) = &outcome.report {
                use termtrail_format::reader::Status;
                match report.status {
                    Status::Unsealed => eprintln!(
                        "termtrail: note: {} is unsealed; exported the verified part (up to {})",
                        a.file.display(),
                        termtrail_format::event::format_clock(report.last_verified)
                    ),
                    Status::Tampered => {
                        eprintln!(
                            "termtrail: warning: {} is TAMPERED; the export is marked where verification stops",
                            a.file.display()
                        );
                        return Ok(1);
                    }
                    Status::Intact => {}
                }
            }
            Ok(0)
        }
        Err(ExportError::Tampered(_)) => {
            eprintln!("termtrail: {}: {}", a.file.display(), result.unwrap_err());
            Ok(1)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot export {}", a.file.display()))),
    }
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

fn import(a: ImportArgs) -> Result<u8> {
    let key = secret_key(a.sign_key.as_deref())?;
    let input = std::fs::File::open(&a.file)
        .with_context(|| format!("cannot open {}", a.file.display()))?;
    let out_path = match (a.output, a.store) {
        (Some(p), _) => p,
        (None, Some(store)) => {
            let stem = a
                .file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("imported")
                .to_string();
            LocalStore::new(store).create_path(&KeyParts {
                source: "import",
                session: &stem,
                shell: "0",
                start: unix_now(),
            })?
        }
        (None, None) => {
            let mut p = a.file.clone().into_os_string();
            p.push(".zst");
            PathBuf::from(p)
        }
    };
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&out_path)
        .with_context(|| format!("cannot create {}", out_path.display()))?;
    match termtrail_format::import::import(BufReader::new(input), out, key) {
        Ok(summary) => {
            eprintln!(
                "::: sealed {} → {} ({} events, {} chunks)",
                a.file.display(),
                out_path.display(),
                summary.events,
                summary.chunks
            );
            Ok(0)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&out_path);
            Err(anyhow::Error::new(e).context(format!("cannot import {}", a.file.display())))
        }
    }
}

fn keygen(a: KeygenArgs) -> Result<u8> {
    let key = termtrail_format::sign::SecretKey::generate()?;
    let public = key.save(&a.file)?;
    eprintln!(
        "::: secret key {} (keep it private), public key {} (id {})",
        a.file.display(),
        public.display(),
        key.public().id()
    );
    Ok(0)
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("TERMTRAIL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .try_init();
}

/// What `serve` and `proxy` share: flags about the listener and the host.
/// Runs `serve` or `proxy` (`what`) on `listen` with `backend` until
/// SIGTERM or SIGINT.
fn run_host(
    what: &'static str,
    listen: &str,
    max_shells: u16,
    h: cli::HostFlags,
    backend: termtrail_recorder::serve::Backend,
) -> Result<u8> {
    use termtrail_recorder::serve::run;
    init_logging();
    if !h.no_auth {
        bail!(
            "no authentication is configured: pass --no-auth to run without it (allowed only on a loopback address such as 127.0.0.1)"
        );
    }
    let location = match h.store {
        Some(l) => l,
        None => termtrail_format::store::Location::Local(store_root(None)?.root().to_path_buf()),
    };
    let dest = std::sync::Arc::new(
        termtrail_recorder::store::Destination::open(
            &location,
            h.upload_interval,
            h.strict,
            protection(&h.protect)?,
            None, // serve and proxy do not sign
        )
        .map_err(anyhow::Error::msg)?,
    );
    let where_to = dest.describe_store();
    let opts = termtrail_recorder::serve::ServeOptions {
        destination: dest.clone(),
        max_shells: usize::from(max_shells),
        idle_timeout: h.idle_timeout,
        grace: h.grace,
        backend,
        principal: principal(),
        // Idle shells close their segment and free its compressor.
        writer: WriterOptions::default().segment_idle(Some(Duration::from_secs(10))),
        shutdown_deadline: Duration::from_secs(10),
        strict: h.strict,
    };
    let acceptor = match h.tls_cert.zip(h.tls_key) {
        Some((cert, key)) => {
            Some(termtrail_recorder::tls::acceptor(&cert, &key).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() {
            bail!("--no-auth is allowed only on a loopback address, not {addr}; authentication for other addresses is not implemented yet");
        }
        eprintln!("!!! termtrail {what}: NO AUTHENTICATION — anyone who can reach {addr} gets a shell");
        let scheme = if acceptor.is_some() { "wss" } else { "ws" };
        eprintln!(
            "::: listening on {scheme}://{addr}/runtimes/<arn>/ws/shells (recordings in {where_to})"
        );
        let shutdown = async {
            use tokio::signal::unix::{SignalKind, signal};
            match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
                }
                _ => std::future::pending::<()>().await,
            }
        };
        match acceptor {
            Some(acceptor) => {
                let tls = termtrail_recorder::tls::TlsListener::new(listener, acceptor)?;
                run(tls, opts, shutdown).await?
            }
            None => run(listener, opts, shutdown).await?,
        }
        anyhow::Ok(())
    })?;
    // Recordings are sealed; give their uploads a moment (what is left stays
    // in the spool for the next start or `termtrail upload`).
    let status = dest.flush(Duration::from_secs(30));
    Ok(report_pending(&status))
}

fn principal() -> String {
    std::env::var("USER").unwrap_or_else(|_| "anonymous".into())
}

fn serve(a: ServeArgs) -> Result<u8> {
    let backend = termtrail_recorder::serve::Backend::Local { command: a.command };
    run_host("serve", &a.listen, a.max_shells, a.host, backend)
}

fn proxy(a: ProxyArgs) -> Result<u8> {
    use termtrail_recorder::proxy::{Upstream, UpstreamProtocol};
    use termtrail_recorder::serve::Backend;
    if !(a.upstream.starts_with("ws://") || a.upstream.starts_with("wss://")) {
        bail!(
            "--upstream must be a ws:// or wss:// URL, got {:?}",
            a.upstream
        );
    }
    let tls = client_tls(&a.upstream, a.ca_cert.as_deref())?;
    let aws_host = a
        .upstream
        .split("://")
        .nth(1)
        .and_then(|r| r.split(['/', ':']).next())
        .is_some_and(|h| h.ends_with(".amazonaws.com"));
    let sign = match a.upstream_auth {
        cli::UpstreamAuth::Sigv4 => true,
        cli::UpstreamAuth::Auto => aws_host,
        cli::UpstreamAuth::None => false,
    };
    let signer = if sign {
        let region = a
            .region
            .clone()
            .or_else(|| termtrail_recorder::sigv4::region_of_arn(&a.runtime).map(str::to_string))
            .context("SigV4 needs a region: pass --region, or --runtime with a full runtime ARN")?;
        Some(termtrail_recorder::sigv4::Signer::from_chain(&region).map_err(anyhow::Error::msg)?)
    } else {
        None
    };
    let upstream = match a.upstream_protocol {
        cli::UpstreamProtocol::Agentcore => Upstream {
            protocol: UpstreamProtocol::AgentCore,
            url: termtrail_recorder::client::endpoint_for(&a.upstream, &a.runtime),
            tls,
            signer,
        },
        cli::UpstreamProtocol::Terminado => Upstream {
            protocol: UpstreamProtocol::Terminado,
            url: a.upstream.clone(),
            tls,
            signer: None,
        },
    };
    run_host(
        "proxy",
        &a.listen,
        a.max_shells,
        a.host,
        Backend::Proxy(upstream),
    )
}

fn random_id() -> Result<String> {
    let id = termtrail_format::writer::new_recording_id().map_err(anyhow::Error::msg)?;
    let h = hex::encode(id);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

fn attach(a: AttachArgs) -> Result<u8> {
    use termtrail_recorder::client::{
        AttachOptions, AttachOutcome, DETACH_KEY, attach, endpoint_for,
    };
    let session = match a.session {
        Some(s) => s,
        None => random_id()?,
    };
    let shell = match a.shell {
        Some(s) => s,
        None => random_id()?.replace('-', ""),
    };
    let tls = client_tls(&a.url, a.ca_cert.as_deref())?;
    let opts = AttachOptions {
        tls,
        endpoint: endpoint_for(&a.url, &a.runtime),
        session: session.clone(),
        shell: shell.clone(),
        detach_key: Some(DETACH_KEY),
        max_retries: a.retries,
        base_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(15),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(attach(&opts));
    // The stdin thread may still be blocked reading; do not wait for it.
    runtime.shutdown_background();
    match outcome {
        Ok(AttachOutcome::Exited(code)) => Ok(u8::try_from(code & 0xff).unwrap_or(255)),
        Ok(AttachOutcome::Detached) => {
            eprintln!(
                "\r\n::: detached; the shell keeps running. Re-attach with:\r\n    termtrail attach {} --session {session} --shell {shell}",
                a.url
            );
            Ok(0)
        }
        Ok(AttachOutcome::TakenOver) => {
            eprintln!(
                "\r\n::: another client took this shell over (session {session}, shell {shell})"
            );
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}

fn exec(a: ExecArgs) -> Result<u8> {
    use termtrail_recorder::exec::{ExecRequest, authority, exec};
    let (auth, uses_tls) = authority(&a.url)?;
    let tls = if uses_tls {
        client_tls("wss://", a.ca_cert.as_deref())?
    } else {
        None
    };
    let session = match a.session {
        Some(s) => s,
        None => random_id()?,
    };
    let arn: String = termtrail_recorder::client::endpoint_for("ws://h", &a.runtime)
        .trim_start_matches("ws://h/runtimes/")
        .trim_end_matches("/ws/shells")
        .to_string();
    let command = a.command.join(" ");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async {
        let (mut out, mut err) = (io::stdout(), io::stderr());
        let req = ExecRequest {
            authority: &auth,
            arn_path: &arn,
            session: &session,
            command: &command,
            timeout_secs: a.timeout,
            tls: tls.as_ref(),
        };
        exec(&req, &mut out, &mut err).await
    })?;
    if outcome.timed_out {
        eprintln!(
            "termtrail: the host stopped the command after {} s",
            a.timeout
        );
    }
    Ok(u8::try_from(outcome.exit_code & 0xff).unwrap_or(255))
}

/// The TLS client configuration for a `wss://` URL (None for `ws://`).
fn client_tls(
    url: &str,
    ca: Option<&Path>,
) -> Result<Option<std::sync::Arc<tokio_rustls::rustls::ClientConfig>>> {
    if !(url.starts_with("wss://") || url.starts_with("https://")) {
        if ca.is_some() {
            eprintln!("termtrail: note: --ca-cert is ignored for a plain ws:// URL");
        }
        return Ok(None);
    }
    termtrail_recorder::tls::client_config(ca)
        .map(Some)
        .map_err(anyhow::Error::msg)
}
