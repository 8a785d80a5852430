//! An enrolled security key, as the store keeps it.

use crate::timefmt::Timestamp;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyCredential {
    pub user: String,
    pub credential_id: Vec<u8>,
    /// The COSE_Key from the attested credential data, as the key sent it.
    pub public_key: Vec<u8>,
    /// COSE algorithm id (-7 ES256, -8 EdDSA).
    pub algorithm: i64,
    pub aaguid: [u8; 16],
    pub sign_count: u32,
    pub label: String,
    /// Attestation format, and whether its signature was verified.
    pub attestation: String,
    pub created: Timestamp,
    pub last_used: Option<Timestamp>,
}

impl KeyCredential {
    /// How people name a key: the credential id in base64url.
    pub fn id_text(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.credential_id)
    }

    /// Whether `text` names this key: its id, or a prefix of at least 6 characters.
    pub fn answers_to(&self, text: &str) -> bool {
        text.len() >= 6 && self.id_text().starts_with(text)
    }
}
