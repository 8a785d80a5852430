//! `pam_tap-keyhelper`: one CTAP2 operation on a USB security key per run.
//! It reads one JSON request on stdin and writes one JSON response on
//! stdout (core/src/keys/protocol.rs), and nothing else: whatever the HID
//! stack might print goes to /dev/null, and a panic becomes a `device`
//! failure. The caller (pam_tap.so, tapctl) verifies every answer and kills
//! this process at its touch timeout.

mod ctaphid;
mod device;
#[cfg(test)]
mod interop_tests;
mod ops;
mod sys;

use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;

use tap_core::keys::protocol::{HelperError, Request, Response, MAX_MESSAGE_BYTES};
use zeroize::Zeroizing;

fn main() -> ExitCode {
    let Some(mut out) = sys::claim_stdout() else {
        return ExitCode::from(1);
    };
    // Panics are reported as an answer, not as text on a terminal.
    std::panic::set_hook(Box::new(|_| {}));
    let response = catch_unwind(AssertUnwindSafe(run))
        .unwrap_or_else(|_| ops::failed(HelperError::Device, "the key helper failed unexpectedly"));
    if out
        .write_all(&response.to_json())
        .and_then(|()| out.flush())
        .is_err()
    {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn run() -> Response {
    let request = match read_request() {
        Ok(request) => request,
        Err(why) => return ops::failed(HelperError::BadRequest, why.to_string()),
    };
    match device::HidAuthenticator::open() {
        Ok(mut key) => ops::handle(&mut key, &request),
        Err(why @ device::OpenError::NoDevice) => {
            ops::failed(HelperError::NoDevice, why.to_string())
        }
        Err(why) => ops::failed(HelperError::Device, why.to_string()),
    }
}

/// Why there is no request to act on.
#[derive(Debug)]
enum RequestError {
    Read(std::io::Error),
    /// Not a helper request. No cause is kept: serde's message may quote a
    /// field's value, and a value may be a PIN.
    Invalid,
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Read(e) => write!(f, "reading the request: {e}"),
            RequestError::Invalid => f.write_str("the request is not a valid helper request"),
        }
    }
}

impl std::error::Error for RequestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RequestError::Read(e) => Some(e),
            RequestError::Invalid => None,
        }
    }
}

fn read_request() -> Result<Request, RequestError> {
    // The request may carry a PIN: read it into memory that is zeroed after.
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_MESSAGE_BYTES + 1));
    std::io::stdin()
        .lock()
        .take(MAX_MESSAGE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(RequestError::Read)?;
    Request::from_json(&bytes).map_err(|_| RequestError::Invalid)
}
