//! The secret half of the handshake (see [`crate::local::auth`] for the proofs themselves and
//! why each piece is there): the server challenges with a nonce, the client proves it knows the
//! secret over both nonces and both names, and the server proves it back.

use super::conn::Connection;
use crate::local::auth::{self, Role, Secret, Transcript};
use crate::protocol::error::{Error, Result};
use crate::protocol::message::{ErrorCode, Reply, Request};

/// The client's half, after the server's challenge (`name`, `nonce`).
///
/// # Errors
/// [`Error::Auth`] if the server's own proof is wrong; [`Error::Remote`] if it refused ours.
pub fn prove(
    conn: &mut Connection,
    addr: &str,
    my_name: &str,
    secret: &Secret,
    name: &str,
    nonce: &str,
) -> Result<()> {
    let client_nonce = auth::nonce()?;
    let t = Transcript {
        server_nonce: nonce,
        client_nonce: &client_nonce,
        client_name: my_name,
        server_name: name,
    };
    let proof = secret.proof(Role::Client, &t);
    conn.send(&Request::Prove {
        nonce: client_nonce.clone(),
        proof,
    })?;
    match conn.recv::<Reply>()? {
        Reply::Welcome { proof } if secret.verify(Role::Server, &t, &proof) => Ok(()),
        Reply::Welcome { .. } => Err(Error::Auth(format!(
            "the box at {addr} could not prove it knows the shared secret; not going on"
        ))),
        Reply::Error { code, message } => Err(Error::Remote { code, message }),
        other => Err(Error::Protocol(format!("expected welcome, got {other:?}"))),
    }
}

/// Why a client does not go on when the server's first answer does not fit its secret: a box
/// that asks for no secret is not the one we share ours with, and one that asks for a secret
/// cannot be talked to without it.
pub fn mismatch(addr: &str, first: &Reply) -> Error {
    Error::Auth(match first {
        Reply::Hello { .. } => format!(
            "the box at {addr} asks for no shared secret, so it is not the box this secret is \
             shared with; not going on"
        ),
        _ => format!(
            "the box at {addr} only talks to peers that know its shared secret (give the same \
             --secret-file)"
        ),
    })
}

/// The server's half: challenges the client that said hello as `client_name`.
///
/// # Errors
/// [`Error::Auth`] if the client did not prove it knows the secret (it got one `unauthorized`
/// reply; the caller closes the connection).
pub fn challenge(
    conn: &mut Connection,
    client_name: &str,
    my_name: &str,
    secret: &Secret,
) -> Result<()> {
    let server_nonce = auth::nonce()?;
    conn.send(&Reply::Challenge {
        name: my_name.to_string(),
        nonce: server_nonce.clone(),
    })?;
    let why = match conn.recv_opt::<Request>()? {
        Some(Request::Prove { nonce, proof }) => {
            let t = Transcript {
                server_nonce: &server_nonce,
                client_nonce: &nonce,
                client_name,
                server_name: my_name,
            };
            let fresh = nonce.len() == 2 * auth::NONCE_LEN && nonce != server_nonce;
            if fresh && secret.verify(Role::Client, &t, &proof) {
                return conn.send(&Reply::Welcome {
                    proof: secret.proof(Role::Server, &t),
                });
            }
            "its proof of the shared secret was wrong"
        }
        None => "it hung up instead of proving it knows the shared secret",
        Some(_) => "it did not prove it knows the shared secret",
    };
    let _ = conn.send(&Reply::error(
        ErrorCode::Unauthorized,
        "this box only talks to peers that know its shared secret (--secret-file)",
    ));
    Err(Error::Auth(format!("refused {client_name:?}: {why}")))
}
