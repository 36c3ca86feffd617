//! `export --format html` in a real browser: Debian's Chromium, headless,
//! driven by playwright-core (tests/browser/html_page.cjs), with the network
//! refused. The page must load without console errors, play, show the
//! recording's text in asciinema-player's terminal, and show the metadata
//! and the verification result.

use serde_json::Value;

use crate::util::*;

pub(crate) fn open_in_browser(page: &std::path::Path, expect: &str) -> Option<Value> {
    let modules = peer("TERMTRAIL_NODE_MODULES")?;
    let chromium = peer("TERMTRAIL_CHROMIUM")?;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/html_page.cjs");
    let out = std::process::Command::new("node")
        .arg(script)
        .arg(page)
        .arg(expect)
        .env("TERMTRAIL_NODE_MODULES", modules)
        .env("TERMTRAIL_CHROMIUM", chromium)
        .output()
        .expect("node (installed by scripts/test)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{e}: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(v.get("fatal").is_none(), "{v}");
    assert_eq!(v["consoleErrors"], Value::Array(vec![]), "{v}");
    assert_eq!(v["pageErrors"], Value::Array(vec![]), "{v}");
    assert_eq!(
        v["refused"],
        Value::Array(vec![]),
        "the page asked the network: {v}"
    );
    Some(v)
}

#[test]
fn an_exported_page_plays_in_chromium_with_its_metadata_and_verdict() {
    let d = Dir::new();
    let src = samples().join("shell-colors.cast.zst");
    let r = d.run(&["export", &src.to_string_lossy(), "-o", "page.html"]);
    assert_eq!(r.code, 0, "{r:?}");
    let Some(v) = open_in_browser(&d.join("page.html"), "AccessDenied") else {
        return;
    };
    let term = v["termText"].as_str().unwrap();
    assert!(
        term.contains("AccessDenied") && term.contains("bash-completion"),
        "{v}"
    );
    // Nothing was on the terminal before the click: it played.
    assert!(
        !v["textBeforePlay"]
            .as_str()
            .unwrap()
            .contains("AccessDenied"),
        "{v}"
    );
    assert_eq!(v["duration"], 3.699218);
    assert_eq!(v["verdict"], "intact");
    assert_eq!(v["title"], "shell session with colours — termtrail");
    let info = v["info"].as_str().unwrap();
    for want in [
        "Verified: every chunk (4)",
        "ad4ddea36818b9b67795fc61fe4d6cbe",
        "exited with code 0",
        "80×24",
    ] {
        assert!(info.contains(want), "{want} missing: {info}");
    }
}

#[test]
fn pages_say_when_a_recording_is_tampered_unsealed_or_unverifiable() {
    let d = Dir::new();
    let s = samples();
    // Tampered: refused without --allow-tampered; with it, marked.
    let damaged = s.join("damaged-edited-event.cast.zst");
    let r = d.run(&["export", &damaged.to_string_lossy(), "-o", "t.html"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!d.join("t.html").exists());
    let r = d.run(&[
        "export",
        &damaged.to_string_lossy(),
        "-o",
        "t.html",
        "--allow-tampered",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    let unsealed = s.join("damaged-unsealed.cast.zst");
    assert_eq!(
        d.run(&["export", &unsealed.to_string_lossy(), "-o", "u.html"])
            .code,
        0
    );
    let plain = s.join("failing-command-v2.cast");
    assert_eq!(
        d.run(&["export", &plain.to_string_lossy(), "-o", "p.html"])
            .code,
        0
    );
    for (page, text, verdict, says) in [
        ("t.html", "ls", "tampered", "TAMPERED: chunk 1"),
        ("u.html", "AccessDenied", "unsealed", "not sealed"),
        ("p.html", "deploy failed", "plain", "Not verified"),
    ] {
        let Some(v) = open_in_browser(&d.join(page), text) else {
            return;
        };
        assert!(
            v["termText"].as_str().unwrap().contains(text),
            "{page}: {v}"
        );
        assert_eq!(v["verdict"], verdict, "{page}: {v}");
        assert!(v["info"].as_str().unwrap().contains(says), "{page}: {v}");
    }
}

#[test]
fn recorded_text_cannot_break_out_of_the_page() {
    let d = Dir::new();
    let cast = concat!(
        r#"{"version": 2, "width": 100, "height": 6, "title": "<img src=x onerror=alert(1)>"}"#,
        "\n",
        r#"[0.2, "o", "</script><script>document.title='pwned'</script> & <b>bold</b>\r\n"]"#,
        "\n",
        r#"[0.4, "o", "done \u2028 \u2029 end\r\n"]"#,
        "\n"
    );
    std::fs::write(d.join("x.cast"), cast).unwrap();
    assert_eq!(d.run(&["import", "x.cast"]).code, 0);
    assert_eq!(d.run(&["export", "x.cast.zst", "-o", "x.html"]).code, 0);
    let html = std::fs::read_to_string(d.join("x.html")).unwrap();
    assert!(
        !html.contains("<script>document.title"),
        "raw markup in the page"
    );
    assert!(!html.contains("<img src=x"), "raw markup in the page");
    let Some(v) = open_in_browser(&d.join("x.html"), "end") else {
        return;
    };
    assert_eq!(v["title"], "<img src=x onerror=alert(1)> — termtrail");
    assert!(
        v["termText"]
            .as_str()
            .unwrap()
            .contains("</script><script>document.title='pwned'</script> & <b>bold</b>"),
        "{v}"
    );
}
