//! The session hook: after sshd accepted a public key, it names the key in
//! `SSH_AUTH_INFO_0` (OpenSSH's auth-pam.c sets it for the account and
//! session stages); tapd records the use of an enrolled SSH key, for the
//! `sshd` service only. It never decides anything, so it never fails a
//! session: whatever happens, the answer is PAM_SUCCESS (recorded) or
//! PAM_IGNORE.

use crate::args::ModuleArgs;
use crate::sys;
use pam::constants::PamResultCode;
use pam::items::{RHost, Service, Tty};
use pam::module::PamHandle;
use std::time::Duration;
use tap_core::audit::{syslog, Severity};
use tap_protocol::admin::{AdminReply, AdminRequest};
use tap_protocol::{Request, Response};

/// A session start waits on this at most.
const RECORD_TIMEOUT: Duration = Duration::from_secs(1);

pub fn open(pamh: &mut PamHandle, args: &ModuleArgs) -> PamResultCode {
    // Only sshd sets the variable; elsewhere (a pam_env reading the user's
    // own files, say) it could be the user's to write.
    if crate::item::<Service>(pamh) != "sshd" {
        return PamResultCode::PAM_IGNORE;
    }
    let Some(auth_info) = sys::getenv(pamh, "SSH_AUTH_INFO_0") else {
        return PamResultCode::PAM_IGNORE;
    };
    if !auth_info.lines().any(|l| l.starts_with("publickey ")) {
        return PamResultCode::PAM_IGNORE;
    }
    let user = match pamh.get_user(None) {
        Ok(user) if !user.is_empty() => user,
        _ => return PamResultCode::PAM_IGNORE,
    };
    let request = Request::Admin(AdminRequest::SshKeyUsed {
        user,
        auth_info,
        service: crate::item::<Service>(pamh),
        rhost: crate::item::<RHost>(pamh),
        tty: crate::item::<Tty>(pamh),
    });
    let prefix = format!("pam_tap({}:session)", crate::item::<Service>(pamh));
    match tap_core::daemon::call(&args.socket, &request, RECORD_TIMEOUT) {
        Ok(Response::Admin(AdminReply::SshKeyUsed { recorded: true })) => {
            PamResultCode::PAM_SUCCESS
        }
        Ok(Response::Admin(AdminReply::SshKeyUsed { recorded: false })) => {
            PamResultCode::PAM_IGNORE
        }
        Ok(other) => {
            syslog(
                Severity::Warning,
                &prefix,
                &format!("tapd did not record the SSH key's use: {other:?}"),
            );
            PamResultCode::PAM_IGNORE
        }
        Err(e) => {
            syslog(
                Severity::Warning,
                &prefix,
                &format!("the SSH key's use is not recorded: {e}"),
            );
            PamResultCode::PAM_IGNORE
        }
    }
}
