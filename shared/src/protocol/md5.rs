//! MD5: the fingerprint both peers compute of every file, to check that what arrived is what
//! was sent. In memory an MD5 is an [`Md5`], 16 bytes; the wire and the shell show it as 32
//! lowercase hex digits. Hashing streams through a buffer, so memory stays flat whatever the size.

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use md5::Digest;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Buffer size for streaming file data: system calls cost nothing next to hashing it.
pub const BUF_SIZE: usize = 256 * 1024;

/// An MD5 digest, ordered like its hex text.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Md5(pub [u8; 16]);

impl Md5 {
    /// The MD5 of `bytes`.
    pub fn of(bytes: &[u8]) -> Md5 {
        let mut h = Hasher::new();
        h.update(bytes);
        h.digest()
    }
}

impl fmt::Display for Md5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for Md5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Md5({self})")
    }
}

/// Why a text is not an MD5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotMd5(pub String);

impl fmt::Display for NotMd5 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The text came from the network: escaped and cut, so it cannot forge a log line.
        let shown: String = self.0.chars().take(64).collect();
        write!(
            f,
            "\"{}\" is not an MD5 (32 hex digits)",
            shown.escape_default()
        )
    }
}

impl std::error::Error for NotMd5 {}

impl FromStr for Md5 {
    type Err = NotMd5;

    /// Reads 32 hex digits (either case).
    fn from_str(text: &str) -> Result<Self, NotMd5> {
        let bad = || NotMd5(text.to_string());
        let bytes = text.as_bytes();
        if bytes.len() != 32 {
            return Err(bad());
        }
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let mut out = [0u8; 16];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            out[i] = digit(pair[0])
                .zip(digit(pair[1]))
                .map(|(hi, lo)| hi << 4 | lo)
                .ok_or_else(bad)?;
        }
        Ok(Md5(out))
    }
}

impl Serialize for Md5 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Md5 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A running MD5.
#[derive(Clone, Default)]
pub struct Hasher(md5::Md5);

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Hasher(md5::Md5::new())
    }
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
    /// The digest.
    pub fn digest(self) -> Md5 {
        Md5(self.0.finalize().into())
    }
    /// The digest as lowercase hex.
    pub fn finish(self) -> String {
        self.digest().to_string()
    }
}

/// Lowercase hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digit = |d: u8| DIGITS[usize::from(d)] as char;
    bytes
        .iter()
        .flat_map(|b| [digit(b >> 4), digit(b & 15)])
        .collect()
}

/// MD5 of everything `reader` yields.
///
/// # Errors
/// Whatever the reader returns.
pub fn digest_reader<R: Read>(reader: R) -> io::Result<Md5> {
    digest_reader_with(reader, &mut |_| Ok(()))
}

/// [`digest_reader`], telling `progress` the bytes hashed so far after each buffer; an error
/// from `progress` stops the hashing.
///
/// # Errors
/// Whatever the reader or `progress` returns.
pub fn digest_reader_with<R: Read>(
    mut reader: R,
    progress: &mut dyn FnMut(u64) -> io::Result<()>,
) -> io::Result<Md5> {
    let mut hasher = Hasher::new();
    let mut buf = vec![0u8; BUF_SIZE];
    let mut done = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(hasher.digest()),
            Ok(n) => {
                hasher.update(&buf[..n]);
                done += n as u64;
                progress(done)?;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// MD5 of everything `reader` yields, as lowercase hex.
///
/// # Errors
/// Whatever the reader returns.
pub fn md5_reader<R: Read>(reader: R) -> io::Result<String> {
    digest_reader(reader).map(|d| d.to_string())
}

#[cfg(test)]
mod tests;
