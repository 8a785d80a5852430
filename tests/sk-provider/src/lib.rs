//! `libpam_tap_sk_provider.so`: a software security key that OpenSSH loads
//! through `SecurityKeyProvider` / `SSH_SK_PROVIDER` / `ssh-keygen -w`, for
//! tests only. It speaks the middleware API of OpenSSH 9.2p1's `sk-api.h`
//! (version 0x000a0000) and answers as OpenSSH's own `sk-usbhid.c`
//! middleware would with a real FIDO2 key behind it. See README.md beside
//! this crate.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod api;
mod attestation;
mod authdata;
mod config;
mod device;
mod state;
mod sys;

pub use device::{
    enroll, sign, EnrollRequest, EnrollResponse, SignRequest, SignResponse, SkOption,
};
