//! Layer 3, the wire: sockets. A TCP connection that speaks frames, the handshake that opens
//! it, and the datagrams and windows of UDP downloads.
//!
//! | module | what it holds |
//! |---|---|
//! | [`conn`] | a TCP connection that reads and writes frames, with timeouts |
//! | [`handshake`] | hello and hello: each side tells its name |
//! | [`auth`] | optional: proving the shared secret in the handshake |
//! | [`udp`] | the UDP chapter's datagrams, windows and socket sharing |
//! | [`sendfile`] | speed: file bytes from the page cache straight to the socket |

pub mod auth;
pub mod conn;
pub mod handshake;
pub mod listen;
pub mod sendfile;
pub mod udp;

pub use conn::Connection;
