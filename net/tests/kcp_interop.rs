//! Interop: a KCP we did not write, skywind3000's reference ikcp (C,
//! through the `siokcp` Python binding), drives a walle kcp server with
//! walle frames: requests coalesced in one KCP message, one spanning many
//! fragments, many one by one; every answer must echo its request. The
//! peer is `kcp_ikcp_client.py` beside this file; it knows neither the
//! hello nor the end-of-stream convention of walle's own kcp client.

mod util;

use std::process::Command;

use util::*;
use walle_net::{Backend, KcpOptions, ServerOptions};

/// The Python peer needs `siokcp` (PyPI; scripts/test.sh installs it).
fn python_with_siokcp() -> &'static str {
    let found = Command::new("python3")
        .args(["-c", "import siokcp"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "the interop test needs python3 with the siokcp package (the reference ikcp in C): \
         pip install siokcp (scripts/test.sh installs it)"
    );
    "python3"
}

#[test]
fn the_reference_ikcp_drives_a_walle_server() {
    let python = python_with_siokcp();
    let server = server(
        &Backend::kcp(KcpOptions::default()),
        echo_router(),
        ServerOptions::default(),
    );
    let addr = server.local_addr();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kcp_ikcp_client.py");
    let out = Command::new(python)
        .args([script, &addr.ip().to_string(), &addr.port().to_string()])
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the ikcp peer failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "ok 24");
    let stats = server.io_stats().kcp;
    assert_eq!(
        stats.opened, 1,
        "one session, of the peer's conv: {stats:?}"
    );
    assert_eq!(stats.dropped(), 0, "{stats:?}");
}
