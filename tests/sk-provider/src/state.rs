//! The device's state, one small JSON file:
//!
//! ```json
//! {"version": 1, "aaguid": "<32 hex>", "device_secret": "<64 hex>",
//!  "attestation_key": "<64 hex>", "counter": 7, "uv": true, "pin": null}
//! ```
//!
//! Created mode 0600 on first use. Every call holds an exclusive `flock` on
//! the file from read to write-back and rewrites it in place, so processes
//! sharing one device see its counter move one step per operation and the
//! file keeps the owner and mode the test gave it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::api::SkError;
use crate::config::{hex, parse_hex, InitSettings};
use crate::sys;

/// "pam_tap-sk-soft\0": the AAGUID when `PAM_TAP_SK_AAGUID` is not set.
pub const DEFAULT_AAGUID: [u8; 16] = *b"pam_tap-sk-soft\0";

#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    #[serde(with = "hex_bytes")]
    pub aaguid: [u8; 16],
    /// Keys are derived from it and the key handle; it never leaves the file.
    #[serde(with = "hex_bytes")]
    pub device_secret: [u8; 32],
    /// The P-256 scalar that signs attestations and the certificate.
    #[serde(with = "hex_bytes")]
    pub attestation_key: [u8; 32],
    /// The signature counter, one for the whole device.
    pub counter: u32,
    /// Built-in user verification (a fingerprint that always matches).
    pub uv: bool,
    /// The client PIN, if one is set.
    pub pin: Option<String>,
}

impl State {
    fn fresh(init: &InitSettings) -> Result<State, SkError> {
        let mut device_secret = [0u8; 32];
        random(&mut device_secret)?;
        // Any 32 bytes below the group order will do; retry the rest.
        let attestation_key = loop {
            let mut scalar = [0u8; 32];
            random(&mut scalar)?;
            if p256::SecretKey::from_slice(&scalar).is_ok() {
                break scalar;
            }
        };
        Ok(State {
            version: 1,
            aaguid: init.aaguid.unwrap_or(DEFAULT_AAGUID),
            device_secret,
            attestation_key,
            counter: 0,
            uv: true,
            pin: init.pin.clone(),
        })
    }
}

pub fn random(buf: &mut [u8]) -> Result<(), SkError> {
    getrandom::getrandom(buf).map_err(|e| SkError::General(format!("getrandom: {e}")))
}

/// The open, locked state file; the lock goes with the descriptor.
pub struct StateFile {
    file: File,
    path: PathBuf,
}

impl StateFile {
    /// Opens (creating if missing) and locks the file; a new or empty file
    /// gets a fresh device from `init`.
    pub fn open(path: &Path) -> Result<(StateFile, State), SkError> {
        let fail = |what: &str, e: std::io::Error| {
            SkError::DeviceNotFound(format!("{}: {what}: {e}", path.display()))
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| fail("open", e))?;
        if !file.metadata().map_err(|e| fail("stat", e))?.is_file() {
            return Err(SkError::DeviceNotFound(format!(
                "{}: not a regular file",
                path.display()
            )));
        }
        sys::lock_exclusive(&file).map_err(|e| fail("flock", e))?;
        let mut handle = StateFile {
            file,
            path: path.to_path_buf(),
        };
        let mut text = zeroize::Zeroizing::new(String::new());
        handle
            .file
            .read_to_string(&mut text)
            .map_err(|e| fail("read", e))?;
        if text.trim().is_empty() {
            let state = State::fresh(&InitSettings::from_env()?)?;
            handle.save(&state)?;
            return Ok((handle, state));
        }
        let state: State = serde_json::from_str(&text)
            .map_err(|e| SkError::General(format!("{}: {e}", path.display())))?;
        if state.version != 1 {
            return Err(SkError::General(format!(
                "{}: unknown state version {}",
                path.display(),
                state.version
            )));
        }
        Ok((handle, state))
    }

    /// Rewrites the file in place, still under the lock: other users of the
    /// device wait on the lock, so none sees a half-written file.
    pub fn save(&mut self, state: &State) -> Result<(), SkError> {
        let text = zeroize::Zeroizing::new(
            serde_json::to_string_pretty(state)
                .map_err(|e| SkError::General(format!("encode state: {e}")))?,
        );
        let write = |file: &mut File| -> std::io::Result<()> {
            file.seek(SeekFrom::Start(0))?;
            file.write_all(text.as_bytes())?;
            file.write_all(b"\n")?;
            file.set_len(text.len() as u64 + 1)?;
            file.sync_data()
        };
        write(&mut self.file)
            .map_err(|e| SkError::General(format!("{}: write: {e}", self.path.display())))
    }
}

mod hex_bytes {
    use super::*;

    pub fn serialize<S: serde::Serializer, const N: usize>(
        v: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex(v))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let text = zeroize::Zeroizing::new(String::deserialize(d)?);
        parse_hex::<N>(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("expected {} hex digits", 2 * N)))
    }
}
