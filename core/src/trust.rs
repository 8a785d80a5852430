//! Files that decide who signs in must be root's alone: a policy or store
//! that someone else could write is refused, as OpenSSH's StrictModes does.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Checks owner and mode: owned by root, not world-writable, and
/// group-writable only when the group is `writable_group` (the store's).
pub fn check_owner_and_mode(
    path: &Path,
    meta: &std::fs::Metadata,
    writable_group: Option<u32>,
) -> Result<(), String> {
    let mode = meta.mode() & 0o7777;
    if meta.uid() != 0 {
        return Err(format!(
            "{} is owned by uid {}, it must be owned by root",
            path.display(),
            meta.uid()
        ));
    }
    if mode & 0o002 != 0 {
        return Err(format!(
            "{} is world-writable (mode {mode:04o}); allowed: not writable by others",
            path.display()
        ));
    }
    if mode & 0o020 != 0 && writable_group != Some(meta.gid()) {
        return Err(format!(
            "{} is group-writable by gid {} (mode {mode:04o}); allowed: writable by root{}",
            path.display(),
            meta.gid(),
            if writable_group.is_some() {
                " and the store's group"
            } else {
                " only"
            }
        ));
    }
    Ok(())
}

/// The directory holding `path` must pass the same test.
pub fn check_parent(path: &Path, writable_group: Option<u32>) -> Result<(), String> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let meta = std::fs::metadata(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    check_owner_and_mode(parent, &meta, writable_group)
}

/// A program root will run (the key helper) must be root's alone, like the
/// policy that names it: a regular file, owned by root, not writable by
/// group or others, in a directory with the same property.
pub fn check_program(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    check_owner_and_mode(path, &meta, None)?;
    check_parent(path, None)
}

/// Reads a small root-owned file, checking the opened file itself (no race
/// between check and read) and its directory.
pub fn read_trusted(path: &Path, max_bytes: u64) -> Result<String, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    check_owner_and_mode(path, &meta, None)?;
    check_parent(path, None)?;
    if meta.len() > max_bytes {
        return Err(format!(
            "{} is {} bytes; allowed at most {max_bytes}",
            path.display(),
            meta.len()
        ));
    }
    let mut text = String::new();
    file.take(max_bytes + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("{}: not readable as UTF-8 text: {e}", path.display()))?;
    Ok(text)
}
