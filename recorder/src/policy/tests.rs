//! Unit tests of loading and deciding: Cedar's semantics as termtrail
//! uses them (deny by default, forbid beats permit, groups as parents,
//! break-glass only when asked), errors placed in their files, reloads.

use std::path::{Path, PathBuf};

use super::*;
use crate::auth::Identity;

/// The schema shipped in docs/policy/.
fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/policy/termtrail.cedarschema")
}

/// Writes `text` to `name` in `dir`.
fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn load(text: &str) -> Policy {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "p.cedar", text);
    Policy::load(&file, Some(&schema())).unwrap_or_else(|e| panic!("{e}"))
}

fn user(name: &str, groups: &[&str]) -> Identity {
    Identity {
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Identity::unauthenticated(name)
    }
}

fn ask<'a>(who: &'a Identity, action: Action, environment: &'a str) -> Request<'a> {
    Request {
        environment: Some(environment),
        ..Request::new(who, action, "runtime-1", 1_800_000_000)
    }
}

const DEV_AND_PROD: &str = r#"
@id("dev-open")
permit (principal in Group::"developers", action, resource)
when { resource.environment == "dev" };

@id("prod-oncall")
permit (principal in Group::"oncall", action == Action::"OpenShell", resource)
when { resource.environment == "production" && context has break_glass };

@id("prod-shells-need-break-glass")
forbid (principal, action == Action::"OpenShell", resource)
when { resource.environment == "production" }
unless { context has break_glass };
"#;

#[test]
fn nothing_is_allowed_by_default() {
    let p = load("");
    let alice = user("alice", &[]);
    let d = p.decide(&ask(&alice, Action::ListShells, "dev"));
    assert!(!d.allowed);
    assert!(d.policies.is_empty());
    let p = load(DEV_AND_PROD);
    let d = p.decide(&ask(&alice, Action::OpenShell, "dev"));
    assert!(!d.allowed, "alice is in no group: {d:?}");
    assert!(d.policies.is_empty());
}

#[test]
fn groups_are_the_principals_parents() {
    let p = load(DEV_AND_PROD);
    let bob = user("bob", &["staff", "developers"]);
    let d = p.decide(&ask(&bob, Action::Watch, "dev"));
    assert!(d.allowed);
    assert_eq!(d.policies, ["dev-open"]);
    assert!(d.errors.is_empty());
    assert!(!p.decide(&ask(&bob, Action::Watch, "staging")).allowed);
}

#[test]
fn forbid_beats_permit() {
    let p = load(
        r#"
@id("all") permit (principal, action, resource);
@id("no-terminate") forbid (principal, action == Action::"Terminate", resource);
"#,
    );
    let alice = user("alice", &[]);
    let d = p.decide(&ask(&alice, Action::Terminate, "dev"));
    assert!(!d.allowed);
    assert_eq!(d.policies, ["no-terminate"]);
    let d = p.decide(&ask(&alice, Action::Watch, "dev"));
    assert_eq!((d.allowed, d.policies), (true, vec!["all".to_string()]));
}

#[test]
fn break_glass_is_in_the_context_only_when_asked() {
    let p = load(
        r#"@id("glass") permit (principal, action, resource) when { context has break_glass && context.break_glass.reason != "" };"#,
    );
    let alice = user("alice", &[]);
    let mut r = ask(&alice, Action::OpenShell, "production");
    assert!(!p.decide(&r).allowed);
    r.break_glass = Some("INC-42");
    assert!(p.decide(&r).allowed);
    r.break_glass = Some("");
    assert!(!p.decide(&r).allowed);
}

#[test]
fn decide_for_tells_when_break_glass_matters() {
    let p = load(DEV_AND_PROD);
    let carol = user("carol", &["oncall"]);
    let dave = user("dave", &["developers"]);

    // Allowed without: break-glass not needed even when given.
    let mut r = ask(&dave, Action::OpenShell, "dev");
    r.break_glass = Some("just because");
    let v = p.decide_for(&r);
    assert!(v.decision.allowed && !v.needs_break_glass, "{v:?}");
    assert_eq!(v.decision.policies, ["dev-open"]);

    // Allowed only with it.
    let mut r = ask(&carol, Action::OpenShell, "production");
    r.break_glass = Some("INC-7");
    let v = p.decide_for(&r);
    assert!(v.decision.allowed && v.needs_break_glass, "{v:?}");
    assert_eq!(v.decision.policies, ["prod-oncall"]);

    // Not asked for, but would help: denied, with the plain decision.
    r.break_glass = None;
    let v = p.decide_for(&r);
    assert!(!v.decision.allowed && v.needs_break_glass, "{v:?}");
    assert_eq!(v.decision.policies, ["prod-shells-need-break-glass"]);

    // Would not help (not on call): denied either way.
    let mut r = ask(&dave, Action::OpenShell, "production");
    let v = p.decide_for(&r);
    assert!(!v.decision.allowed && !v.needs_break_glass, "{v:?}");
    r.break_glass = Some("please");
    let v = p.decide_for(&r);
    assert!(!v.decision.allowed && !v.needs_break_glass, "{v:?}");
    assert!(v.decision.policies.is_empty(), "{v:?}");
}

#[test]
fn source_ip_is_an_ipaddr() {
    let p = load(
        r#"@id("office") permit (principal, action, resource)
when { context has source_ip && context.source_ip.isInRange(ip("10.0.0.0/8")) };"#,
    );
    let alice = user("alice", &[]);
    let mut r = ask(&alice, Action::ListShells, "");
    assert!(!p.decide(&r).allowed, "no address: no match");
    r.source_ip = Some("10.1.2.3".parse().unwrap());
    assert!(p.decide(&r).allowed);
    r.source_ip = Some("192.168.1.1".parse().unwrap());
    assert!(!p.decide(&r).allowed);
    r.source_ip = Some("::1".parse().unwrap());
    assert!(!p.decide(&r).allowed);
}

#[test]
fn time_session_and_runtime_reach_the_policy() {
    let p = load(
        r#"@id("window") permit (principal, action, resource == Runtime::"runtime-1")
when { context.time < 1800000000 && resource.session == "s-1" };"#,
    );
    let alice = user("alice", &[]);
    let mut r = ask(&alice, Action::OpenShell, "dev");
    r.time = 1_799_999_999;
    assert!(!p.decide(&r).allowed, "no session");
    r.session = Some("s-1");
    assert!(p.decide(&r).allowed);
    r.time = 1_800_000_000;
    assert!(!p.decide(&r).allowed);
}

#[test]
fn unnamed_policies_keep_cedars_ids() {
    let p = load(
        r#"permit (principal, action == Action::"Watch", resource);
@id("named") permit (principal, action == Action::"Watch", resource);
permit (principal, action == Action::"Watch", resource);"#,
    );
    assert_eq!(p.ids(), ["policy0", "named", "policy2"]);
    let alice = user("alice", &[]);
    let d = p.decide(&ask(&alice, Action::Watch, "dev"));
    assert_eq!(d.policies, ["named", "policy0", "policy2"]);
}

/// The error's text for loading `policy` (with the docs schema, or
/// `schema_text` as the schema).
fn load_error(policy: &str, schema_text: Option<&str>) -> (PolicyError, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "p.cedar", policy);
    let schema_file = match schema_text {
        Some(text) => write(&dir, "s.cedarschema", text),
        None => schema(),
    };
    let e = Policy::load(&file, Some(&schema_file)).unwrap_err();
    let text = e.to_string();
    let text = text.replace(&dir.path().display().to_string(), "DIR");
    (e, text)
}

#[test]
fn syntax_errors_name_file_line_and_column() {
    let (e, text) = load_error(
        "permit (principal, action, resource);\n\npermit (principal, action, resource) when { ! };\n",
        None,
    );
    assert!(matches!(e, PolicyError::Syntax { .. }), "{e:?}");
    assert!(text.starts_with("DIR/p.cedar:3:"), "{text}");
}

#[test]
fn validation_errors_name_the_line_of_the_mistake() {
    let (e, text) = load_error(
        "@id(\"ok\") permit (principal, action, resource);\n@id(\"typo\")\npermit (principal, action, resource)\nwhen { resource.enviroment == \"dev\" };\n",
        None,
    );
    assert!(matches!(e, PolicyError::Invalid { .. }), "{e:?}");
    assert!(text.starts_with("DIR/p.cedar:4:"), "{text}");
    assert!(text.contains("enviroment"), "{text}");
    assert!(text.contains("typo"), "the policy's id: {text}");

    let (_, text) = load_error(
        "permit (principal, action == Action::\"OpenShel\", resource);\n",
        None,
    );
    assert!(text.starts_with("DIR/p.cedar:1:"), "{text}");
    assert!(text.contains("OpenShel"), "{text}");
}

#[test]
fn optional_context_needs_has() {
    let (e, text) = load_error(
        "permit (principal, action, resource)\n  when { context.break_glass.reason == \"x\" };\n",
        None,
    );
    assert!(matches!(e, PolicyError::Invalid { .. }), "{e:?}");
    assert!(text.starts_with("DIR/p.cedar:2:"), "{text}");
}

#[test]
fn schema_errors_name_the_schema_file() {
    let (e, text) = load_error(
        "",
        Some("entity User in [Group];\n\naction Foo appliesTo {\n"),
    );
    assert!(matches!(e, PolicyError::Schema { .. }), "{e:?}");
    assert!(text.starts_with("DIR/s.cedarschema:"), "{text}");
}

#[test]
fn a_schema_without_part_of_the_model_is_refused() {
    let full = std::fs::read_to_string(schema()).unwrap();
    let short = full.replace("ReadRecordings", "ReadLogs");
    let (e, text) = load_error("", Some(&short));
    assert!(matches!(e, PolicyError::Model { .. }), "{e:?}");
    assert!(text.contains("ReadRecordings"), "{text}");
    let wrong_type = full.replace("source_ip?: ipaddr", "source_ip?: String");
    let (e, _) = load_error("", Some(&wrong_type));
    assert!(matches!(e, PolicyError::Model { .. }), "{e:?}");
}

#[test]
fn duplicate_ids_and_templates_are_refused() {
    let (e, text) = load_error(
        "@id(\"a\") permit (principal, action, resource);\n\n@id(\"a\")\nforbid (principal, action, resource);\n",
        None,
    );
    assert!(matches!(e, PolicyError::Unsupported { .. }), "{e:?}");
    assert!(text.starts_with("DIR/p.cedar:3:"), "{text}");
    assert!(text.contains("line 1"), "{text}");
    let (e, text) = load_error(
        "@id(\"a\") permit (principal, action, resource);\npermit (principal == ?principal, action, resource);\n",
        None,
    );
    assert!(matches!(e, PolicyError::Unsupported { .. }), "{e:?}");
    assert!(text.starts_with("DIR/p.cedar:2:"), "{text}");
}

#[test]
fn a_missing_file_is_named() {
    let e = Policy::load(Path::new("/nonexistent/p.cedar"), None).unwrap_err();
    assert!(matches!(e, PolicyError::Read { .. }));
    assert!(e.to_string().starts_with("/nonexistent/p.cedar: "), "{e}");
}

#[test]
fn without_a_schema_policies_are_only_parsed() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "p.cedar",
        r#"@id("x") permit (principal, action, resource) when { resource.enviroment == "dev" };"#,
    );
    let p = Policy::load(&file, None).unwrap();
    assert!(!p.has_schema());
    let alice = user("alice", &[]);
    let d = p.decide(&ask(&alice, Action::OpenShell, "dev"));
    // The misspelt attribute is an evaluation error: the policy is skipped.
    assert!(!d.allowed);
    assert_eq!(d.errors.len(), 1, "{d:?}");
    assert!(d.errors[0].contains('x'), "{d:?}");
}

#[test]
fn a_failed_reload_keeps_the_old_policy() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        "p.cedar",
        r#"@id("one") permit (principal, action, resource);"#,
    );
    let schema = schema();
    let policy = Reloadable::load(&file, Some(&schema)).unwrap();
    let before = policy.current();
    assert_eq!(before.ids(), ["one"]);

    write(&dir, "p.cedar", "permit (principal, action, resource");
    let e = policy.reload().unwrap_err();
    assert!(matches!(e, PolicyError::Syntax { .. }), "{e}");
    assert_eq!(policy.current().ids(), ["one"]);

    write(
        &dir,
        "p.cedar",
        r#"@id("two") forbid (principal, action, resource);"#,
    );
    let after = policy.reload().unwrap();
    assert_eq!(after.ids(), ["two"]);
    assert_eq!(policy.current().ids(), ["two"]);
    // A decision holding the old policy keeps it.
    assert_eq!(before.ids(), ["one"]);
}

#[test]
fn actions_parse_as_cedar_spells_them() {
    for a in Action::ALL {
        assert_eq!(a.as_str().parse::<Action>(), Ok(a));
    }
    let e = "openshell".parse::<Action>().unwrap_err();
    assert!(e.to_string().contains("OpenShell"), "{e}");
}

/// Fuzzing found a decision naming `a\\nb` for the policy `@id("a\nb")`
/// (Cedar's escaped form), an id no listing of the policy's ids has.
#[test]
fn decisions_name_policies_by_their_ids_as_written() {
    let id = "two\nlines, a \"quote\" and a \\ backslash";
    let p = load(&format!(
        "@id({})\npermit (principal, action, resource);",
        serde_json::to_string(id).unwrap()
    ));
    assert_eq!(p.ids(), [id]);
    let alice = user("alice", &[]);
    let d = p.decide(&ask(&alice, Action::Watch, "dev"));
    assert!(d.allowed);
    assert_eq!(d.policies, [id]);
}
