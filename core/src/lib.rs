//! pam_tap's core: policy, passes, the store's trait, audit, and the
//! sign-in decision. No libpam and no HID here; time is always a parameter.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod accounts;
pub mod audit;
pub mod daemon;
pub mod duration;
pub mod enroll;
pub mod hashing;
pub mod helper;
pub mod keys;
pub mod pass;
pub mod passcode;
pub mod policy;
pub mod signin;
pub mod ssh;
pub mod store;
pub mod sys;
pub mod timefmt;
pub mod trust;
