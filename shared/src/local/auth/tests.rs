use super::*;

fn transcript() -> Transcript<'static> {
    Transcript {
        server_nonce: "aa",
        client_nonce: "bb",
        client_name: "c",
        server_name: "s",
    }
}

#[test]
fn proofs_verify_only_with_the_same_secret_role_and_transcript() {
    let k = Secret::from_bytes(b"0123456789abcdef-key".to_vec()).unwrap();
    let other = Secret::from_bytes(b"0123456789abcdef-other".to_vec()).unwrap();
    let t = transcript();
    let p = k.proof(Role::Client, &t);
    assert_eq!(p.len(), 64);
    assert!(k.verify(Role::Client, &t, &p));
    assert!(!other.verify(Role::Client, &t, &p), "another secret");
    assert!(
        !k.verify(Role::Server, &t, &p),
        "reflected to the other role"
    );
    let t2 = Transcript {
        server_nonce: "ab",
        ..t
    };
    assert!(!k.verify(Role::Client, &t2, &p), "another nonce");
    // Field boundaries matter: moving a byte from one name to the other changes the proof.
    let t3 = Transcript {
        client_name: "cs",
        server_name: "",
        ..t
    };
    assert!(!k.verify(Role::Client, &t3, &p));
    for junk in ["", "zz", "abc", &"0".repeat(64), &"f".repeat(10_000)] {
        assert!(!k.verify(Role::Client, &t, junk), "{junk:.20}");
    }
}

#[test]
fn secrets_are_read_from_files_and_never_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("secret");
    std::fs::write(&path, "short\n").unwrap();
    let err = Secret::from_file(&path).unwrap_err().to_string();
    assert!(err.contains("at least 16 bytes"), "{err}");
    std::fs::write(&path, "a-long-enough-shared-secret\r\n").unwrap();
    let a = Secret::from_file(&path).unwrap();
    let b = Secret::from_bytes(b"a-long-enough-shared-secret".to_vec()).unwrap();
    let t = transcript();
    assert_eq!(a.proof(Role::Server, &t), b.proof(Role::Server, &t));
    assert_eq!(format!("{a:?}"), "Secret(hidden)");
    assert!(Secret::from_file(&tmp.path().join("missing")).is_err());
}

#[test]
fn nonces_are_fresh() {
    let a = nonce().unwrap();
    assert_eq!(a.len(), 2 * NONCE_LEN);
    assert_ne!(a, nonce().unwrap());
    assert_ne!(random_u64().unwrap(), random_u64().unwrap());
}
