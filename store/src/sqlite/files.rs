//! The store's files on disk: creating them with the right owner and modes,
//! and refusing to read through ones that a user could have written.

use super::{err, OpenOptions, Result};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use tap_core::store::StoreError;

/// With `check_trust`: the store must be a regular file, and it and its
/// directory root's and not writable by others (the store's group aside).
pub(super) fn check_store_file(
    path: &Path,
    meta: &std::fs::Metadata,
    options: &OpenOptions,
) -> Result<()> {
    if !meta.is_file() {
        return Err(StoreError(format!(
            "store {} is not a regular file",
            path.display()
        )));
    }
    // Only a group-writable file or directory needs the group's id.
    let parent = path.parent().unwrap_or(Path::new("/"));
    let parent_meta = std::fs::metadata(parent).map_err(|e| err(parent, "cannot read", e))?;
    let group = if (meta.mode() | parent_meta.mode()) & 0o020 != 0 {
        options.group_id()?
    } else {
        None
    };
    tap_core::trust::check_owner_and_mode(path, meta, group).map_err(StoreError)?;
    tap_core::trust::check_owner_and_mode(parent, &parent_meta, group).map_err(StoreError)
}

/// The -wal and -shm files hold committed data and the index to it, and
/// SQLite creates them, owned by the caller, for whoever opens the store
/// while they are missing. A user running the setgid tapctl would own them
/// and could write them from another process. So they are made by the
/// store's owner (root's `tapctl init`, or any root sign-in) and kept
/// (`configure`): another user's opener refuses a store without them, and
/// nobody reads through side files that are not the store owner's (root's
/// SQLite would even take such files over, leaving the user's descriptors
/// working). With `check_trust`, their modes are checked like the store's.
pub(super) fn check_side_files(
    path: &Path,
    store: &std::fs::Metadata,
    check_trust: bool,
) -> Result<()> {
    let opener_owns_store = crate::sys::euid() == store.uid();
    for suffix in ["-wal", "-shm"] {
        let side = side_file(path, suffix);
        match std::fs::symlink_metadata(&side) {
            Ok(meta) if meta.uid() != store.uid() || !meta.is_file() => {
                return Err(StoreError(format!(
                    "store {}: {} is owned by uid {}, not by the store's owner (uid {}); \
                     refusing to read through it (as root: give it back to root if you trust it, \
                     or remove it and lose its latest commits)",
                    path.display(),
                    side.display(),
                    meta.uid(),
                    store.uid()
                )))
            }
            Ok(meta) if check_trust => {
                tap_core::trust::check_owner_and_mode(&side, &meta, Some(store.gid()))
                    .map_err(StoreError)?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && opener_owns_store => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError(format!(
                    "store {}: {} is missing, and only the store's owner may create it; \
                     any tapctl command run as root (e.g. `sudo tapctl status`) restores it",
                    path.display(),
                    side.display()
                )))
            }
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

/// Creates the store's directory (0770) and file (0660), owned root and the
/// store's group; without that group, root's alone (0700, 0600). Existing
/// ones are left as they are.
pub(super) fn create_file(path: &Path, group: Option<u32>) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let (dir_mode, file_mode) = if group.is_some() {
        (0o770, 0o660)
    } else {
        (0o700, 0o600)
    };
    // The umask may have narrowed a mode; set both exactly, then the group.
    let settle = |p: &Path, mode: u32| -> Result<()> {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
            .map_err(|e| err(p, "cannot set mode", e))?;
        if let Some(gid) = group {
            std::os::unix::fs::chown(p, Some(0), Some(gid))
                .map_err(|e| err(p, "cannot set owner", e))?;
        }
        Ok(())
    };
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(dir_mode)
                .create(dir)
                .map_err(|e| err(dir, "cannot create directory", e))?;
            settle(dir, dir_mode)?;
        }
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(file_mode)
        .open(path)
    {
        Ok(_) => settle(path, file_mode),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(err(path, "cannot create", e)),
    }
}
