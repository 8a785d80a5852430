//! How sign-in reaches an authenticator: the helper process named by the
//! policy, run by the client (the PAM module as root, tapctl as the user).

use super::runner::{run_program, HelperFailure, Program, SpawnError};
use crate::keys::protocol::{Request, Response};
use crate::policy::Policy;
use std::path::Path;

/// How sign-in reaches an authenticator: the helper process in production,
/// a scripted one in unit tests.
pub trait Authenticator {
    fn call(&self, request: &Request) -> Result<Response, HelperFailure>;
}

/// The helper program named by the policy, killed at the touch timeout.
pub struct HelperProcess<'a> {
    pub program: &'a Path,
    pub timeout: std::time::Duration,
}

impl HelperProcess<'_> {
    pub fn for_policy(policy: &Policy) -> HelperProcess<'_> {
        HelperProcess {
            program: &policy.keys.helper,
            timeout: std::time::Duration::from_secs(policy.keys.touch_timeout.as_secs()),
        }
    }
}

impl Authenticator for HelperProcess<'_> {
    fn call(&self, request: &Request) -> Result<Response, HelperFailure> {
        // Run as root (the module), the helper must be as trusted as the
        // policy: anyone who could rewrite or replace it, or a directory on
        // its way, would run code as root. The file checked is the file run.
        let program = if crate::sys::euid() == 0 {
            crate::trust::open_program(self.program)
                .map_err(|e| HelperFailure::Spawn(SpawnError::Untrusted(e)))?
        } else {
            Program::open(self.program).map_err(|source| {
                HelperFailure::Spawn(SpawnError::Program {
                    path: self.program.to_path_buf(),
                    source,
                })
            })?
        };
        run_program(&program, request, self.timeout)
    }
}
