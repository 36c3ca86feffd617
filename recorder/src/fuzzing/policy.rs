//! The policy files' fuzz target.

use std::path::Path;

use termtrail_format::fuzzing::Scratch;

use crate::auth::{AuthMethod, Identity};
use crate::policy::{Action, Environments, EnvironmentsError, Policy, PolicyError, Problem};

/// Longest runtime name tried against an environments file (names come
/// from request URLs).
const MAX_RUNTIME: usize = 256;

/// The first byte picks the file: 0 an environments file, 1 a Cedar policy
/// file, 2 a policy file and a schema (the rest split at the first NUL:
/// policy, then schema), as `serve --policy`/`--policy-schema` and
/// `proxy --environments` load them.
///
/// Invariants: every place an error names is inside the file; an error
/// names its file; decisions on a loaded policy name only its policies; a
/// rule of an environments file with no `*` matches its own pattern.
pub fn policy(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match mode % 3 {
        0 => environments(text),
        1 => cedar(text, None),
        _ => {
            let (policy, schema) = text.split_once('\0').unwrap_or((text, ""));
            cedar(policy, Some(schema));
        }
    }
}

fn environments(text: &str) {
    let path = Path::new("environments.txt");
    match Environments::parse(path, text) {
        Ok(envs) => {
            let mut rules = 0;
            for line in text.lines() {
                let fields: Vec<&str> = line.split_whitespace().collect();
                if fields.len() != 2 || fields[0].starts_with('#') {
                    continue;
                }
                rules += 1;
                let runtime: String = fields[0].chars().take(MAX_RUNTIME).collect();
                if !fields[0].contains('*') && runtime.len() == fields[0].len() {
                    assert!(
                        envs.environment_of(&runtime).is_some(),
                        "{runtime:?} unmatched"
                    );
                }
                let _ = envs.environment_of(&runtime.replace('*', "x"));
            }
            assert_eq!(envs.len(), rules);
        }
        Err(EnvironmentsError::Syntax { path: p, line, .. }) => {
            assert_eq!(p, path);
            assert!(line >= 1 && line <= text.lines().count(), "line {line}");
        }
        Err(e) => panic!("parsing text gave {e:?}"),
    }
}

/// Whether `problems` place themselves inside `src`.
fn placed_inside(problems: &[Problem], src: &str) {
    let lines = src.split('\n').count();
    for p in problems {
        if let Some((line, col)) = p.at {
            assert!(
                line >= 1 && line <= lines,
                "line {line} of {lines}: {}",
                p.message
            );
            let width = src
                .split('\n')
                .nth(line - 1)
                .map_or(0, |l| l.chars().count());
            assert!(
                col >= 1 && col <= width + 1,
                "column {col} of {width}: {}",
                p.message
            );
        }
    }
}

fn cedar(policy_src: &str, schema_src: Option<&str>) {
    let Ok(policy_file) = Scratch::with("policy.cedar", policy_src.as_bytes()) else {
        return;
    };
    let schema_file = match schema_src.map(|s| Scratch::with("policy.cedarschema", s.as_bytes())) {
        Some(Ok(f)) => Some(f),
        Some(Err(_)) => return,
        None => None,
    };
    match Policy::load(policy_file.path(), schema_file.as_ref().map(Scratch::path)) {
        Ok(policy) => decide(&policy),
        Err(e) => {
            let shown = e.to_string();
            match &e {
                PolicyError::Syntax { path, problems }
                | PolicyError::Unsupported { path, problems }
                | PolicyError::Invalid { path, problems } => {
                    assert_eq!(path, policy_file.path());
                    placed_inside(problems, policy_src);
                }
                PolicyError::Schema { problems, .. } => {
                    placed_inside(problems, schema_src.unwrap_or_default())
                }
                PolicyError::Model { .. } => {}
                other => panic!("loading written files gave {other:?}"),
            }
            assert!(
                shown.contains("policy.cedar"),
                "the error names no file: {shown}"
            );
        }
    }
}

fn decide(policy: &Policy) {
    let people = [
        Identity {
            principal: "alice".into(),
            groups: vec!["ops".into()],
            method: AuthMethod::Jwt,
        },
        Identity {
            principal: "arn:aws:iam::111111111111:role/\"x\\y\u{0}".into(),
            groups: vec!["\u{202e}g".into(), String::new()],
            method: AuthMethod::Iam,
        },
    ];
    for who in &people {
        for action in Action::ALL {
            let mut request = crate::policy::Request::new(who, action, "arn:aws:x:runtime/r", 1);
            request.environment = Some("production");
            request.session = Some("s1");
            let d = policy.decide(&request);
            for id in &d.policies {
                assert!(policy.ids().contains(id), "decided by unknown policy {id}");
            }
            assert!(!d.allowed || !d.policies.is_empty(), "allowed by no policy");
            request.break_glass = Some("incident 1");
            let _ = policy.decide_for(&request);
        }
    }
}
