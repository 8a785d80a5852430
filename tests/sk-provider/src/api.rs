//! The constants of OpenSSH 9.2p1's `sk-api.h`, and the provider's errors
//! as the API's error codes.

use std::fmt;

/// `SSH_SK_VERSION_MAJOR` of 9.2p1: ssh-sk.c refuses a provider whose
/// `sk_api_version() & 0xffff0000` differs.
pub const API_VERSION: u32 = 0x000a_0000;

pub const USER_PRESENCE_REQD: u8 = 0x01;
pub const USER_VERIFICATION_REQD: u8 = 0x04;
pub const FORCE_OPERATION: u8 = 0x10;
pub const RESIDENT_KEY: u8 = 0x20;

pub const ALG_ECDSA: u32 = 0x00;
pub const ALG_ED25519: u32 = 0x01;

pub const ERR_GENERAL: i32 = -1;
pub const ERR_UNSUPPORTED: i32 = -2;
pub const ERR_PIN_REQUIRED: i32 = -3;
pub const ERR_DEVICE_NOT_FOUND: i32 = -4;

/// The two key types OpenSSH asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    /// `sk-ecdsa-sha2-nistp256@openssh.com`: COSE ES256.
    Es256,
    /// `sk-ssh-ed25519@openssh.com`: COSE EdDSA.
    Ed25519,
}

impl Alg {
    pub fn from_api(alg: u32) -> Result<Alg, SkError> {
        match alg {
            ALG_ECDSA => Ok(Alg::Es256),
            ALG_ED25519 => Ok(Alg::Ed25519),
            other => Err(SkError::Unsupported(format!("algorithm {other}"))),
        }
    }

    pub fn byte(self) -> u8 {
        match self {
            Alg::Es256 => 0,
            Alg::Ed25519 => 1,
        }
    }
}

/// Why an operation failed, each with the code OpenSSH maps it from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkError {
    /// Bad input or a broken state file (`SSH_SK_ERR_GENERAL`).
    General(String),
    /// The device cannot do what was asked (`SSH_SK_ERR_UNSUPPORTED`).
    Unsupported(String),
    /// User verification needs a (correct) PIN (`SSH_SK_ERR_PIN_REQUIRED`;
    /// ssh-keygen then asks for one).
    PinRequired(String),
    /// No device, or no device that knows this key handle
    /// (`SSH_SK_ERR_DEVICE_NOT_FOUND`).
    DeviceNotFound(String),
}

impl SkError {
    pub fn code(&self) -> i32 {
        match self {
            SkError::General(_) => ERR_GENERAL,
            SkError::Unsupported(_) => ERR_UNSUPPORTED,
            SkError::PinRequired(_) => ERR_PIN_REQUIRED,
            SkError::DeviceNotFound(_) => ERR_DEVICE_NOT_FOUND,
        }
    }
}

impl fmt::Display for SkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkError::General(why) => write!(f, "{why}"),
            SkError::Unsupported(why) => write!(f, "unsupported: {why}"),
            SkError::PinRequired(why) => write!(f, "PIN required: {why}"),
            SkError::DeviceNotFound(why) => write!(f, "device not found: {why}"),
        }
    }
}
