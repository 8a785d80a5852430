//! tapd: the only process that opens pam_tap's store. Clients (pam_tap.so,
//! tapctl) send one request per connection over a Unix socket; the peer's
//! identity comes from the kernel.
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod activation;
pub mod admin;
pub mod cli;
mod connection;
pub mod context;
pub mod copy_store;
mod deadline;
pub mod dispatch;
pub mod hash_gate;
pub mod limits;
pub mod log;
pub mod offline;
pub mod peer;
pub mod policy_cache;
pub mod roster;
pub mod server;
pub mod signin;
pub mod store_slot;
pub mod sys;
mod threads;
pub mod uid_cache;
pub mod worker;
