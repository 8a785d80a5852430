//! tapd: the only process that opens pam_tap's store. Clients (pam_tap.so,
//! tapctl) send one request per connection over a Unix socket; the peer's
//! identity comes from the kernel.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod admin;
pub mod context;
pub mod dispatch;
pub mod peer;
pub mod signin;
