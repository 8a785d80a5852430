//! Backends for core's store trait (`tap_core::store::Store`). SQLite, in
//! the file the policy names, is the embedded default; PostgreSQL is the
//! fleet's shared store. This crate depends on core, never the reverse.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod postgres;
pub mod snapshot;
pub mod sqlite;
mod sys;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use postgres::{PostgresConfig, PostgresStore, Roster, RosterEvent, StoreWarning};
pub use snapshot::{Copied, Snapshot};
pub use sqlite::{Offline, OfflineKeyUse, OpenOptions, SqliteStore};
