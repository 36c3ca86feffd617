//! `termtrail policy check` and `validate` through the real binary: the
//! example policies of docs/policy/ validate against the shipped schema,
//! every decision table in docs/policy.md holds, a decision matrix over the
//! team example (principals × groups × environments × actions × with and
//! without break-glass), and malformed policy, schema and environments
//! files exit 2 naming file and line.

use std::path::{Path, PathBuf};

use crate::util::*;

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")
}

fn example(name: &str) -> String {
    docs()
        .join("policy")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn schema() -> String {
    example("termtrail.cedarschema")
}

/// One `policy check` question; blank fields are not given.
#[derive(Debug, Default, Clone)]
struct Ask<'a> {
    principal: &'a str,
    groups: &'a str,
    environment: &'a str,
    action: &'a str,
    break_glass: &'a str,
    source_ip: &'a str,
    time: &'a str,
}

impl Ask<'_> {
    /// `policy check` over `policy` (with the schema) for this question.
    fn run(&self, d: &Dir, policy: &str, extra: &[&str]) -> Run {
        let schema = schema();
        let mut args = vec![
            "policy",
            "check",
            "--policy",
            policy,
            "--policy-schema",
            &schema,
            "--principal",
            self.principal,
            "--action",
            self.action,
            "--environment",
            self.environment,
        ];
        for g in self
            .groups
            .split(',')
            .map(str::trim)
            .filter(|g| !g.is_empty())
        {
            args.extend(["--group", g]);
        }
        for (flag, value) in [
            ("--break-glass", self.break_glass),
            ("--source-ip", self.source_ip),
            ("--time", self.time),
        ] {
            if !value.is_empty() {
                args.extend([flag, value]);
            }
        }
        args.extend(extra);
        d.run(&args)
    }
}

#[test]
fn every_example_policy_validates_against_the_schema() {
    let d = Dir::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(docs().join("policy"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cedar"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "examples: {files:?}");
    for file in &files {
        let f = file.to_string_lossy();
        let r = d.run(&[
            "policy",
            "validate",
            "--policy",
            &f,
            "--policy-schema",
            &schema(),
        ]);
        assert_eq!(r.code, 0, "{f}: {r:?}");
        assert!(r.stderr.is_empty(), "{f}: warnings: {r:?}");
        assert!(r.stdout.contains("valid against"), "{f}: {r:?}");
    }
}

/// The decision tables of docs/policy.md: (policy file, row) for every row
/// of a table whose header starts `| principal |`, the file being the last
/// `(policy/NAME.cedar)` link above it.
fn doc_tables() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(docs().join("policy.md")).unwrap();
    let mut file: Option<String> = None;
    let mut in_table = false;
    let mut rows = Vec::new();
    for line in text.lines() {
        if let Some(start) = line.find("(policy/") {
            let rest = &line[start + 1..];
            if let Some(end) = rest.find(".cedar)") {
                file = Some(rest[..end + ".cedar".len()].to_string());
            }
        }
        if line.starts_with("| principal |") {
            in_table = true;
            continue;
        }
        if in_table && line.starts_with("| ---") {
            continue;
        }
        if in_table && line.starts_with('|') {
            let cells: Vec<String> = line
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect();
            let f = file.clone().expect("a table after a policy link");
            rows.push((f, cells));
        } else {
            in_table = false;
        }
    }
    rows
}

#[test]
fn the_decision_tables_in_the_docs_hold() {
    let d = Dir::new();
    let rows = doc_tables();
    assert!(rows.len() >= 30, "rows: {}", rows.len());
    let files: std::collections::BTreeSet<&str> = rows.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(files.len(), 5, "a table per example: {files:?}");
    for (file, cells) in &rows {
        assert_eq!(cells.len(), 8, "{file}: {cells:?}");
        let ask = Ask {
            principal: &cells[0],
            groups: &cells[1],
            environment: &cells[2],
            action: &cells[3],
            break_glass: &cells[4],
            source_ip: &cells[5],
            time: &cells[6],
        };
        let want = &cells[7];
        let r = ask.run(&d, &docs().join(file).to_string_lossy(), &[]);
        let want_code = if want.starts_with("allow") { 0 } else { 1 };
        assert_eq!(r.code, want_code, "{file} {ask:?}: {r:?}");
        assert_eq!(
            r.stdout.lines().next(),
            Some(want.as_str()),
            "{file} {ask:?}: {r:?}"
        );
        assert!(r.stderr.is_empty(), "{file} {ask:?}: {r:?}");
    }
}

/// The hint a denied request gets when break-glass would allow it.
const HINT: &str = "break-glass would allow it: retry with --break-glass REASON";

#[test]
fn team_decision_matrix() {
    let d = Dir::new();
    let team = example("team.cedar");
    const DEV_OPEN: &str = "allow: dev-open-to-developers";
    const NONE: &str = "deny: no policy permits it";
    const NEED_GLASS: &str = "deny: production-shells-need-break-glass";
    const GLASS: &str = "allow with break-glass: oncall-break-glass";
    const NO_TERMINATE: &str = "deny: nobody-terminates-production-without-break-glass";
    const OPS: &str = "allow: operators-run-commands";
    // (principal, groups, environment, action, break-glass, exit, stdout)
    #[rustfmt::skip]
    let table: &[(&str, &str, &str, &str, &str, i32, &str)] = &[
        // Developers: everything in dev, watch and list in staging, nothing in production.
        ("alice", "developers", "dev", "OpenShell", "", 0, DEV_OPEN),
        ("alice", "developers", "dev", "RunCommand", "", 0, DEV_OPEN),
        ("alice", "developers", "dev", "Terminate", "", 0, DEV_OPEN),
        ("alice", "developers", "dev", "ReadRecordings", "", 0, DEV_OPEN),
        ("alice", "developers", "dev", "OpenShell", "not needed", 0, DEV_OPEN),
        ("alice", "developers", "staging", "Watch", "", 0, "allow: developers-watch-staging"),
        ("alice", "developers", "staging", "ListShells", "", 0, "allow: developers-watch-staging"),
        ("alice", "developers", "staging", "OpenShell", "", 1, NONE),
        ("alice", "developers", "staging", "OpenShell", "INC-1", 1, NONE),
        ("alice", "developers", "production", "OpenShell", "", 1, NEED_GLASS),
        ("alice", "developers", "production", "OpenShell", "INC-1", 1, NEED_GLASS),
        ("alice", "developers", "production", "RunCommand", "", 1, NONE),
        // No group, or an unrelated one: nothing anywhere.
        ("mallory", "", "dev", "OpenShell", "", 1, NONE),
        ("mallory", "visitors", "dev", "ListShells", "", 1, NONE),
        ("mallory", "", "production", "OpenShell", "INC-1", 1, NEED_GLASS),
        // Groups are case-sensitive names.
        ("alice", "Developers", "dev", "OpenShell", "", 1, NONE),
        // On call: staging and production shells only through break-glass.
        ("carol", "oncall", "production", "OpenShell", "", 1, &format!("{NEED_GLASS}\n{HINT}")),
        ("carol", "oncall", "production", "OpenShell", "INC-4211", 0, GLASS),
        ("carol", "oncall", "production", "Watch", "INC-4211", 0, GLASS),
        ("carol", "oncall", "production", "Terminate", "", 1, &format!("{NO_TERMINATE}\n{HINT}")),
        ("carol", "oncall", "production", "Terminate", "INC-4211", 0, GLASS),
        ("carol", "oncall", "staging", "OpenShell", "", 1, &format!("{NONE}\n{HINT}")),
        ("carol", "oncall", "staging", "OpenShell", "INC-4211", 0, GLASS),
        ("carol", "oncall", "dev", "OpenShell", "INC-4211", 1, NONE),
        ("carol", "oncall", "production", "RunCommand", "INC-4211", 1, NONE),
        // Operators: commands where shells are not.
        ("olga", "operators", "production", "RunCommand", "", 0, OPS),
        ("olga", "operators", "staging", "RunCommand", "", 0, OPS),
        ("olga", "operators", "production", "ListShells", "", 0, OPS),
        ("olga", "operators", "production", "OpenShell", "", 1, NEED_GLASS),
        ("olga", "operators", "production", "OpenShell", "INC-1", 1, NEED_GLASS),
        ("olga", "operators", "staging", "OpenShell", "", 1, NONE),
        ("olga", "operators", "dev", "RunCommand", "", 1, NONE),
        // Several groups: every permit that matched is named.
        ("pat", "operators,developers", "staging", "Watch", "", 0,
            "allow: developers-watch-staging, operators-run-commands"),
        ("pat", "operators,oncall", "production", "OpenShell", "INC-9", 0, GLASS),
        ("pat", "operators,oncall", "production", "Watch", "", 0, OPS),
        // An environment no policy names.
        ("alice", "developers", "", "OpenShell", "", 1, NONE),
    ];
    for &(principal, groups, environment, action, break_glass, code, want) in table {
        let ask = Ask {
            principal,
            groups,
            environment,
            action,
            break_glass,
            ..Ask::default()
        };
        let r = ask.run(&d, &team, &[]);
        assert_eq!(r.code, code, "{ask:?}: {r:?}");
        assert_text(&r.stdout, &format!("{want}\n"));
    }
}

#[test]
fn json_verdicts() {
    let d = Dir::new();
    let team = example("team.cedar");
    let carol = Ask {
        principal: "carol",
        groups: "oncall",
        environment: "production",
        action: "OpenShell",
        ..Ask::default()
    };
    let r = carol.run(&d, &team, &["--json"]);
    assert_eq!(r.code, 1, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["environment"], "production");
    assert_eq!(v["needs_break_glass"], true);
    assert_eq!(
        v["policies"],
        serde_json::json!(["production-shells-need-break-glass"])
    );
    assert_eq!(v["errors"], serde_json::json!([]));
    let r = Ask {
        break_glass: "INC-1",
        ..carol
    }
    .run(&d, &team, &["--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["needs_break_glass"], true);
    assert_eq!(v["policies"], serde_json::json!(["oncall-break-glass"]));
    // docs/policy.md shows this very line.
    let docs_text = std::fs::read_to_string(docs().join("policy.md")).unwrap();
    let line = r.stdout.trim_end();
    assert!(
        docs_text.contains(&format!("\n{line}\n")),
        "not in the docs: {line}"
    );
}

#[test]
fn the_environment_can_come_from_an_environments_file() {
    let d = Dir::new();
    let team = example("team.cedar");
    let envs = example("environments.txt");
    let ask = |runtime: &str| {
        d.run(&[
            "policy",
            "check",
            "--policy",
            &team,
            "--principal",
            "olga",
            "--group",
            "operators",
            "--action",
            "RunCommand",
            "--environments",
            &envs,
            "--runtime",
            runtime,
            "--json",
        ])
    };
    for (runtime, environment, code) in [
        (
            "arn:aws:bedrock-agentcore:us-east-1:111111111111:runtime/shop",
            "production",
            0,
        ),
        (
            "arn:aws:bedrock-agentcore:eu-west-1:222222222222:runtime/shop-staging-2",
            "staging",
            0,
        ),
        (
            "arn:aws:bedrock-agentcore:eu-west-1:222222222222:runtime/shop",
            "dev",
            1,
        ),
        (
            "arn:aws:bedrock-agentcore:eu-west-1:333333333333:runtime/shop",
            "",
            1,
        ),
    ] {
        let r = ask(runtime);
        assert_eq!(r.code, code, "{runtime}: {r:?}");
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(v["environment"], environment, "{runtime}: {r:?}");
    }
}

#[test]
fn validate_lists_the_policy_ids() {
    let d = Dir::new();
    let r = d.run(&[
        "policy",
        "validate",
        "--policy",
        &example("production-break-glass.cedar"),
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(": 3 policies (no schema: parsed only)\n"),
        "{r:?}"
    );
    assert!(
        r.stdout.ends_with(
            "\n  admins-everywhere\n  oncall-break-glass\n  production-shells-need-break-glass\n"
        ),
        "{r:?}"
    );
}

/// Runs `policy check` for a developer in dev over `policy` with
/// `schema`; both are file names in `d`.
fn check_files(d: &Dir, policy: &str, schema: &str) -> Run {
    d.run(&[
        "policy",
        "check",
        "--policy",
        policy,
        "--policy-schema",
        schema,
        "--principal",
        "alice",
        "--action",
        "OpenShell",
        "--environment",
        "dev",
    ])
}

#[test]
fn malformed_files_exit_2_naming_file_and_line() {
    let d = Dir::new();
    let schema_text = std::fs::read_to_string(schema()).unwrap();
    std::fs::write(d.join("s.cedarschema"), &schema_text).unwrap();
    std::fs::write(
        d.join("ok.cedar"),
        "@id(\"ok\") permit (principal, action, resource);\n",
    )
    .unwrap();

    // A syntax error on line 3.
    std::fs::write(
        d.join("syntax.cedar"),
        "// a comment\npermit (principal, action, resource);\npermit (principal, action, resource) when { resource.environment == };\n",
    )
    .unwrap();
    let r = check_files(&d, "syntax.cedar", "s.cedarschema");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.starts_with("termtrail: syntax.cedar:3:"), "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");

    // Valid Cedar that the schema refuses: a misspelt attribute on line 4.
    std::fs::write(
        d.join("typo.cedar"),
        "@id(\"a\") permit (principal, action, resource);\n\n@id(\"b\") permit (principal, action, resource)\nwhen { resource.enviroment == \"dev\" };\n",
    )
    .unwrap();
    let r = check_files(&d, "typo.cedar", "s.cedarschema");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.starts_with("termtrail: typo.cedar:4:"), "{r:?}");
    assert!(r.stderr.contains("enviroment"), "{r:?}");
    // docs/policy.md shows this very message.
    let docs_text = std::fs::read_to_string(docs().join("policy.md")).unwrap();
    assert!(
        docs_text.contains(&r.stderr),
        "not in the docs: {}",
        r.stderr
    );

    // A schema with a syntax error on line 2.
    std::fs::write(
        d.join("bad.cedarschema"),
        "entity Group;\nentity User in [Group;\n",
    )
    .unwrap();
    let r = check_files(&d, "ok.cedar", "bad.cedarschema");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.starts_with("termtrail: bad.cedarschema:2:"),
        "{r:?}"
    );

    // A schema that lacks part of the model.
    std::fs::write(
        d.join("short.cedarschema"),
        schema_text.replace(", ReadRecordings", ""),
    )
    .unwrap();
    let r = check_files(&d, "ok.cedar", "short.cedarschema");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains("short.cedarschema: the schema does not describe"),
        "{r:?}"
    );
    assert!(r.stderr.contains("ReadRecordings"), "{r:?}");

    // The same with validate.
    let r = d.run(&[
        "policy",
        "validate",
        "--policy",
        "typo.cedar",
        "--policy-schema",
        "s.cedarschema",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.starts_with("termtrail: typo.cedar:4:"), "{r:?}");

    // Missing files.
    let r = check_files(&d, "nonexistent.cedar", "s.cedarschema");
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("nonexistent.cedar: "), "{r:?}");

    // An environments file with a bad line 3.
    std::fs::write(
        d.join("envs"),
        "# envs\narn:* production\narn:aws:* dev extra\n",
    )
    .unwrap();
    let r = d.run(&[
        "policy",
        "check",
        "--policy",
        "ok.cedar",
        "--principal",
        "alice",
        "--action",
        "OpenShell",
        "--environments",
        "envs",
        "--runtime",
        "arn:x",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.starts_with("termtrail: envs:3: "), "{r:?}");
}

#[test]
fn bad_flags_exit_2() {
    let d = Dir::new();
    let team = example("team.cedar");
    let base = [
        "policy",
        "check",
        "--policy",
        &team,
        "--principal",
        "alice",
        "--environment",
        "dev",
    ];
    let r = d.run(&[&base[..], &["--action", "Openshell"]].concat());
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("OpenShell"), "the valid actions: {r:?}");
    let r = d.run(
        &[
            &base[..],
            &["--action", "OpenShell", "--source-ip", "10.0.0"],
        ]
        .concat(),
    );
    assert_eq!(r.code, 2, "{r:?}");
    let r = d.run(&[&base[..], &["--action", "OpenShell", "--time", "tomorrow"]].concat());
    assert_eq!(r.code, 2, "{r:?}");
    // Neither --environment nor --environments.
    let r = d.run(&[
        "policy",
        "check",
        "--policy",
        &team,
        "--principal",
        "a",
        "--action",
        "Watch",
    ]);
    assert_eq!(r.code, 2, "{r:?}");
}
