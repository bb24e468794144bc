//! Layer 5, stage 2: serving many peers at once, and stopping cleanly. A thread per connection
//! ([`server`]), signals as channel messages ([`signals`]), and a handshake that stops the
//! shell's running command from another thread ([`interrupt`]).

pub mod interrupt;
pub mod server;
pub mod signals;

pub use server::{Server, ServerConfig};
