//! Security keys: the helper protocol, and (in their own modules) parsing
//! and verifying what an authenticator returns.

pub mod credential;
pub mod protocol;
pub mod runner;
