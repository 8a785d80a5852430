//! For tests and the bench only (feature `testkit`, never in a shipped
//! build): a real PostgreSQL started in a temporary directory.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod pg;
