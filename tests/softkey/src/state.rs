//! The software authenticator's state, kept in one JSON file so that it
//! survives across processes (enroll with one run, sign in with the next):
//!
//! ```json
//! {
//!   "version": 1,
//!   "aaguid": "736f66746b65792d70616d5f74617000",
//!   "pin_retries": 8,
//!   "credentials": [
//!     {"id": "<base64url>", "rp_id": "pam://host", "user_id": "<base64url>",
//!      "user_name": "alice", "alg": -7, "key": "<base64url COSE_Key, private>",
//!      "counter": 3}
//!   ]
//! }
//! ```
//!
//! The file is locked (flock) for the whole run and rewritten in place, so
//! its owner and mode stay what the test set up (pam_tap.so runs the helper
//! as root, tapctl as the calling user: both must be able to write it).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// "softkey-pam_tap\0": the AAGUID of a state file made without `--aaguid`.
pub const DEFAULT_AAGUID: [u8; 16] = *b"softkey-pam_tap\0";
/// PIN attempts before the PIN is blocked, as on most real keys.
pub const PIN_RETRIES: u8 = 8;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    #[serde(with = "hex16")]
    pub aaguid: [u8; 16],
    pub pin_retries: u8,
    pub credentials: Vec<Credential>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: 1,
            aaguid: DEFAULT_AAGUID,
            pin_retries: PIN_RETRIES,
            credentials: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    #[serde(with = "b64")]
    pub id: Vec<u8>,
    pub rp_id: String,
    #[serde(with = "b64")]
    pub user_id: Vec<u8>,
    pub user_name: String,
    /// COSE algorithm: -7 ES256, -8 EdDSA.
    pub alg: i64,
    /// The private key as a CBOR COSE_Key.
    #[serde(with = "b64")]
    pub key: Vec<u8>,
    pub counter: u32,
}

mod b64 {
    use super::*;
    pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&URL_SAFE_NO_PAD.encode(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)
    }
}

mod hex16 {
    use super::*;
    pub fn serialize<S: serde::Serializer>(v: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex(v))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<[u8; 16], D::Error> {
        let text = String::deserialize(d)?;
        super::parse_aaguid(&text).map_err(serde::de::Error::custom)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 hex digits, dashes allowed (the usual UUID spelling).
pub fn parse_aaguid(text: &str) -> Result<[u8; 16], String> {
    let digits: String = text.chars().filter(|c| *c != '-').collect();
    if digits.len() != 32 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("AAGUID must be 32 hex digits, not {text:?}"));
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// The state file, locked until dropped.
pub struct StateFile {
    file: File,
}

impl StateFile {
    /// Open (creating it, mode 0600, if missing) and lock the state file.
    pub fn open(path: &Path) -> Result<(StateFile, State), String> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // SAFETY: flock on a descriptor we own; blocks until other runs finish.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(format!(
                "{}: lock: {}",
                path.display(),
                std::io::Error::last_os_error()
            ));
        }
        let mut handle = StateFile { file };
        let mut text = String::new();
        handle
            .file
            .read_to_string(&mut text)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let state = if text.trim().is_empty() {
            State::default()
        } else {
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
        };
        Ok((handle, state))
    }

    pub fn save(&mut self, state: &State) -> Result<(), String> {
        let mut text = serde_json::to_vec_pretty(state).map_err(|e| e.to_string())?;
        text.push(b'\n');
        self.file.set_len(0).map_err(|e| e.to_string())?;
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| e.to_string())?;
        self.file.write_all(&text).map_err(|e| e.to_string())?;
        self.file.sync_all().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let (mut file, mut state) = StateFile::open(&path).unwrap();
        assert_eq!(state, State::default());
        state.credentials.push(Credential {
            id: vec![1, 2, 3],
            rp_id: "pam://host".into(),
            user_id: vec![9],
            user_name: "alice".into(),
            alg: -7,
            key: vec![0xa0],
            counter: 5,
        });
        state.aaguid = [0x11; 16];
        file.save(&state).unwrap();
        drop(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(r#""aaguid": "11111111111111111111111111111111""#));
        assert!(text.contains(r#""id": "AQID""#));
        let (_file, again) = StateFile::open(&path).unwrap();
        assert_eq!(again, state);
    }

    #[test]
    fn aaguid_spellings() {
        assert_eq!(
            parse_aaguid("cb69481e-8ff7-4039-93ec-0a2729a154a8").unwrap()[0],
            0xcb
        );
        assert!(parse_aaguid("cb69").is_err());
        assert!(parse_aaguid(&"zz".repeat(16)).is_err());
        assert_eq!(hex(&DEFAULT_AAGUID), "736f66746b65792d70616d5f74617000");
    }
}
