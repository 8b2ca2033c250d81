//! Who may talk to whom on the NATS wire: a secret is revealed only to the worker its
//! attempt was delivered to (a reveal without the order's token is refused and audited),
//! and a NATS server requiring TLS is reached only by processes trusting its certificate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{Nats, SECRET, ran, worker};
use sluice_tests::Sluice;

/// One request over NATS' text protocol, as any client on the bus could send it: the
/// reply's payload.
pub(super) fn nats_request(url: &str, subject: &str, payload: &str) -> String {
    let addr = url.trim_start_matches("nats://");
    let stream = TcpStream::connect(addr).expect("connecting to nats-server");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("INFO");
    assert!(line.starts_with("INFO"), "{line}");
    let mut w = stream;
    write!(
        w,
        "CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nSUB _INBOX.probe 1\r\nPUB {subject} _INBOX.probe {}\r\n{payload}\r\nPING\r\n",
        payload.len()
    )
    .expect("writing");
    loop {
        line.clear();
        reader.read_line(&mut line).expect("a reply");
        if let Some(rest) = line.strip_prefix("MSG _INBOX.probe 1 ") {
            let len: usize = rest.trim().parse().expect("length");
            let mut body = vec![0; len + 2];
            reader.read_exact(&mut body).expect("payload");
            return String::from_utf8_lossy(&body[..len]).into_owned();
        }
        assert!(!line.starts_with("-ERR"), "{line}");
    }
}

#[test]
fn a_secret_is_revealed_only_to_the_worker_the_attempt_was_delivered_to() {
    let nats = Nats::start();
    let s = Sluice::new();
    let alice = [("SLUICE_PRINCIPAL", "alice")];
    s.run_with(&["secrets", "scopes", "create", "db"], &alice, None).assert_exit(0);
    s.run_with(&["secrets", "put", "db", "pw"], &alice, Some(SECRET.as_bytes())).assert_exit(0);
    let bundle = s.bundle(
        "sec",
        "[bundle]\nname = \"sec\"\n[components]\nprobe = { path = \"{guest:probe}\" }\n[jobs.sec]\n[[jobs.sec.tasks]]\nkey = \"granted\"\ncomponent = \"probe\"\nsecrets = [\"db/pw\"]\nparams = { secret = \"db/pw\", sleep_ms = \"3000\" }\n",
    );
    let server = s.serve(&["--nats", &nats.url, bundle.to_str().unwrap()]);
    let banner = server.seen.iter().find(|l| l.contains("through NATS JetStream")).expect("the banner").clone();
    let server_id = banner.split("server ").nth(1).and_then(|r| r.split(')').next()).expect("server id").to_string();
    let mut w = worker(&s, &nats, "w1", &[], false);
    let client = s.spawn_env(&["run", bundle.to_str().unwrap(), "--json"], &alice);
    w.wait_for("task=granted ");
    let started = w.seen.iter().rev().find(|l| l.contains("attempt started")).expect("started").clone();
    let id = started.split("id=").nth(1).and_then(|r| r.split_whitespace().next()).expect("attempt id").to_string();
    // another client of the bus knows the attempt's id and the server's subject, not the
    // token of the order: refused, whatever name it gives itself
    let subject = format!("sluice.reveal.{server_id}");
    for token in [r#""token":"forged","#, ""] {
        let ask = format!(r#"{{"id":"{id}",{token}"worker":"mallory","name":"db/pw"}}"#);
        let answer = nats_request(&nats.url, &subject, &ask);
        assert!(!answer.contains(SECRET), "revealed to a forger: {answer}");
        assert!(answer.contains("was not delivered to worker mallory"), "{answer}");
    }
    assert_eq!(client.wait(), 0, "the run");
    assert!(ran(&mut w, "granted"));
    let trail = s.run_with(&["audit", "--json", "--run", "1"], &alice, None);
    trail.assert_exit(0);
    let trail = trail.json();
    let records = trail.as_array().expect("records");
    let refused: Vec<_> =
        records.iter().filter(|r| r["via"].as_str().is_some_and(|v| v.starts_with("worker:mallory"))).collect();
    assert_eq!(refused.len(), 2, "{trail:#}");
    assert!(refused.iter().all(|r| r["granted"] == false), "{trail:#}");
    let real: Vec<_> = records.iter().filter(|r| r["via"] == "worker:w1").collect();
    assert_eq!(real.len(), 1, "{trail:#}");
    assert_eq!(real[0]["granted"], true, "the worker it was delivered to got it: {trail:#}");
    w.kill();
    server.kill();
}

/// `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("running openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA and a certificate for 127.0.0.1 it signed, in `dir`: ca.pem, server.pem, server.key.
fn certificates(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let ca = [&["req", "-x509"][..], &ec, &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"]].concat();
    openssl(dir, &[&ca[..], &["-subj", "/CN=sluice test CA"]].concat());
    let csr = [&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]].concat();
    openssl(dir, &csr);
    std::fs::write(dir.join("san.cnf"), "subjectAltName = IP:127.0.0.1\n").expect("san.cnf");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.cnf",
        ],
    );
}

#[test]
fn a_nats_server_requiring_tls_is_reached_only_with_its_ca() {
    let certs = tempfile::tempdir().expect("tempdir");
    certificates(certs.path());
    let path = |f: &str| certs.path().join(f).to_str().expect("utf-8").to_string();
    let (cert, key, ca) = (path("server.pem"), path("server.key"), path("ca.pem"));
    let nats = Nats::start_with(&["--tls", "--tlscert", &cert, "--tlskey", &key]);
    let s = Sluice::new();
    // without the CA: the certificate is not trusted, the worker says so and exits 2
    let out = s.run(&["worker", "--nats", &nats.url]);
    out.assert_exit(2);
    assert!(out.stderr.contains(&format!("connecting to NATS at {}", nats.url)), "{}", out.stderr);
    assert!(out.stderr.to_lowercase().contains("certificate"), "{}", out.stderr);
    // with it, both ends connect over TLS and a job runs on the worker
    let bundle = s.bundle(
        "tls",
        "[bundle]\nname = \"tls\"\n[components]\nprobe = { path = \"{guest:probe}\" }\n[jobs.j]\n[[jobs.j.tasks]]\nkey = \"t\"\ncomponent = \"probe\"\n",
    );
    let server = s.serve(&["--nats", &nats.url, "--nats-tls-ca", &ca, bundle.to_str().unwrap()]);
    let mut w = worker(&s, &nats, "tls", &["--nats-tls-ca", &ca], false);
    let (code, run) = s.run_json(&bundle, &[]);
    assert_eq!(code, 0, "{run:#}");
    assert!(ran(&mut w, "t"));
    w.kill();
    server.kill();
}
