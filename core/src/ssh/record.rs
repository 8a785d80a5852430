//! An enrolled OpenSSH key, as the store keeps it.

use crate::timefmt::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshKeyRecord {
    pub user: String,
    /// `ssh-keygen -l`'s SHA256 fingerprint of `blob`: how people and the
    /// store name the key. One key belongs to one user.
    pub fingerprint: String,
    /// OpenSSH's name of the type, e.g. `sk-ssh-ed25519@openssh.com`.
    pub key_type: String,
    /// The public key in OpenSSH's wire form, as checked at enrollment.
    pub blob: Vec<u8>,
    pub label: String,
    /// The FIDO application of a security key; empty for plain keys.
    pub application: String,
    /// The authenticator model, when an attestation was verified.
    pub aaguid: Option<[u8; 16]>,
    /// What was verified at enrollment.
    pub attestation: String,
    pub created: Timestamp,
    pub last_used: Option<Timestamp>,
}

impl SshKeyRecord {
    /// Whether `text` names this key: its fingerprint with or without the
    /// `SHA256:` prefix, or a prefix of that of at least 6 characters.
    pub fn answers_to(&self, text: &str) -> bool {
        let bare = self
            .fingerprint
            .strip_prefix("SHA256:")
            .unwrap_or(&self.fingerprint);
        let text = text.strip_prefix("SHA256:").unwrap_or(text);
        text.len() >= 6 && bare.starts_with(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_by_fingerprint_prefix_of_six_or_more() {
        let key = SshKeyRecord {
            user: "alice".into(),
            fingerprint: "SHA256:abcdefGHIJ".into(),
            key_type: "sk-ssh-ed25519@openssh.com".into(),
            blob: vec![1],
            label: "laptop".into(),
            application: "ssh:".into(),
            aaguid: None,
            attestation: "none".into(),
            created: 1,
            last_used: None,
        };
        assert!(key.answers_to("abcdef"));
        assert!(key.answers_to("SHA256:abcdefG"));
        assert!(!key.answers_to("abcde"));
        assert!(!key.answers_to("SHA256:abc"));
        assert!(!key.answers_to("bcdefG"));
    }
}
