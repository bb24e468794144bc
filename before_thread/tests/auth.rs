//! `--secret-file`: the stage-1 `server` and `client` prove to each other that they know a shared
//! secret. A peer without it, or with another one, gets one clear refusal; a recorded proof does
//! not open a second connection; and every hostile-input attack still fails against a box that
//! wants the secret.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use minibox::local::auth::{self, Role, Secret, Transcript};
use minibox::protocol::frame;
use minibox::protocol::{ErrorCode, Reply, Request};
use minibox::wire::conn::Connection;
use testkit::attack::{run_all, Serving, Target};
use testkit::{run_shell, Proc, ShellRun};

const SECRET: &[u8] = b"correct horse battery staple, 32+ bytes";

fn secret_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write the secret");
    testkit::chmod(&path, 0o600);
    path
}

fn server(dir: &Path, secret: Option<&Path>) -> Proc {
    let mut args = vec![
        "--dir".to_string(),
        dir.display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
    ];
    if let Some(s) = secret {
        args.extend(["--secret-file".into(), s.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Proc::start(env!("CARGO_BIN_EXE_server"), &args)
}

fn client(dir: &Path, peer: &str, secret: Option<&Path>, input: &str) -> ShellRun {
    let mut args = vec![
        "--dir".to_string(),
        dir.display().to_string(),
        "--peer".into(),
        peer.into(),
        "--json".into(),
    ];
    if let Some(s) = secret {
        args.extend(["--secret-file".into(), s.display().to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_shell(
        env!("CARGO_BIN_EXE_client"),
        &args,
        input,
        Duration::from_secs(60),
    )
}

#[test]
fn peers_with_the_secret_talk_and_others_get_one_clear_refusal() {
    let tmp = testkit::tempdir();
    let keys = tmp.path().join("keys");
    std::fs::create_dir_all(&keys).expect("mkdir");
    let good = secret_file(&keys, "good", SECRET);
    let wrong = secret_file(&keys, "wrong", b"another secret that is long enough");
    let short = secret_file(&keys, "short", b"tiny\n");
    let served = tmp.path().join("served");
    testkit::write(&served, "doc.txt", b"for friends only");
    let mut srv = server(&served, Some(&good));
    let peer = srv.addr_string();
    let mine = tmp.path().join("mine");

    // Same secret: everything works, both ways proven.
    let run = client(
        &mine,
        &peer,
        Some(&good),
        "index longlist\ndownload TCP doc.txt\n",
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let lines = run.json_lines();
    assert_eq!(lines[0]["files"][0]["path"], "doc.txt");
    assert_eq!(lines[1]["verified"], true);
    assert_eq!(
        std::fs::read(mine.join("doc.txt")).expect("downloaded"),
        b"for friends only"
    );

    // No secret, or another secret: one clear sentence each, nothing downloaded.
    for (secret, says) in [
        (None, "only talks to peers that know its shared secret"),
        (
            Some(&wrong),
            "only talks to peers that know its shared secret",
        ),
    ] {
        let other = tmp.path().join("stranger");
        let run = client(
            &other,
            &peer,
            secret.map(PathBuf::as_path),
            "download TCP doc.txt\n",
        );
        assert_eq!(run.code(), 1, "{run:?}");
        let lines = run.json_lines();
        assert_eq!(lines.len(), 1, "one refusal: {run:?}");
        assert_eq!(lines[0]["ok"], false);
        let error = lines[0]["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{error}");
        assert!(!other.join("doc.txt").exists());
    }
    // A secret that is too short is refused at start.
    let run = client(&mine, &peer, Some(&short), "index longlist\n");
    assert_eq!(run.code(), 1);
    assert!(run.stderr.contains("at least 16 bytes"), "{run:?}");
    assert!(srv.alive());

    // A client with a secret does not talk to a box that asks for none.
    let open = tmp.path().join("open");
    let plain = server(&open, None);
    let run = client(&mine, &plain.addr_string(), Some(&good), "index longlist\n");
    assert_eq!(run.code(), 1);
    assert!(run.stdout.contains("asks for no shared secret"), "{run:?}");
}

/// Reads one reply from a raw socket.
fn reply(s: &mut TcpStream) -> Option<Reply> {
    frame::read_frame::<_, Reply>(s).ok().flatten()
}

fn send(s: &mut TcpStream, request: &Request) {
    let mut bytes = Vec::new();
    frame::write_frame(&mut bytes, request).expect("encode");
    s.write_all(&bytes).expect("send");
}

#[test]
fn forged_skipped_and_replayed_proofs_are_refused() {
    let tmp = testkit::tempdir();
    let good = secret_file(tmp.path(), "good", SECRET);
    let served = tmp.path().join("served");
    testkit::write(&served, "doc.txt", b"for friends only");
    let mut srv = server(&served, Some(&good));
    let secret = Secret::from_bytes(SECRET.to_vec()).expect("secret");

    skipping_the_proof_is_refused(srv.addr);
    a_forged_proof_is_refused(srv.addr);
    let client_nonce = a_replayed_proof_is_refused(srv.addr, &secret);
    a_reflected_server_proof_is_refused(srv.addr, &secret, &client_nonce);

    assert!(srv.alive());
    let mut honest = minibox::wire::handshake::connect(&srv.addr_string(), "friend", Some(&secret))
        .expect("an honest peer still gets in");
    let listed = minibox::ask::list::list(
        &mut honest,
        minibox::protocol::Filter::All,
        minibox::protocol::ListKind::Hashes,
    )
    .expect("listing");
    assert_eq!(listed.len(), 1);
}

/// Opens a raw connection as "mallory" and checks that the server challenges it; returns the
/// connection with the challenge's server name and nonce.
fn open(addr: SocketAddr) -> (TcpStream, String, String) {
    let hello = Request::Hello {
        name: "mallory".into(),
    };
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    send(&mut s, &hello);
    let Some(Reply::Challenge { name, nonce }) = reply(&mut s) else {
        panic!("no challenge")
    };
    (s, name, nonce)
}

/// Checks that the next reply is an `unauthorized` refusal and that the connection then closes.
fn refused(s: &mut TcpStream) {
    match reply(s) {
        Some(Reply::Error {
            code: ErrorCode::Unauthorized,
            ..
        }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(
        reply(s).is_none(),
        "the connection stays open after a refusal"
    );
}

/// Skipping the proof: asking for a file right away is refused.
fn skipping_the_proof_is_refused(addr: SocketAddr) {
    let (mut s, _, _) = open(addr);
    send(
        &mut s,
        &Request::Download {
            path: "doc.txt".into(),
        },
    );
    refused(&mut s);
}

/// A forged proof is refused.
fn a_forged_proof_is_refused(addr: SocketAddr) {
    let (mut s, _, _) = open(addr);
    send(
        &mut s,
        &Request::Prove {
            nonce: auth::nonce().expect("nonce"),
            proof: "00".repeat(32),
        },
    );
    refused(&mut s);
}

/// A valid proof is welcomed, with a valid server proof; recorded, then replayed on a new
/// connection (whose challenge differs), it is refused. Returns the client nonce it used.
fn a_replayed_proof_is_refused(addr: SocketAddr, secret: &Secret) -> String {
    let (mut s, server_name, server_nonce) = open(addr);
    let client_nonce = auth::nonce().expect("nonce");
    let t = Transcript {
        server_nonce: &server_nonce,
        client_nonce: &client_nonce,
        client_name: "mallory",
        server_name: &server_name,
    };
    let recorded = Request::Prove {
        nonce: client_nonce.clone(),
        proof: secret.proof(Role::Client, &t),
    };
    send(&mut s, &recorded);
    match reply(&mut s) {
        Some(Reply::Welcome { proof }) => assert!(secret.verify(Role::Server, &t, &proof)),
        other => panic!("a valid proof was not welcomed: {other:?}"),
    }
    drop(s);
    let (mut s, _, fresh_nonce) = open(addr);
    assert_ne!(fresh_nonce, server_nonce, "a challenge repeated itself");
    send(&mut s, &recorded);
    refused(&mut s);
    client_nonce
}

/// The server's own proof cannot be reflected back as a client's.
fn a_reflected_server_proof_is_refused(addr: SocketAddr, secret: &Secret, client_nonce: &str) {
    let (mut s, server_name, server_nonce) = open(addr);
    let t = Transcript {
        server_nonce: &server_nonce,
        client_nonce,
        client_name: "mallory",
        server_name: &server_name,
    };
    send(
        &mut s,
        &Request::Prove {
            nonce: client_nonce.to_string(),
            proof: secret.proof(Role::Server, &t),
        },
    );
    refused(&mut s);
}

fn connect_with_secret(addr: &str) -> minibox::Result<Connection> {
    let secret = Secret::from_bytes(SECRET.to_vec())?;
    minibox::wire::handshake::connect(addr, "checker", Some(&secret))
}

#[test]
fn every_attack_fails_against_a_box_that_wants_the_secret() {
    let keys = testkit::tempdir();
    let good = secret_file(keys.path(), "good", SECRET);
    let launch = |dir: &Path| server(dir, Some(&good));
    let target = Target {
        name: "server --secret-file",
        launch: &launch,
        serving: Serving::OneAtATime,
        connect: &connect_with_secret,
    };
    run_all(&target).assert_clean();
}
