//! The store's files on disk: creating them private to the daemon's user,
//! and refusing to read through ones that anyone else could have written.
//!
//! Only `tapd` opens the store, running as its own system user; the store
//! is that user's alone: the file 0600 in a 0700 directory, both owned by
//! the daemon's effective uid.

use super::{err, Result};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use tap_core::store::StoreError;

/// With `check_trust`: the store must be a regular file, it and its
/// directory owned by this process's effective uid and writable by nobody
/// else, and the file readable by nobody else (it holds the pass hashes).
pub(super) fn check_store_file(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    if !meta.is_file() {
        return Err(StoreError::untrusted(format!(
            "store {} is not a regular file",
            path.display()
        )));
    }
    let owner = crate::sys::euid();
    check_private(path, meta, owner, 0o077)?;
    let parent = path.parent().unwrap_or(Path::new("/"));
    let parent_meta = std::fs::metadata(parent).map_err(|e| err(parent, "cannot read", e))?;
    check_private(parent, &parent_meta, owner, 0o022)
}

/// Owned by `owner`, and no bit of `forbidden` in the mode.
fn check_private(path: &Path, meta: &std::fs::Metadata, owner: u32, forbidden: u32) -> Result<()> {
    let mode = meta.mode() & 0o7777;
    if meta.uid() != owner {
        return Err(StoreError::untrusted(format!(
            "{} is owned by uid {}; the store must be owned by the daemon's user (uid {owner})",
            path.display(),
            meta.uid()
        )));
    }
    if mode & forbidden != 0 {
        return Err(StoreError::untrusted(format!(
            "{} has mode {mode:04o}, which lets others {}; allowed: {:04o} at most",
            path.display(),
            if forbidden & 0o044 != 0 {
                "read or write it"
            } else {
                "write it"
            },
            0o7777 & !forbidden & !0o7000,
        )));
    }
    Ok(())
}

/// The -wal and -shm files hold committed data and the index to it. They
/// outlive the connection (`configure`), so one left by someone else would
/// be read: each must be a regular file of the store's owner, and with
/// `check_trust` as private as the store.
pub(super) fn check_side_files(
    path: &Path,
    store: &std::fs::Metadata,
    check_trust: bool,
) -> Result<()> {
    for suffix in ["-wal", "-shm"] {
        let side = side_file(path, suffix);
        match std::fs::symlink_metadata(&side) {
            Ok(meta) if meta.uid() != store.uid() || !meta.is_file() => {
                return Err(StoreError::untrusted(format!(
                    "store {}: {} is owned by uid {}, not by the store's owner (uid {}), \
                     or is not a regular file; refusing to read through it (give it to the \
                     store's owner if you trust it, or remove it and lose its latest commits)",
                    path.display(),
                    side.display(),
                    meta.uid(),
                    store.uid()
                )))
            }
            Ok(meta) if check_trust => check_private(&side, &meta, store.uid(), 0o077)?,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(&side, "cannot read", e)),
        }
    }
    Ok(())
}

pub(super) fn side_file(path: &Path, suffix: &str) -> PathBuf {
    let mut side = path.as_os_str().to_owned();
    side.push(suffix);
    PathBuf::from(side)
}

/// Creates the store's directory (0700) and file (0600), owned by this
/// process (the daemon's user). Existing ones are left as they are (and
/// checked by `check_store_file`). With `check_trust`, a directory that is
/// not this process's alone is refused before anything is made in it, so a
/// wrong opener (root, running `tapd --migrate` for pam-tap's store) leaves
/// no file behind that the daemon would then refuse.
pub(super) fn create_file(path: &Path, check_trust: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // The umask may have narrowed a mode; set it exactly.
    let settle = |p: &Path, mode: u32| -> Result<()> {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .map_err(|e| err(p, "cannot set mode", e))
    };
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| err(dir, "cannot create directory", e))?;
            settle(dir, 0o700)?;
        }
        if check_trust && !path.exists() {
            let meta = std::fs::metadata(dir).map_err(|e| err(dir, "cannot read", e))?;
            check_private(dir, &meta, crate::sys::euid(), 0o022)?;
        }
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => settle(path, 0o600),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(err(path, "cannot create", e)),
    }
}
