//! `--ca-file`: Withings reached over TLS through a front whose certificate
//! comes from a private CA (as behind a TLS-inspecting proxy). The front is
//! socat with a certificate made by openssl for this test.

use crate::fake_withings::{FakeWithings, Group};
use crate::support::certs::make_certificates;
use crate::support::relay::{command, free_port, start_linked, wait_for, TestDir};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const USER: u64 = 9_090_001;

struct Front(Child);

impl Drop for Front {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// socat terminating TLS on `port` and forwarding to the fake.
fn tls_front(dir: &Path, port: u16, fake: &FakeWithings) -> Front {
    let child = Command::new("socat")
        .current_dir(dir)
        .arg(format!("OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert=server.pem,key=server.key,verify=0"))
        .arg(format!("TCP:127.0.0.1:{}", fake.port()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("socat (make test-deps)");
    wait_for("the TLS front", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    });
    Front(child)
}

#[test]
fn a_private_ca_is_trusted_only_when_given_with_ca_file() {
    let fake = FakeWithings::start();
    let dir = TestDir::new("tls");
    let relay = start_linked(&fake, &dir, USER, &[]);
    let t = fake.now() as i64;
    fake.add_group(USER, Group::weight(1, t - 5, t - 5, 64_300, -3));
    make_certificates(dir.path());
    let port = free_port();
    let _front = tls_front(dir.path(), port, &fake);
    let state = relay.state_dir.display().to_string();
    let api = format!("https://localhost:{port}");
    let ca = dir.path().join("ca.pem").display().to_string();

    let fetch = |ca_file: Option<&str>| {
        let mut cmd = command();
        cmd.args(["--state-dir", &state, "--api-url", &api]);
        if let Some(ca) = ca_file {
            cmd.args(["--ca-file", ca]);
        }
        cmd.arg("fetch").output().unwrap()
    };

    let without = fetch(None);
    assert_eq!(without.status.code(), Some(1));
    let err = String::from_utf8_lossy(&without.stderr);
    assert!(
        err.contains("--ca-file"),
        "the error says how to fix it: {err}"
    );

    let with = fetch(Some(&ca));
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let out = String::from_utf8(with.stdout).unwrap();
    assert!(out.contains(r#""value":64.3"#), "{out}");

    let not_pem = dir.path().join("server.csr").display().to_string();
    let bad = fetch(Some(&not_pem));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("holds no PEM certificate"));
}
