//! Optional peer authentication: both ends prove they know a shared secret, without sending it.
//!
//! By default a box listens on loopback only, and anyone who can reach its port may read it.
//! Given `--secret-file FILE` (the same file contents on both machines), every connection opens
//! with a *challenge-response* in which each side proves it knows the secret:
//!
//! ```text
//! client                                          server (has the secret)
//!   Hello { name: c }                       ->
//!                                           <-    Challenge { name: s, nonce: Ns }
//!   Prove { nonce: Nc,
//!           proof: HMAC(K, "client" Ns Nc c s) } ->   checks the proof (constant time)
//!                                           <-    Welcome { proof: HMAC(K, "server" Ns Nc c s) }
//!   checks the proof
//! ```
//!
//! Why each piece is there:
//! - the *nonces* are 32 fresh random bytes each, from the operating system: a proof recorded
//!   yesterday is worthless today, because it covers nonces that will never come again;
//! - the *labels* `client` and `server` make the two proofs different, so an attacker cannot
//!   bounce a server's proof back to it as if it were a client's (a reflection attack);
//! - both names are covered, so a proof made for one pair of boxes does not fit another;
//! - HMAC-SHA-256 (from the RustCrypto `hmac` and `sha2` crates) is the standard way to turn a
//!   shared key and a message into a proof; comparing proofs uses `verify_slice`, which takes
//!   the same time whether the first or the last byte differs, so timing leaks nothing.
//!
//! A peer without the secret gets one clear refusal (an `unauthorized` error reply) and the
//! connection is closed; a client that expected a secret and meets a box that asks for none
//! refuses to go on too (it is not the box it shares a secret with).
//!
//! What this does *not* do, said plainly in `docs/SECURITY.md`: it encrypts nothing (anyone on
//! the path reads the files as they pass), and it authenticates the *opening* of a connection,
//! not every frame after it (an attacker who can inject into a live TCP connection could take it
//! over). The secret must be long and random: a proof seen by an impostor lets it guess a weak
//! secret offline. `Secret::from_file` refuses fewer than [`MIN_SECRET`] bytes.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::protocol::error::{Error, Result};
use crate::protocol::md5::hex;

/// Length of every nonce, in bytes.
pub const NONCE_LEN: usize = 32;

/// The fewest bytes a secret may have.
pub const MIN_SECRET: usize = 16;

/// A shared secret. Its bytes are never printed, not even by `Debug`.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(hidden)")
    }
}

impl Secret {
    /// Reads a secret from a file: its whole contents, less trailing line ends (so that `echo`
    /// and editors do not change it). Warns in the log when others may read the file.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be read; [`Error::Usage`] if it holds fewer than
    /// [`MIN_SECRET`] bytes.
    pub fn from_file(path: &Path) -> Result<Secret> {
        let mut bytes = Vec::new();
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        file.read_to_end(&mut bytes)
            .map_err(|e| Error::io(path, e))?;
        if let Ok(meta) = file.metadata() {
            if meta.permissions().mode() & 0o077 != 0 {
                log::warn!(
                    "{} can be read by other users; chmod 600 it",
                    path.display()
                );
            }
        }
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        Secret::from_bytes(bytes).map_err(|e| match e {
            Error::Usage(m) => Error::Usage(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// A secret from bytes.
    ///
    /// # Errors
    /// [`Error::Usage`] if there are fewer than [`MIN_SECRET`] of them.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Secret> {
        if bytes.len() < MIN_SECRET {
            return Err(Error::Usage(format!(
                "a shared secret needs at least {MIN_SECRET} bytes (make one with: \
                 head -c 32 /dev/urandom | base64 > FILE)"
            )));
        }
        Ok(Secret(bytes))
    }

    /// The proof that the side playing `role` knows this secret, for one handshake.
    pub fn proof(&self, role: Role, t: &Transcript<'_>) -> String {
        hex(&self.mac(role, t).finalize().into_bytes())
    }

    /// Checks, in constant time, a proof the other side sent.
    pub fn verify(&self, role: Role, t: &Transcript<'_>, proof_hex: &str) -> bool {
        match unhex(proof_hex) {
            Some(bytes) => self.mac(role, t).verify_slice(&bytes).is_ok(),
            None => false,
        }
    }

    fn mac(&self, role: Role, t: &Transcript<'_>) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes keys of any length");
        // Every field with its length in front, so that no two transcripts read the same.
        for field in [
            b"minibox-auth-v1".as_slice(),
            role.label(),
            t.server_nonce.as_bytes(),
            t.client_nonce.as_bytes(),
            t.client_name.as_bytes(),
            t.server_name.as_bytes(),
        ] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        mac
    }
}

/// Which side a proof speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The side that opened the connection.
    Client,
    /// The side that accepted it.
    Server,
}

impl Role {
    fn label(self) -> &'static [u8] {
        match self {
            Role::Client => b"client",
            Role::Server => b"server",
        }
    }
}

/// What a proof covers: both nonces (hex, as sent) and both names (as sent).
#[derive(Debug, Clone, Copy)]
pub struct Transcript<'a> {
    /// The server's nonce.
    pub server_nonce: &'a str,
    /// The client's nonce.
    pub client_nonce: &'a str,
    /// The client's name, as in its hello.
    pub client_name: &'a str,
    /// The server's name, as in its challenge.
    pub server_name: &'a str,
}

/// A fresh nonce from the operating system's random generator, in hex.
///
/// Read from `/dev/urandom` rather than through a crate: minibox runs on Unix only (it already
/// relies on Unix file permissions and `O_NOFOLLOW`), `/dev/urandom` is the kernel's
/// cryptographic generator and never blocks once the system has booted, and it costs no
/// dependency.
///
/// # Errors
/// If `/dev/urandom` cannot be read.
pub fn nonce() -> Result<String> {
    Ok(hex(&random_bytes::<NONCE_LEN>()?))
}

/// A random 64-bit number from the operating system, for per-transfer tokens (UDP).
///
/// # Errors
/// If `/dev/urandom` cannot be read.
pub fn random_u64() -> Result<u64> {
    Ok(u64::from_be_bytes(random_bytes::<8>()?))
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let path = Path::new("/dev/urandom");
    let mut out = [0u8; N];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut out))
        .map_err(|e| Error::io(path, e))?;
    Ok(out)
}

/// Hex to bytes; `None` if not an even number of hex digits.
fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || text.len() > 256 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests;
