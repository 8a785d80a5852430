//! `tapctl ssh-enroll [USER@]HOST`, run on the laptop where the security
//! key is plugged in. Only OpenSSH's client tools are needed, and no root:
//!
//! 1. one ssh connection, kept as a control master (the pass is typed once);
//! 2. through it, `tapctl ssh-keys challenge --json` on the server;
//! 3. the local `ssh-keygen -t …-sk` with that challenge, writing the
//!    attestation (the user touches the key);
//! 4. through the same connection, `tapctl ssh-keys add` with the public
//!    key and the attestation;
//! 5. what to put in `~/.ssh/config`.

use crate::cli::{SshEnrollArgs, SshKeyKind};
use crate::failure::{Exit, Failure, Result};
use crate::output::{message, outln};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The server's `ssh-keys challenge --json`.
#[derive(Deserialize)]
struct Challenge {
    challenge: String,
    application: String,
    key_types: Vec<String>,
    require_verify: bool,
}

/// The server's `ssh-keys add --json`.
#[derive(Deserialize)]
struct Added {
    fingerprint: String,
    label: String,
}

impl SshKeyKind {
    fn keygen_type(self) -> &'static str {
        match self {
            SshKeyKind::Ed25519Sk => "ed25519-sk",
            SshKeyKind::EcdsaSk => "ecdsa-sk",
        }
    }

    fn openssh_name(self) -> &'static str {
        match self {
            SshKeyKind::Ed25519Sk => "sk-ssh-ed25519@openssh.com",
            SshKeyKind::EcdsaSk => "sk-ecdsa-sha2-nistp256@openssh.com",
        }
    }

    fn file_stem(self) -> &'static str {
        match self {
            SshKeyKind::Ed25519Sk => "id_ed25519_sk",
            SshKeyKind::EcdsaSk => "id_ecdsa_sk",
        }
    }
}

fn failure(exit: Exit, message: impl Into<String>) -> Failure {
    Failure::new(exit, message)
}

/// One word for the remote shell, whatever it holds.
fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A private directory for the control socket, the challenge and the
/// attestation; removed, with the master connection closed, on drop.
struct Session {
    dir: PathBuf,
    target: String,
    options: Vec<String>,
    remote_tapctl: String,
    master: bool,
}

impl Session {
    fn new(args: &SshEnrollArgs) -> Result<Session> {
        // Short names: ssh adds 17 characters to the control socket's
        // path, and a socket's whole path must fit in 108 bytes.
        let mut random = [0u8; 4];
        tap_core::keys::random_bytes(&mut random)
            .map_err(|e| failure(Exit::Internal, e.to_string()))?;
        let name: String = random.iter().map(|b| format!("{b:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("tapctl-{name}"));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| {
                failure(
                    Exit::Internal,
                    format!("cannot create {}: {e}", dir.display()),
                )
            })?;
        Ok(Session {
            dir,
            target: args.target.clone(),
            options: args.ssh_options.clone(),
            remote_tapctl: args.remote_tapctl.clone(),
            master: false,
        })
    }

    fn control(&self) -> PathBuf {
        self.dir.join("c")
    }

    /// ssh with the control socket and the user's `-o` options.
    fn ssh(&self) -> Command {
        let mut ssh = Command::new("ssh");
        ssh.arg("-S").arg(self.control());
        for option in &self.options {
            ssh.arg("-o").arg(option);
        }
        ssh
    }

    /// Signs in once; ssh goes to the background when it has.
    fn open(&mut self) -> Result<()> {
        message(&format!(
            "Signing in to {} (your Temporary Access Pass, once)...",
            self.target
        ));
        let status = self
            .ssh()
            .args(["-M", "-f", "-N", "-o", "ControlPersist=300"])
            .arg("--")
            .arg(&self.target)
            .status()
            .map_err(|e| failure(Exit::Internal, format!("cannot run ssh: {e}")))?;
        if !status.success() {
            return Err(failure(
                Exit::NotPermitted,
                format!("could not sign in to {} with ssh", self.target),
            ));
        }
        self.master = true;
        Ok(())
    }

    /// Runs `tapctl ARGS…` on the server through the open connection.
    fn tapctl(&self, args: &[&str], stdin: Option<&[u8]>) -> Result<Output> {
        let remote = std::iter::once(shell_quote(&self.remote_tapctl))
            .chain(args.iter().map(|a| shell_quote(a)))
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = self
            .ssh()
            .args(["-o", "ControlMaster=no", "-T"])
            .arg("--")
            .arg(&self.target)
            .arg(remote)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| failure(Exit::Internal, format!("cannot run ssh: {e}")))?;
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            pipe.write_all(bytes)
                .map_err(|e| failure(Exit::Internal, format!("cannot write to ssh: {e}")))?;
        }
        child
            .wait_with_output()
            .map_err(|e| failure(Exit::Internal, format!("ssh: {e}")))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.master {
            let _ = self
                .ssh()
                .args(["-O", "exit"])
                .arg("--")
                .arg(&self.target)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// This machine's name, for the key's default label on the server.
fn local_host() -> String {
    tap_core::sys::host_name().unwrap_or_else(|| "a laptop".into())
}

/// The host part of `[user@]host`, for file names and the config block.
fn host_of(target: &str) -> &str {
    target.rsplit_once('@').map_or(target, |(_, host)| host)
}

fn default_key_file(kind: SshKeyKind, host: &str) -> Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| failure(Exit::Usage, "HOME is not set: give --key-file PATH"))?;
    let safe: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Ok(Path::new(&home)
        .join(".ssh")
        .join(format!("{}_{safe}", kind.file_stem())))
}

pub fn run(args: SshEnrollArgs) -> Result<()> {
    if args.target.is_empty() || args.target.starts_with('-') {
        return Err(failure(Exit::Usage, "give the server as [USER@]HOST"));
    }
    let host = host_of(&args.target).to_string();
    let key_file = match &args.key_file {
        Some(path) => path.clone(),
        None => default_key_file(args.key_type, &host)?,
    };
    let public_file = PathBuf::from(format!("{}.pub", key_file.display()));
    for file in [&key_file, &public_file] {
        if file.exists() {
            return Err(failure(
                Exit::Usage,
                format!(
                    "{} exists already; give another --key-file (nothing was changed)",
                    file.display()
                ),
            ));
        }
    }
    if let Some(parent) = key_file.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| {
                failure(
                    Exit::Usage,
                    format!("cannot create {}: {e}", parent.display()),
                )
            })?;
    }

    let mut session = Session::new(&args)?;
    session.open()?;
    let challenge = fetch_challenge(&session)?;
    let wanted = args.key_type.openssh_name();
    if !challenge.key_types.iter().any(|t| t == wanted) {
        return Err(failure(
            Exit::NotPermitted,
            format!(
                "{host} does not accept {wanted} keys; it accepts: {}",
                challenge.key_types.join(", ")
            ),
        ));
    }
    let challenge_file = session.dir.join("challenge");
    let attestation_file = session.dir.join("attestation");
    write_private(&challenge_file, challenge.challenge.as_bytes())?;

    let label = args
        .label
        .clone()
        .unwrap_or_else(|| format!("{} from {}", args.key_type.keygen_type(), local_host()));
    make_key(
        &args,
        &key_file,
        &challenge,
        &challenge_file,
        &attestation_file,
    )?;
    let uploaded = upload(&session, &label, &public_file, &attestation_file);
    let added = match uploaded {
        Ok(added) => added,
        Err(e) => {
            // An unenrolled key would only mislead: remove it.
            let _ = fs::remove_file(&key_file);
            let _ = fs::remove_file(&public_file);
            return Err(e);
        }
    };
    drop(session);

    outln(&format!(
        "Enrolled SSH key {:?} ({}) on {host}. Your key is in {}.",
        added.label,
        added.fingerprint,
        key_file.display()
    ))?;
    outln("\nAdd this to ~/.ssh/config, then `ssh HOST` signs in by a touch:\n")?;
    let user_line = args
        .target
        .rsplit_once('@')
        .map(|(user, _)| format!("    User {user}\n"))
        .unwrap_or_default();
    outln(&format!(
        "Host {host}\n{user_line}    IdentityFile {}\n    IdentitiesOnly yes",
        key_file.display()
    ))
}

fn fetch_challenge(session: &Session) -> Result<Challenge> {
    let output = session.tapctl(&["ssh-keys", "challenge", "--json"], None)?;
    if !output.status.success() {
        return Err(failure(
            Exit::NotPermitted,
            "the server refused a challenge (its message is above)",
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        failure(
            Exit::Internal,
            format!("the server's tapctl answered something else than a challenge: {e}"),
        )
    })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| {
            failure(
                Exit::Internal,
                format!("cannot write {}: {e}", path.display()),
            )
        })
}

fn make_key(
    args: &SshEnrollArgs,
    key_file: &Path,
    challenge: &Challenge,
    challenge_file: &Path,
    attestation_file: &Path,
) -> Result<()> {
    message("Touch your security key when it blinks.");
    let mut keygen = Command::new("ssh-keygen");
    keygen
        .args(["-t", args.key_type.keygen_type(), "-f"])
        .arg(key_file)
        .arg("-O")
        .arg(format!("application={}", challenge.application))
        .arg("-O")
        .arg(format!("challenge={}", challenge_file.display()))
        .arg("-O")
        .arg(format!("write-attestation={}", attestation_file.display()))
        .args(["-C", ""]);
    if challenge.require_verify {
        keygen.args(["-O", "verify-required"]);
    }
    if args.no_passphrase {
        keygen.args(["-N", ""]);
    }
    let status = keygen
        .stdout(Stdio::null())
        .status()
        .map_err(|e| failure(Exit::Internal, format!("cannot run ssh-keygen: {e}")))?;
    if !status.success() {
        return Err(failure(
            Exit::NotPermitted,
            "ssh-keygen could not make the key (its message is above); nothing was enrolled",
        ));
    }
    Ok(())
}

fn upload(
    session: &Session,
    label: &str,
    public_file: &Path,
    attestation_file: &Path,
) -> Result<Added> {
    let read = |path: &Path| {
        fs::read(path).map_err(|e| {
            failure(
                Exit::Internal,
                format!("cannot read {}: {e}", path.display()),
            )
        })
    };
    let public_key = read(public_file)?;
    let attestation = STANDARD.encode(read(attestation_file)?);
    let output = session.tapctl(
        &[
            "ssh-keys",
            "add",
            "--json",
            "--label",
            label,
            "--attestation-base64",
            &attestation,
            "-",
        ],
        Some(&public_key),
    )?;
    if !output.status.success() {
        return Err(failure(
            Exit::NotPermitted,
            "the server did not add the key (its message is above); the new key was removed",
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        failure(
            Exit::Internal,
            format!("the server's tapctl answered something else: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_words_are_single_quoted() {
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's; rm -rf /"), r"'it'\''s; rm -rf /'");
        assert_eq!(shell_quote("$(id)"), "'$(id)'");
    }

    #[test]
    fn host_is_after_the_last_at() {
        assert_eq!(host_of("alice@db1"), "db1");
        assert_eq!(host_of("db1"), "db1");
        assert_eq!(host_of("a@b@c"), "c");
    }
}
