//! tapctl: issue and manage Temporary Access Passes.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod caller;
pub mod cli;
pub mod client;
pub mod commands;
pub mod failure;
pub mod keys;
pub mod output;
pub mod ssh_enroll;
pub mod ssh_keys;
pub mod store_migrate;
mod sys;
pub mod terminal;
pub mod view;
