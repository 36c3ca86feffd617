//! How long a policy decision takes: loads a 20-policy file (the shape of
//! docs/policy/team.cedar, repeated for more groups and environments)
//! against the shipped schema and times `Policy::decide_for` over a mix of
//! requests, the way a host asks once per connect. Run by hand:
//!
//!     cargo run --release -p termtrail-recorder --example policy_decide [-- ROUNDS]
//!
//! Prints the load time and the decision time (mean, p50, p99, max): once
//! as measured, and once as the best of 3 tries per request, which leaves
//! out the time the thread was preempted (on a loaded machine the raw p99
//! is the scheduler's time slice, not Cedar's).

use std::path::Path;
use std::time::Instant;

use termtrail_recorder::auth::Identity;
use termtrail_recorder::policy::{Action, Policy, Request};

/// 20 policies: for each of 4 teams a dev permit, a staging watch permit,
/// an operators' command permit and an on-call break-glass permit (16);
/// then an address-bound auditors' permit, two forbids and a permit that
/// expires.
fn policy_text() -> String {
    let mut text = String::new();
    for team in ["shop", "search", "billing", "ads"] {
        text.push_str(&format!(
            r#"
@id("{team}-dev")
permit (principal in Group::"{team}-developers", action, resource)
when {{ resource.environment == "{team}-dev" }};

@id("{team}-watch-staging")
permit (principal in Group::"{team}-developers",
        action in [Action::"Watch", Action::"ListShells"], resource)
when {{ resource.environment == "{team}-staging" }};

@id("{team}-operators")
permit (principal in Group::"{team}-operators",
        action in [Action::"RunCommand", Action::"Watch", Action::"ListShells"], resource)
when {{ ["{team}-staging", "{team}-production"].contains(resource.environment) }};

@id("{team}-oncall")
permit (principal in Group::"{team}-oncall",
        action in [Action::"OpenShell", Action::"Watch", Action::"Terminate"], resource)
when {{ resource.environment == "{team}-production" && context has break_glass }};
"#
        ));
    }
    text.push_str(
        r#"
@id("auditors")
permit (principal in Group::"auditors",
        action in [Action::"ListShells", Action::"ReadRecordings"], resource)
when { context has source_ip && context.source_ip.isInRange(ip("10.20.0.0/16")) };

@id("private-networks-only")
forbid (principal, action == Action::"OpenShell", resource)
unless { context has source_ip && context.source_ip.isInRange(ip("10.0.0.0/8")) };

@id("production-needs-break-glass")
forbid (principal, action == Action::"OpenShell", resource)
when { resource.environment like "*-production" }
unless { context has break_glass };

@id("contractor-until-2027")
permit (principal == User::"contractor", action == Action::"RunCommand", resource)
when { context.time < 1798761600 };
"#,
    );
    text
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(20_000, |n| n.parse().expect("ROUNDS: a number"));
    let dir = std::env::temp_dir().join(format!("termtrail-policy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("bench.cedar");
    std::fs::write(&file, policy_text()).expect("write policy");
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/policy/termtrail.cedarschema");

    let started = Instant::now();
    let policy = Policy::load(&file, Some(&schema)).unwrap_or_else(|e| panic!("{e}"));
    let load = started.elapsed();
    assert_eq!(policy.ids().len(), 20, "{:?}", policy.ids());

    let people = [
        Identity {
            groups: vec!["shop-developers".into(), "staff".into()],
            ..Identity::unauthenticated("alice")
        },
        Identity {
            groups: vec!["billing-oncall".into(), "billing-operators".into()],
            ..Identity::unauthenticated("carol")
        },
        Identity {
            groups: vec!["auditors".into()],
            ..Identity::unauthenticated("arn:aws:sts::111111111111:assumed-role/audit/ana")
        },
    ];
    let environments = ["shop-dev", "billing-production", "ads-staging", ""];
    let mut times = Vec::with_capacity(rounds);
    let mut best_times = Vec::with_capacity(rounds);
    let mut allowed = 0usize;
    for i in 0..rounds {
        let who = &people[i % people.len()];
        let request = Request {
            environment: Some(environments[i % environments.len()]),
            session: Some("0123456789abcdef0123456789abcdef"),
            break_glass: (i % 5 == 0).then_some("INC-1"),
            source_ip: Some(std::net::IpAddr::from([10, 20, (i % 256) as u8, 7])),
            ..Request::new(
                who,
                Action::ALL[i % Action::ALL.len()],
                "arn:aws:bedrock-agentcore:us-east-1:111111111111:runtime/shop",
                1_790_000_000 + i as u64,
            )
        };
        let t = Instant::now();
        let verdict = policy.decide_for(&request);
        let first = t.elapsed();
        times.push(first);
        allowed += usize::from(verdict.decision.allowed);
        let best = (0..2)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(policy.decide_for(&request));
                t.elapsed()
            })
            .fold(first, std::cmp::min);
        best_times.push(best);
    }
    println!("policies: {}, load: {load:?}", policy.ids().len());
    for (what, mut times) in [("as measured", times), ("best of 3", best_times)] {
        times.sort();
        let mean = times.iter().sum::<std::time::Duration>() / rounds as u32;
        let at = |q: f64| times[((rounds as f64 * q) as usize).min(rounds - 1)];
        println!(
            "decide_for, {what}, over {rounds} requests ({allowed} allowed): mean {mean:?}, p50 {:?}, p99 {:?}, max {:?}",
            at(0.50),
            at(0.99),
            times[rounds - 1]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
