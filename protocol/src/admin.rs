//! tapctl's requests (administration and self-service) and their replies.
//!
//! Who asks is the peer of the socket; no request names its sender. Every
//! request is one connection. Two commands take more than one request,
//! because a security key is touched in between, by the key helper tapctl
//! runs as the user:
//!
//! * `enroll`: `EnrollBegin` → `ProveKey` (no enrollment window: touch a
//!   key you already have, then `EnrollBegin` again with the `proof`) or
//!   `Register` (run the helper with it) → `EnrollFinish` → `Enrolled`.
//! * `keys remove` by a non-admin outside a window: `RemoveKey` →
//!   `ProveKey` → `RemoveKey` with the `proof` → `KeyRemoved`.
//!
//! Times are Unix seconds; the client formats them.

use crate::helper::{AssertRequest, Bytes, RegisterRequest};
use crate::secret::Secret;
use crate::signin::Reason;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminRequest {
    /// Create or migrate the store (root only). Unit variants are written
    /// `{}` so that unknown fields are refused for them too (serde ignores
    /// them beside an internal tag otherwise).
    Init {},
    /// Issue a pass, replacing any the user had. The daemon parses and
    /// bounds the lifetime and start against its policy.
    Issue {
        user: String,
        /// A duration such as `90m`; none: the policy's default.
        lifetime: Option<String>,
        /// RFC 3339, or `+DURATION` from now; none: now.
        start: Option<String>,
        one_time: bool,
    },
    Show {
        user: String,
    },
    List {},
    Revoke {
        user: String,
    },
    Audit {
        user: Option<String>,
        /// Only the records this host wrote (its name as the store keeps
        /// it). Absent from older clients' requests: every host.
        #[serde(default)]
        host: Option<String>,
        limit: u32,
    },
    /// The keys of `user`, or the caller's own.
    Keys {
        user: Option<String>,
    },
    /// Remove the key whose id is, or starts with, `id` (6+ characters).
    RemoveKey {
        user: Option<String>,
        id: String,
        proof: Option<KeyProof>,
    },
    /// The caller's pass, enrollment window and keys.
    Status {},
    /// Start enrolling a key for the caller.
    EnrollBegin {
        label: Option<String>,
        proof: Option<KeyProof>,
    },
    /// The helper's answer to `Register`.
    EnrollFinish {
        /// The request's `client_data_hash`, naming the challenge.
        challenge: Bytes,
        label: Option<String>,
        answer: Registration,
    },
    /// The SSH keys of `user`, or the caller's own.
    SshKeys {
        user: Option<String>,
    },
    /// A challenge for `ssh-keygen -O challenge=…`, for the caller to
    /// attest a new SSH key with.
    SshChallenge {},
    /// Add an SSH key: the caller's own inside their enrollment window, or
    /// an admin's for `user`.
    AddSshKey {
        user: Option<String>,
        /// One public-key line, as in a `.pub` file.
        key: String,
        label: Option<String>,
        /// OpenSSH's `write-attestation` output, for a challenge from
        /// `SshChallenge`.
        attestation: Option<Bytes>,
    },
    /// Remove the SSH key whose fingerprint is, or starts with, `id`.
    RemoveSshKey {
        user: Option<String>,
        id: String,
        proof: Option<KeyProof>,
    },
    /// The lines sshd's `AuthorizedKeysCommand` prints for `user`.
    AuthorizedKeys {
        user: String,
    },
    /// sshd accepted a public key for `user` (root only: the PAM session
    /// passes on sshd's `SSH_AUTH_INFO_0`).
    SshKeyUsed {
        user: String,
        /// sshd's `SSH_AUTH_INFO_0`, as sshd set it.
        auth_info: String,
        service: String,
        rhost: String,
        tty: String,
    },
}

/// The key helper's answer to a `ProveKey` assertion request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyProof {
    /// The request's `client_data_hash`, naming the challenge.
    pub challenge: Bytes,
    pub credential_id: Bytes,
    pub authenticator_data: Bytes,
    pub signature: Bytes,
}

/// The key helper's answer to a `Register` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub authenticator_data: Bytes,
    pub attestation_format: String,
    pub attestation_statement: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminReply {
    StoreReady {
        path: String,
    },
    Issued {
        /// The clear pass, grouped for reading; shown once.
        pass: Secret,
        info: PassInfo,
        /// The user had a pass before, now replaced.
        replaced: bool,
    },
    Pass {
        info: PassInfo,
    },
    Passes {
        passes: Vec<PassInfo>,
        /// Where the store is (for "no passes in …").
        store: String,
    },
    Revoked {
        user: String,
    },
    Audit {
        records: Vec<AuditEntry>,
    },
    Keys {
        user: String,
        keys: Vec<KeyInfo>,
    },
    Status {
        user: String,
        pass: Option<PassInfo>,
        enroll_window_until: Option<i64>,
        keys: Vec<KeyInfo>,
        ssh_keys: Vec<SshKeyInfo>,
    },
    /// Touch a key you already have: run the helper with `request` and send
    /// the first request again with its answer as `proof`.
    ProveKey {
        request: AssertRequest,
        helper: KeyHelper,
    },
    /// Run the helper with `request`, then send `EnrollFinish`.
    Register {
        request: RegisterRequest,
        helper: KeyHelper,
    },
    Enrolled {
        user: String,
        label: String,
    },
    KeyRemoved {
        user: String,
        label: String,
    },
    SshKeys {
        user: String,
        keys: Vec<SshKeyInfo>,
    },
    SshChallenge {
        /// Printable text; `ssh-keygen -O challenge=FILE` reads it from a
        /// file holding exactly it (a trailing newline is accepted too).
        challenge: String,
        /// What the new key must be made for, under the daemon's policy.
        application: String,
        key_types: Vec<String>,
        require_verify: bool,
        require_attestation: bool,
        expires: i64,
    },
    SshKeyAdded {
        user: String,
        key: SshKeyInfo,
    },
    SshKeyRemoved {
        user: String,
        label: String,
        fingerprint: String,
    },
    /// Authorized-keys lines, options first; none for a user without keys,
    /// out of the policy's scope, or unknown.
    AuthorizedKeys {
        lines: Vec<String>,
    },
    SshKeyUsed {
        /// Whether an enrolled key of the user's was named.
        recorded: bool,
    },
}

/// An enrolled SSH key, as tapctl shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshKeyInfo {
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    pub key_type: String,
    pub label: String,
    pub application: String,
    /// The authenticator model (AAGUID), formatted; empty when unattested.
    pub model: String,
    pub attestation: String,
    pub created: i64,
    pub last_used: Option<i64>,
}

/// The key helper the daemon's policy names, for tapctl to run as the
/// user (tapctl reads no policy of its own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyHelper {
    pub program: String,
    pub touch_timeout_secs: u64,
}

/// A pass as tapctl shows it; never its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassInfo {
    pub user: String,
    pub start: i64,
    pub expires: i64,
    pub one_time: bool,
    /// Its usability now, under the daemon's policy.
    pub reason: Reason,
    pub failures: u32,
    pub max_failures: u32,
    pub issued_by: String,
    pub created: i64,
    pub used_at: Option<i64>,
    pub last_used: Option<i64>,
    pub locked_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// An enrolled key, as tapctl shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyInfo {
    /// The credential id, base64url.
    pub id: String,
    pub label: String,
    /// The authenticator model (AAGUID), formatted.
    pub model: String,
    pub algorithm: String,
    pub sign_count: u32,
    pub attestation: String,
    pub created: i64,
    pub last_used: Option<i64>,
}

/// One audit record, with the fields (and order) `tapctl audit --json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    pub seq: i64,
    pub time: i64,
    pub event: String,
    pub user: String,
    pub actor: String,
    pub service: String,
    pub rhost: String,
    pub tty: String,
    pub detail: String,
    /// The host that wrote it.
    pub host: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Request, Response};

    #[test]
    fn wire_form_round_trips_and_is_strict() {
        let request = Request::Admin(AdminRequest::RemoveKey {
            user: None,
            id: "-abcdef".into(),
            proof: Some(KeyProof {
                challenge: Bytes(vec![1; 32]),
                credential_id: Bytes(vec![2]),
                authenticator_data: Bytes(vec![3]),
                signature: Bytes(vec![4]),
            }),
        });
        let framed = crate::frame::encode(&request).unwrap_or_default();
        let back: Request = crate::frame::decode(&framed[4..]).unwrap_or(Request::Ping);
        assert_eq!(back, request);
        let json = String::from_utf8_lossy(&framed[4..]).to_string();
        assert!(json.contains(r#""command":"remove_key""#), "{json}");

        assert!(crate::frame::decode::<Request>(
            br#"{"v":1,"body":{"admin":{"command":"list","as_user":"root"}}}"#
        )
        .is_err());
        assert!(crate::frame::decode::<Request>(
            br#"{"v":1,"body":{"admin":{"command":"status","uid":0}}}"#
        )
        .is_err());
        assert!(
            crate::frame::decode::<Request>(br#"{"v":1,"body":{"admin":{"command":"list"}}}"#)
                .is_ok()
        );
    }

    #[test]
    fn the_clear_pass_stays_out_of_debug() {
        let reply = Response::Admin(AdminReply::Issued {
            pass: Secret::new("ABCD-EFGH"),
            info: PassInfo {
                user: "alice".into(),
                start: 1,
                expires: 2,
                one_time: false,
                reason: Reason::EnabledByPolicy,
                failures: 0,
                max_failures: 5,
                issued_by: "root".into(),
                created: 1,
                used_at: None,
                last_used: None,
                locked_at: None,
                revoked_at: None,
            },
            replaced: false,
        });
        assert!(!format!("{reply:?}").contains("ABCD"));
        let framed = crate::frame::encode(&reply).unwrap_or_default();
        assert_eq!(
            crate::frame::decode::<Response>(&framed[4..]).ok(),
            Some(reply)
        );
    }
}
