//! The section headings of `--help`: one name per kind of flag, shared by
//! every subcommand, so the same flag sits under the same heading wherever it
//! appears and no heading is spelled two ways.
//!
//! clap keeps a flattened group's heading in force for the flags declared
//! after it; every flag that follows such a group therefore names its
//! heading (or [`GENERAL`], the plain "Options:" section) itself. The test
//! below walks the whole command tree and fails when a general flag lands
//! under a specialised heading, or when a heading is not one of these.

/// No heading: the plain "Options:" section (positional arguments:
/// "Arguments:").
pub const GENERAL: Option<&str> = None;
/// Where the result goes: `-o`, `--overwrite`, `export --format`, `man
/// --dir`, the `--store` a recorder or `import` writes into.
pub const OUTPUT: &str = "Output";
/// How a recording is made: input, size, title, marker key, chunking.
pub const RECORDING: &str = "Recording";
/// Which recordings a reading subcommand looks at.
pub const FILTERS: &str = "Filters";
/// The address a host listens on.
pub const LISTENING: &str = "Listening";
/// The host a proxy records in front of.
pub const UPSTREAM: &str = "Upstream";
/// Certificates: the listener's, and the CAs a client trusts.
pub const TLS: &str = "TLS";
/// Who a client is, and how a host checks it.
pub const AUTH: &str = "Authentication";
/// What authenticated clients may do (Cedar).
pub const ACCESS: &str = "Access policy";
/// Where a host keeps its recordings and audit log.
pub const STORAGE: &str = "Storage";
/// How long hosted shells live, and what they run.
pub const SESSIONS: &str = "Sessions";
/// Redaction of secrets in recorded output and input.
pub const SECRETS: &str = "Secrets";
/// Keys that sign seals or check signatures.
pub const SIGNING: &str = "Signing";
/// Bounds a host enforces on connections, shells and recordings.
pub const LIMITS: &str = "Limits";
/// What only an `s3://` store uses: uploads and bucket protection.
pub const S3: &str = "S3";

/// Every heading in use, in the order `--help` lists them: what a user
/// needs first (where the result goes, what is recorded or read, where a
/// host listens and who may connect), tuning after (limits), and S3, which
/// only an `s3://` store uses, last. The tests below hold every subcommand
/// to this order; a struct's field order is clap's, so a subcommand follows
/// it by declaring its flags in this order.
#[cfg_attr(not(test), allow(dead_code))]
pub const ALL: &[&str] = &[
    OUTPUT, RECORDING, FILTERS, LISTENING, UPSTREAM, TLS, AUTH, ACCESS, STORAGE, SESSIONS, SECRETS,
    SIGNING, LIMITS, S3,
];

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Flags that concern every run of a subcommand, whatever the store or
    /// transport: never under an S3 or TLS heading.
    const GENERAL_FLAGS: &[&str] = &[
        "output",
        "overwrite",
        "input",
        "headless",
        "size",
        "title",
        "sign_key",
        "no_marker_key",
        "quiet",
        "chunk_ms",
        "store",
        "idle_timeout",
        "grace",
        "no_auth",
        "listen",
        "max_shells",
        "threads",
        "json",
        "audit",
        "command",
        "redact",
    ];

    /// Every (subcommand path, flag id, heading) of the command line.
    fn placements() -> Vec<(String, String, Option<String>)> {
        fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<(String, String, Option<String>)>) {
            for a in cmd.get_arguments() {
                let heading = a.get_help_heading().map(str::to_string);
                out.push((path.to_string(), a.get_id().to_string(), heading));
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), out);
            }
        }
        let mut out = Vec::new();
        walk(&super::super::Cli::command(), "termtrail", &mut out);
        out
    }

    #[test]
    fn general_flags_are_not_under_s3_or_tls() {
        let misplaced: Vec<_> = placements()
            .into_iter()
            .filter(|(_, id, h)| {
                GENERAL_FLAGS.contains(&id.as_str())
                    && h.as_deref()
                        .is_some_and(|h| h.to_lowercase().starts_with("s3") || h.contains("TLS"))
            })
            .collect();
        assert!(
            misplaced.is_empty(),
            "general flags under S3/TLS: {misplaced:?}"
        );
    }

    /// Found by an independent check of issue 16: `rec --help` listed S3
    /// before Recording, and serve's Limits came before TLS and
    /// Authentication.
    #[test]
    fn headings_come_in_the_order_users_need_them() {
        fn walk(cmd: &mut clap::Command, path: &str, bad: &mut Vec<String>) {
            let help = cmd.render_long_help().to_string();
            let shown: Vec<&str> = help
                .lines()
                .filter_map(|l| l.strip_suffix(':'))
                .filter(|h| super::ALL.contains(h))
                .collect();
            let rank = |h: &str| super::ALL.iter().position(|a| *a == h);
            if !shown.windows(2).all(|w| rank(w[0]) < rank(w[1])) {
                bad.push(format!("{path}: {shown:?}"));
            }
            for sub in cmd.get_subcommands_mut() {
                let name = format!("{path} {}", sub.get_name());
                walk(sub, &name, bad);
            }
        }
        let mut cli = super::super::Cli::command();
        cli.build();
        let mut bad = Vec::new();
        walk(&mut cli, "termtrail", &mut bad);
        assert!(bad.is_empty(), "headings out of order: {bad:#?}");
        // What the check found, in the order it is now.
        let rec = cli.find_subcommand_mut("rec").unwrap().render_long_help();
        let rec = rec.to_string();
        let at = |h: &str| rec.find(&format!("\n{h}:\n")).unwrap();
        assert!(at("Output") < at("Recording") && at("Recording") < at("S3"));
    }

    /// Found by an independent check of issue 16: `-o` and `--overwrite`
    /// sat under "Options" in export, import, keygen and man; only rec
    /// had them under "Output".
    #[test]
    fn output_flags_are_under_output_everywhere() {
        let misplaced: Vec<_> = placements()
            .into_iter()
            .filter(|(_, id, h)| {
                ["output", "overwrite"].contains(&id.as_str())
                    && h.as_deref() != Some(super::OUTPUT)
            })
            .collect();
        assert!(misplaced.is_empty(), "not under Output: {misplaced:?}");
        let has = |sub: &str, id: &str| {
            placements().iter().any(|(p, i, h)| {
                p == &format!("termtrail {sub}") && i == id && h.as_deref() == Some(super::OUTPUT)
            })
        };
        for (sub, id) in [
            ("export", "output"),
            ("import", "output"),
            ("keygen", "overwrite"),
            ("man", "overwrite"),
            ("man", "dir"),
            ("rec", "output"),
        ] {
            assert!(has(sub, id), "{sub} {id}");
        }
    }

    #[test]
    fn positional_arguments_stay_under_arguments() {
        let cli = super::super::Cli::command();
        let mut bad = Vec::new();
        for sub in cli.get_subcommands() {
            for a in sub.get_positionals() {
                if let Some(h) = a.get_help_heading() {
                    bad.push(format!("{} {}: {h}", sub.get_name(), a.get_id()));
                }
            }
        }
        assert!(bad.is_empty(), "positionals under a flag heading: {bad:?}");
    }

    #[test]
    fn every_heading_is_one_of_the_shared_names() {
        // One spelling each: a heading outside the list (a typo, "Auth"
        // beside "Authentication", "S3 protection" beside "S3") fails.
        let unknown: Vec<_> = placements()
            .into_iter()
            .filter(|(_, _, h)| h.as_deref().is_some_and(|h| !super::ALL.contains(&h)))
            .collect();
        assert!(
            unknown.is_empty(),
            "headings not in headings::ALL: {unknown:?}"
        );
        // And the list itself has no two spellings of one name.
        let norm = |h: &str| -> String {
            h.chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
                .to_lowercase()
        };
        for (i, a) in super::ALL.iter().enumerate() {
            for b in &super::ALL[i + 1..] {
                let (a, b) = (norm(a), norm(b));
                assert!(!a.starts_with(&b) && !b.starts_with(&a), "{a} / {b}");
            }
        }
    }
}
