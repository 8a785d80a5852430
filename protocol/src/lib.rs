//! pam_tap's wire protocols, serde only (no I/O beyond framing a stream):
//!
//! * `frame`, `request`, `signin`, `admin`: clients (`pam_tap.so`,
//!   `tapctl`) and the daemon `tapd`, over its Unix socket. One request and
//!   one response per connection, each one length-framed JSON message that
//!   carries the protocol version.
//! * `helper`: a client and the short-lived key helper it runs (one JSON
//!   line each way over pipes).
//!
//! Who is asking is never part of a message: `tapd` reads it from the
//! socket (`SO_PEERCRED`).
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod admin;
pub mod frame;
pub mod helper;
pub mod request;
pub mod secret;
pub mod signin;

pub use frame::{
    read_message, write_message, FrameError, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, VERSION,
};
pub use request::{ErrorKind, Refusal, Request, Response};
