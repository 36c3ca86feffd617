//! TLS end to end: `serve` with a certificate; `attach`, `exec` and `proxy`
//! reaching it over wss:// with `--ca-cert`.

use crate::util::*;

#[tokio::test(flavor = "multi_thread")]
async fn clients_and_proxy_reach_a_tls_host() {
    let d = Dir::new();
    let (ca, cert, key) = test_ca(&d);
    let host = Server::start(&d, &["--tls-cert", &cert, "--tls-key", &key]);
    let cert = ca; // clients trust the CA
    let wss = format!("wss://{}", host.addr);

    let r = d.run_with_input(
        &["attach", &wss, "--ca-cert", &cert],
        b"echo over-tls-$((6*7))\nexit 3\n",
    );
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stdout.contains("over-tls-42"), "{}", r.stdout);

    let r = d.run(&["exec", &wss, "--ca-cert", &cert, "--", "echo exec-over-tls"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "exec-over-tls\n"), "{r:?}");

    // Without the CA the certificate is not trusted: a clear failure.
    let r = d.run(&["exec", &wss, "--", "true"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("cannot reach"), "{}", r.stderr);

    // A plain proxy in front of the TLS host.
    let pd = Dir::new();
    let px = Server::start_kind(&pd, "proxy", &["--upstream", &wss, "--ca-cert", &cert]);
    let (mut ws, _) = open(&px.url("tls1")).await;
    stdin(&mut ws, "echo proxied-over-tls\n").await;
    read_until(&mut ws, "proxied-over-tls\r\n").await;
    stdin(&mut ws, "exit 4\n").await;
    assert_eq!(
        exit_status(&mut ws).await["details"]["causes"][0]["message"],
        "4"
    );
    let r = d.run(&[
        "exec",
        &format!("ws://{}", px.addr),
        "--",
        "echo cmd-via-proxy-tls",
    ]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, "cmd-via-proxy-tls\n"),
        "{r:?}"
    );
}
