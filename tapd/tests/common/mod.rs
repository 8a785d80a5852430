//! A real tapd on a private socket, with a policy and store of its own.
//! Under /run, not /tmp: tapd refuses a policy below a directory others
//! may write. The directory is 0755 so another uid can reach the socket.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tap_protocol::frame::encode;
use tap_protocol::{read_message, Request, Response, MAX_RESPONSE_BYTES};

pub const TAPD: &str = env!("CARGO_BIN_EXE_tapd");

pub struct Dir {
    pub dir: tempfile::TempDir,
}

impl Dir {
    pub fn new() -> Dir {
        let dir = tempfile::Builder::new()
            .prefix("tapd-test-")
            .tempdir_in("/run")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let dir = Dir { dir };
        dir.write_policy("");
        dir
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn policy(&self) -> PathBuf {
        self.path().join("pam_tap.toml")
    }

    pub fn socket(&self) -> PathBuf {
        self.path().join("run").join("tapd.sock")
    }

    pub fn store(&self) -> PathBuf {
        self.path().join("state").join("tap.db")
    }

    /// The policy: `extra` after a store line naming this directory's.
    /// Written beside and renamed, as an editor does.
    pub fn write_policy(&self, extra: &str) {
        let text = format!("store = {:?}\n{extra}", self.store());
        let new = self.path().join("pam_tap.toml.new");
        std::fs::write(&new, text).unwrap();
        std::fs::set_permissions(&new, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::rename(&new, self.policy()).unwrap();
    }
}

pub struct Daemon {
    pub dir: Dir,
    pub child: Child,
}

impl Daemon {
    /// tapd on its own socket, ready to answer.
    pub fn start(dir: Dir) -> Daemon {
        let child = Command::new(TAPD)
            .arg("--policy")
            .arg(dir.policy())
            .arg("--socket")
            .arg(dir.socket())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let daemon = Daemon { dir, child };
        wait_for_pong(&daemon.dir.socket(), Duration::from_secs(10));
        daemon
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.socket()
    }

    pub fn ping(&self) -> Duration {
        ping(&self.socket())
    }

    /// Still running?
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends raw bytes as one request and reads the one response.
pub fn exchange(socket: &Path, bytes: &[u8]) -> Response {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The daemon may refuse (and close) before taking all of it.
    let _ = stream.write_all(bytes);
    read_message(&mut stream, MAX_RESPONSE_BYTES).unwrap()
}

pub fn request(socket: &Path, request: &Request) -> Response {
    exchange(socket, &encode(request).unwrap())
}

/// One Ping's round trip; panics unless it is answered with a Pong.
pub fn ping(socket: &Path) -> Duration {
    let start = Instant::now();
    let response = request(socket, &Request::Ping);
    let took = start.elapsed();
    assert!(
        matches!(response, Response::Pong { .. }),
        "ping answered {response:?}"
    );
    took
}

pub fn wait_for_pong(socket: &Path, within: Duration) {
    let give_up = Instant::now() + within;
    loop {
        if let Ok(mut stream) = UnixStream::connect(socket) {
            stream.set_read_timeout(Some(within)).unwrap();
            if stream.write_all(&encode(&Request::Ping).unwrap()).is_ok() {
                if let Ok(Response::Pong { .. }) = read_message(&mut stream, MAX_RESPONSE_BYTES) {
                    return;
                }
            }
        }
        assert!(
            Instant::now() < give_up,
            "tapd did not answer within {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Median and largest of `n` pings.
pub fn pings(socket: &Path, n: usize) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..n).map(|_| ping(socket)).collect();
    times.sort();
    (times[n / 2], times[n - 1])
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Reads whatever a connection holds until EOF or `within`.
pub fn read_all(stream: &mut UnixStream, within: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}
