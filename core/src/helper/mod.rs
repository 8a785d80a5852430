//! The key helper as a process: the client (the PAM module as root, tapctl
//! as the user) starts it, writes one request, reads one answer, and kills
//! it at the touch timeout. FIDO2 device I/O never runs in the PAM host or
//! in the daemon. What the helper answers is verified elsewhere (`keys`),
//! by the daemon.

mod failure;
mod process;
pub mod runner;

pub use process::{Authenticator, HelperProcess};
pub use runner::{run_helper, run_program, Death, Garbage, HelperFailure, Program, SpawnError};
