//! Shared by the integration tests: the provider cargo built beside the
//! test binary, a software key (a state file in a temporary directory) and
//! the real /usr/bin/ssh-keygen run against it, plus readers for the
//! OpenSSH formats the tests look into.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

pub const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";

/// The provider beside the test binary, target/<profile>/deps/: cargo
/// builds this package's library (cdylib and rlib) there before it runs
/// the package's integration tests.
pub fn provider() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let so = exe
        .parent()
        .expect("target/<profile>/deps")
        .join("libpam_tap_sk_provider.so");
    assert!(so.is_file(), "{} is missing", so.display());
    so
}

/// How ssh-keygen is told about the provider.
#[derive(Clone, Copy, Debug)]
pub enum Via {
    /// `ssh-keygen -w PATH`
    Flag,
    /// `SSH_SK_PROVIDER=PATH`
    Env,
}

/// One software key: its state file, in a directory that also holds the
/// files of the test.
pub struct Device {
    pub dir: tempfile::TempDir,
    pub state: PathBuf,
    pub env: Vec<(String, String)>,
}

impl Device {
    pub fn new() -> Device {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("sk-state.json");
        Device {
            dir,
            state,
            env: Vec::new(),
        }
    }

    pub fn with_env(mut self, name: &str, value: &str) -> Device {
        self.env.push((name.into(), value.into()));
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, data).expect("write");
        path
    }

    pub fn state_json(&self) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(&self.state).expect("state")).expect("json")
    }

    /// ssh-keygen in a clean environment (no agent, no askpass, HOME in
    /// the temporary directory) with this device's state and switches.
    pub fn keygen(&self, via: Via, args: &[&str], stdin: &[u8], extra_env: &[(&str, &str)]) -> Run {
        let so = provider();
        let mut command = Command::new(SSH_KEYGEN);
        command
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.dir.path())
            .env("PAM_TAP_SK_STATE", &self.state)
            .current_dir(self.dir.path());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        for (name, value) in extra_env {
            command.env(name, value);
        }
        match via {
            Via::Flag => {
                command.arg("-w").arg(&so);
            }
            Via::Env => {
                command.env("SSH_SK_PROVIDER", &so);
            }
        }
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn ssh-keygen");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin)
            .expect("write stdin");
        Run(child.wait_with_output().expect("wait ssh-keygen"))
    }

    /// `ssh-keygen -t TYPE -O application=ssh: -O challenge=… -O
    /// write-attestation=… -N '' -f NAME [-O extra…]`
    pub fn enroll(
        &self,
        via: Via,
        key_type: &str,
        name: &str,
        challenge: &[u8],
        extra: &[&str],
    ) -> Run {
        let challenge_file = self.write(&format!("{name}.challenge"), challenge);
        let challenge_opt = format!("challenge={}", challenge_file.display());
        let attest_opt = format!(
            "write-attestation={}",
            self.path(&format!("{name}.attest")).display()
        );
        let mut args = vec![
            "-t",
            key_type,
            "-O",
            "application=ssh:",
            "-O",
            &challenge_opt,
            "-O",
            &attest_opt,
            "-N",
            "",
            "-f",
            name,
        ];
        for option in extra {
            args.push("-O");
            args.push(option);
        }
        self.keygen(via, &args, b"", &[])
    }

    /// `ssh-keygen -Y sign -f KEY -n NAMESPACE FILE` (writes FILE.sig).
    pub fn sign(&self, via: Via, key: &str, file: &str, stdin: &[u8]) -> Run {
        self.keygen(
            via,
            &["-Y", "sign", "-f", key, "-n", "file", file],
            stdin,
            &[],
        )
    }

    /// `ssh-keygen -Y verify -f ALLOWED -I PRINCIPAL -n NAMESPACE -s SIG < FILE`.
    pub fn verify(&self, key: &str, file: &str) -> Run {
        let public = std::fs::read_to_string(self.path(&format!("{key}.pub"))).expect("pub");
        let allowed = self.write(
            &format!("{key}.allowed"),
            format!("tester@example {public}").as_bytes(),
        );
        let message = std::fs::read(self.path(file)).expect("message");
        let sig = format!("{file}.sig");
        let allowed = allowed.display().to_string();
        let args = [
            "-Y",
            "verify",
            "-f",
            &allowed,
            "-I",
            "tester@example",
            "-n",
            "file",
            "-s",
            &sig,
        ];
        let mut command = Command::new(SSH_KEYGEN);
        command
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.dir.path())
            .current_dir(self.dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn ssh-keygen");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&message)
            .expect("stdin");
        Run(child.wait_with_output().expect("wait"))
    }
}

pub struct Run(pub Output);

impl Run {
    pub fn ok(&self) -> bool {
        self.0.status.success()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    #[track_caller]
    pub fn assert_ok(&self, what: &str) -> &Run {
        assert!(
            self.ok(),
            "{what} failed ({}):\nstdout: {}\nstderr: {}",
            self.0.status,
            self.stdout(),
            self.stderr()
        );
        self
    }

    #[track_caller]
    pub fn assert_fails_with(&self, what: &str, needles: &[&str]) -> &Run {
        assert!(
            !self.ok(),
            "{what} succeeded but must fail:\nstderr: {}",
            self.stderr()
        );
        let stderr = self.stderr();
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "{what}: stderr lacks {needle:?}:\n{stderr}"
            );
        }
        self
    }
}

/// Reads the SSH wire encoding (RFC 4251 §5).
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn u8(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().expect("u8");
        self.0 = rest;
        *first
    }

    pub fn u32(&mut self) -> u32 {
        let (head, rest) = self.0.split_at(4);
        self.0 = rest;
        u32::from_be_bytes(head.try_into().expect("u32"))
    }

    pub fn string(&mut self) -> &'a [u8] {
        let len = self.u32() as usize;
        assert!(
            len <= self.0.len(),
            "string of {len} bytes overruns the buffer"
        );
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        head
    }

    pub fn raw(&mut self, len: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(len);
        self.0 = rest;
        head
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The public key line of `NAME.pub`: (key type, public key bytes,
/// application).
pub fn read_public(dev: &Device, name: &str) -> (String, Vec<u8>, String) {
    let line = std::fs::read_to_string(dev.path(&format!("{name}.pub"))).expect("pub");
    let blob = STANDARD
        .decode(line.split_whitespace().nth(1).expect("base64 field"))
        .expect("base64");
    let mut reader = Reader(&blob);
    let key_type = String::from_utf8(reader.string().to_vec()).expect("type");
    if key_type == "sk-ecdsa-sha2-nistp256@openssh.com" {
        assert_eq!(reader.string(), b"nistp256");
    }
    let public = reader.string().to_vec();
    let application = String::from_utf8(reader.string().to_vec()).expect("application");
    assert!(reader.is_empty());
    (key_type, public, application)
}

/// The sk fields of an unencrypted private key file (PROTOCOL.key,
/// PROTOCOL.u2f): (sk_flags, key_handle).
pub fn read_private_sk(dev: &Device, name: &str) -> (u8, Vec<u8>) {
    let text = std::fs::read_to_string(dev.path(name)).expect("private key");
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let blob = STANDARD.decode(body).expect("base64");
    let magic = b"openssh-key-v1\0";
    assert_eq!(&blob[..magic.len()], magic);
    let mut reader = Reader(&blob[magic.len()..]);
    assert_eq!(reader.string(), b"none", "cipher");
    assert_eq!(reader.string(), b"none", "kdf");
    reader.string(); // kdf options
    assert_eq!(reader.u32(), 1, "one key");
    reader.string(); // public key
    let private = reader.string();
    let mut reader = Reader(private);
    assert_eq!(reader.u32(), reader.u32(), "check bytes");
    let key_type = reader.string().to_vec();
    if key_type == b"sk-ecdsa-sha2-nistp256@openssh.com" {
        assert_eq!(reader.string(), b"nistp256");
    }
    reader.string(); // public key
    reader.string(); // application
    let flags = reader.u8();
    let handle = reader.string().to_vec();
    (flags, handle)
}

/// The sk signature inside an armored SSHSIG file (PROTOCOL.sshsig,
/// PROTOCOL.u2f): (flags, counter).
pub fn read_signature(dev: &Device, sig_file: &str) -> (u8, u32) {
    let text = std::fs::read_to_string(dev.path(sig_file)).expect("signature");
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let blob = STANDARD.decode(body).expect("base64");
    let mut reader = Reader(&blob);
    assert_eq!(reader.raw(6), b"SSHSIG");
    assert_eq!(reader.u32(), 1);
    reader.string(); // public key
    reader.string(); // namespace
    reader.string(); // reserved
    reader.string(); // hash algorithm
    let signature = reader.string();
    assert!(reader.is_empty());
    let mut reader = Reader(signature);
    reader.string(); // signature type
    reader.string(); // the signature (ECDSA: inner r, s)
    let flags = reader.u8();
    let counter = reader.u32();
    assert!(reader.is_empty());
    (flags, counter)
}
