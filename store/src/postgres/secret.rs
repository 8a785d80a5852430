//! The role's password, from a file that must be this process's alone.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use tap_core::store::{StoreError, StoreErrorKind};
use zeroize::Zeroizing;

/// Reads the first line of `path`. Refused unless it is a regular file (not
/// a link), owned by this process's effective user, with no permission for
/// group or others: anyone else who can read it can act as this host's role.
pub(super) fn read_password_file(path: &Path) -> Result<Zeroizing<String>, StoreError> {
    let fail = |kind, why: String| {
        StoreError::new(kind, format!("password_file {}: {why}", path.display()))
    };
    // O_NOFOLLOW and fstat of what was opened: no swap between check and read.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            // A link (ELOOP under O_NOFOLLOW) is refused, not merely missing.
            let kind = if e.raw_os_error() == Some(libc::ELOOP) {
                StoreErrorKind::Untrusted
            } else {
                StoreErrorKind::Config
            };
            fail(
                kind,
                format!("cannot be opened ({e}); it must be a regular file, not a link"),
            )
        })?;
    let meta = file
        .metadata()
        .map_err(|e| fail(StoreErrorKind::Io, e.to_string()))?;
    if !meta.is_file() {
        return Err(fail(
            StoreErrorKind::Untrusted,
            "is not a regular file".into(),
        ));
    }
    let me = crate::sys::euid();
    if meta.uid() != me {
        return Err(fail(
            StoreErrorKind::Untrusted,
            format!(
                "is owned by uid {}, not by uid {me} that reads it",
                meta.uid()
            ),
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(fail(
            StoreErrorKind::Untrusted,
            format!("has mode {mode:04o}: group or others may use it; chmod 0600 it"),
        ));
    }
    let mut text = Zeroizing::new(String::new());
    file.take(4096)
        .read_to_string(&mut text)
        .map_err(|e| fail(StoreErrorKind::Io, format!("unreadable: {e}")))?;
    let line = Zeroizing::new(text.lines().next().unwrap_or("").to_string());
    if line.is_empty() {
        return Err(fail(StoreErrorKind::Config, "is empty".into()));
    }
    Ok(line)
}
