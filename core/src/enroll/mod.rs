//! Enrolling a security key, split the way it runs: the daemon decides
//! and verifies (`register`, `proof`), the client only carries bytes
//! between the daemon and the key helper it runs as the user (`client`,
//! with the one PIN loop). Beside `signin`, which does the same for sign-in.

pub mod client;
pub mod proof;
pub mod register;

#[cfg(test)]
mod tests;

pub use proof::{proof_request, verify_proof, ProofRefusal, Proven};
pub use register::{
    check_label, enrolled_detail, registration_request, verified_key, BadLabel, EnrollRefusal,
};
