//! Where the listening socket comes from: systemd's socket activation
//! (sd_listen_fds: fd 3 when LISTEN_PID is this process), or tapd binds
//! the socket path itself.

use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// The first descriptor systemd passes.
const LISTEN_FDS_START: i32 = 3;

/// The socket systemd passed, if it passed one to this process. The
/// variables are removed either way, so no child inherits them. Call
/// before any thread starts (it changes the environment).
pub fn inherited() -> io::Result<Option<UnixListener>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    let ours = pid.and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id());
    let count = fds.and_then(|n| n.parse::<i32>().ok()).unwrap_or(0);
    if !ours || count < 1 {
        return Ok(None);
    }
    if count > 1 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("systemd passed {count} sockets; tapd listens on exactly one"),
        ));
    }
    crate::sys::adopt_listener(LISTEN_FDS_START).map(Some)
}

/// Binds `path` for a tapd without systemd: creates its directory (0755)
/// if missing, replaces a stale socket (never any other kind of file, nor
/// one a running daemon still answers on), and lets any user connect
/// (0666): who they are comes from SO_PEERCRED.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{}: another daemon is serving on it", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; not removing it",
                    path.display()
                ),
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
    Ok(listener)
}
