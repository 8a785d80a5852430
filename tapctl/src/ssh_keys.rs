//! OpenSSH key commands on the server: list, add, remove, challenge, and
//! `authorized-keys` for sshd.

use crate::client::Client;
use crate::commands::out_of_turn;
use crate::failure::{Exit, Failure, Result};
use crate::keys::with_proof;
use crate::output::{out, outln};
use crate::view::{print_json, table};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Serialize;
use std::io::Read;
use std::time::Duration;
use tap_core::timefmt::{to_human, to_rfc3339};
use tap_protocol::admin::{AdminReply, AdminRequest, SshKeyInfo};
use tap_protocol::helper::Bytes;

/// sshd waits on AuthorizedKeysCommand with the login: give up soon.
const AUTHORIZED_KEYS_TIMEOUT: Duration = Duration::from_millis(900);
/// A public-key line is under 1 KiB; an attestation a few KiB. Read at
/// most this much, so a wrong file is refused rather than slurped.
const MAX_INPUT_BYTES: u64 = 64 * 1024;

#[derive(Debug, Serialize)]
pub struct SshKeyView {
    pub fingerprint: String,
    pub key_type: String,
    pub label: String,
    pub application: String,
    /// The authenticator model (AAGUID), when attested.
    pub model: String,
    pub attestation: String,
    pub created: String,
    pub last_used: Option<String>,
}

impl SshKeyView {
    pub fn new(key: &SshKeyInfo) -> Self {
        SshKeyView {
            fingerprint: key.fingerprint.clone(),
            key_type: key.key_type.clone(),
            label: key.label.clone(),
            application: key.application.clone(),
            model: key.model.clone(),
            attestation: key.attestation.clone(),
            created: to_rfc3339(key.created),
            last_used: key.last_used.map(to_rfc3339),
        }
    }
}

pub fn list(client: &Client, user: Option<String>, json: bool) -> Result<()> {
    let reply = client.admin(AdminRequest::SshKeys { user })?;
    let AdminReply::SshKeys { user, keys } = reply else {
        return Err(out_of_turn(reply));
    };
    if json {
        return print_json(&keys.iter().map(SshKeyView::new).collect::<Vec<_>>());
    }
    if keys.is_empty() {
        return outln(&format!("{user} has no SSH keys."));
    }
    out(&ssh_key_table(&keys))
}

pub fn ssh_key_table(keys: &[SshKeyInfo]) -> String {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.fingerprint.clone(),
                k.label.clone(),
                k.key_type.clone(),
                to_human(k.created),
                k.last_used.map_or("never".into(), to_human),
            ]
        })
        .collect();
    table(
        &["FINGERPRINT", "LABEL", "TYPE", "CREATED", "LAST USED"],
        &rows,
    )
}

pub struct AddArgs {
    pub file: String,
    pub label: Option<String>,
    pub attestation: Option<String>,
    pub attestation_base64: Option<String>,
    pub user: Option<String>,
    pub json: bool,
}

pub fn add(client: &Client, args: AddArgs) -> Result<()> {
    if args.file == "-" && args.attestation.as_deref() == Some("-") {
        return Err(Failure::new(
            Exit::Usage,
            "the key and --attestation cannot both come from stdin: give one of them as a file",
        ));
    }
    let key_bytes = read_input(&args.file, "the public key")?;
    let key = String::from_utf8(key_bytes).map_err(|_| {
        Failure::new(
            Exit::Usage,
            format!(
                "{}: not a public-key line (give the .pub file, not the private key)",
                shown(&args.file)
            ),
        )
    })?;
    let attestation = match (&args.attestation, &args.attestation_base64) {
        (Some(file), _) => Some(read_input(file, "the attestation")?),
        (None, Some(text)) => Some(
            STANDARD
                .decode(text.trim())
                .map_err(|e| Failure::new(Exit::Usage, format!("--attestation-base64: {e}")))?,
        ),
        (None, None) => None,
    };
    let reply = client.admin(AdminRequest::AddSshKey {
        user: args.user,
        key,
        label: args.label,
        attestation: attestation.map(Bytes),
    })?;
    let AdminReply::SshKeyAdded { user, key } = reply else {
        return Err(out_of_turn(reply));
    };
    if args.json {
        return print_json(&SshKeyView::new(&key));
    }
    outln(&format!(
        "Added SSH key {:?} ({}) for {user}; {}.",
        key.label, key.fingerprint, key.attestation
    ))
}

fn shown(file: &str) -> &str {
    if file == "-" {
        "stdin"
    } else {
        file
    }
}

/// A file's bytes, or stdin's for `-`, bounded.
fn read_input(file: &str, what: &str) -> Result<Vec<u8>> {
    let unreadable = |e: std::io::Error| {
        Failure::new(
            Exit::Usage,
            format!("cannot read {what} from {}: {e}", shown(file)),
        )
    };
    let mut bytes = Vec::new();
    if file == "-" {
        std::io::stdin()
            .lock()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(unreadable)?;
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes))
            .map_err(unreadable)?;
    }
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(Failure::new(
            Exit::Usage,
            format!(
                "{what} in {} is larger than {MAX_INPUT_BYTES} bytes: that is not it",
                shown(file)
            ),
        ));
    }
    Ok(bytes)
}

pub fn remove(client: &Client, user: Option<String>, id: String) -> Result<()> {
    let request = |proof| AdminRequest::RemoveSshKey {
        user: user.clone(),
        id: id.clone(),
        proof,
    };
    match with_proof(client, request)? {
        AdminReply::SshKeyRemoved {
            user,
            label,
            fingerprint,
        } => outln(&format!(
            "Removed {user}'s SSH key {label:?} ({fingerprint})."
        )),
        other => Err(out_of_turn(other)),
    }
}

#[derive(Serialize)]
pub struct ChallengeView {
    pub challenge: String,
    pub application: String,
    pub key_types: Vec<String>,
    pub require_verify: bool,
    pub require_attestation: bool,
    pub expires: String,
}

/// Prints the challenge alone (for `> FILE`), or everything as JSON.
pub fn challenge(client: &Client, json: bool) -> Result<()> {
    let reply = client.admin(AdminRequest::SshChallenge {})?;
    let AdminReply::SshChallenge {
        challenge,
        application,
        key_types,
        require_verify,
        require_attestation,
        expires,
    } = reply
    else {
        return Err(out_of_turn(reply));
    };
    if json {
        return print_json(&ChallengeView {
            challenge,
            application,
            key_types,
            require_verify,
            require_attestation,
            expires: to_rfc3339(expires),
        });
    }
    outln(&challenge)
}

/// sshd reads stdout: the lines, or nothing at all. Any failure leaves
/// stdout empty and says why on stderr (sshd logs it at debug level).
pub fn authorized_keys(client: &Client, user: &str) -> Result<()> {
    let client =
        Client::new(Some(client.socket().to_path_buf())).with_timeout(AUTHORIZED_KEYS_TIMEOUT);
    let reply = client.admin(AdminRequest::AuthorizedKeys { user: user.into() })?;
    let AdminReply::AuthorizedKeys { lines } = reply else {
        return Err(out_of_turn(reply));
    };
    if lines.is_empty() {
        return Ok(());
    }
    out(&(lines.join("\n") + "\n"))
}
