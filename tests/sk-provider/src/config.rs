//! The environment variables that pick the state file and switch the
//! device's behaviour. Read at every call, so one test can change the
//! device between steps (ssh-sk-helper inherits the caller's environment).

use std::path::PathBuf;

use crate::api::SkError;

pub const STATE: &str = "PAM_TAP_SK_STATE";
pub const AAGUID: &str = "PAM_TAP_SK_AAGUID";
pub const PIN: &str = "PAM_TAP_SK_PIN";
pub const NO_UV: &str = "PAM_TAP_SK_NO_UV";
pub const NO_UP: &str = "PAM_TAP_SK_NO_UP";
pub const SELF_ATTESTATION: &str = "PAM_TAP_SK_SELF_ATTESTATION";
pub const API_VERSION: &str = "PAM_TAP_SK_API_VERSION";

/// The per-call switches.
#[derive(Clone, Copy, Debug, Default)]
pub struct Switches {
    /// The device can verify no user: neither built-in UV nor a PIN.
    pub no_uv: bool,
    /// The device reports no user presence (flags without UP).
    pub no_up: bool,
    /// Enrollment is self-attested: no certificate, signed by the new key.
    pub self_attestation: bool,
}

impl Switches {
    pub fn from_env() -> Switches {
        Switches {
            no_uv: flag(NO_UV),
            no_up: flag(NO_UP),
            self_attestation: flag(SELF_ATTESTATION),
        }
    }
}

/// "1" (or any value but empty and "0") turns a switch on.
fn flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

/// The state file: required, no default (a test must say which device).
pub fn state_path() -> Result<PathBuf, SkError> {
    match std::env::var_os(STATE) {
        Some(path) if !path.is_empty() => Ok(PathBuf::from(path)),
        _ => Err(SkError::DeviceNotFound(format!(
            "{STATE} is not set: it must name the software key's state file"
        ))),
    }
}

/// Applied only when the state file is created.
pub struct InitSettings {
    pub aaguid: Option<[u8; 16]>,
    pub pin: Option<String>,
}

impl InitSettings {
    pub fn from_env() -> Result<InitSettings, SkError> {
        let aaguid = match std::env::var(AAGUID) {
            Ok(text) => Some(parse_hex::<16>(&text).ok_or_else(|| {
                SkError::General(format!("{AAGUID} must be 32 hex digits, not {text:?}"))
            })?),
            Err(_) => None,
        };
        let pin = std::env::var(PIN).ok().filter(|p| !p.is_empty());
        Ok(InitSettings { aaguid, pin })
    }
}

/// The API version to report: 9.2p1's unless a test overrides it (hex) to
/// see OpenSSH refuse a mismatch.
pub fn api_version() -> u32 {
    std::env::var(API_VERSION)
        .ok()
        .and_then(|text| u32::from_str_radix(text.trim_start_matches("0x"), 16).ok())
        .unwrap_or(crate::api::API_VERSION)
}

/// `N` bytes from 2N hex digits (dashes allowed, as in UUIDs).
pub fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits: Vec<u8> = text.bytes().filter(|c| *c != b'-').collect();
    if digits.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (byte, pair) in out.iter_mut().zip(digits.chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
