//! Files that decide who signs in must be root's alone: a policy, store or
//! key helper that someone else could write, or replace through a
//! directory on its way, is refused, as OpenSSH's StrictModes does.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::helper::runner::Program;

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

/// Symbolic links followed while resolving one path, as the kernel's limit.
const MAX_LINKS: u32 = 40;

/// Resolves the absolute `path` one component at a time, following
/// symbolic links, and checks every directory it passes through, `/` first:
/// each must be root's and writable by nobody else (a sticky world-writable
/// directory such as /tmp is refused too: its owner-only deletion does not
/// stop anyone creating the name). So both the path as written and where
/// its links lead are root's alone, and nobody else can change what the
/// returned path names. Returns the path with every link resolved.
pub fn resolve_trusted(path: &Path) -> Result<PathBuf, String> {
    if !path.is_absolute() {
        return Err(format!("{} is not an absolute path", path.display()));
    }
    let mut resolved = PathBuf::from("/");
    check_directory(&resolved)?;
    // Components still to walk, the next one last.
    let mut pending: Vec<OsString> = Vec::new();
    push_components(&mut pending, path);
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            // Its parent was checked on the way down.
            resolved.pop();
            continue;
        }
        let here = resolved.join(&name);
        let meta =
            std::fs::symlink_metadata(&here).map_err(|e| format!("{}: {e}", here.display()))?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(format!("{}: too many symbolic links", path.display()));
            }
            let target =
                std::fs::read_link(&here).map_err(|e| format!("{}: {e}", here.display()))?;
            if target.is_absolute() {
                resolved = PathBuf::from("/");
                check_directory(&resolved)?;
            }
            push_components(&mut pending, &target);
            continue;
        }
        if !pending.is_empty() {
            check_directory_meta(&here, &meta)?;
        }
        resolved = here;
    }
    Ok(resolved)
}

fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    for part in path.components().rev() {
        match part {
            Component::Normal(name) => pending.push(name.to_owned()),
            Component::ParentDir => pending.push("..".into()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
}

fn check_directory(dir: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    check_directory_meta(dir, &meta)
}

fn check_directory_meta(dir: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    check_owner_and_mode(dir, meta, None)
}

/// Opens a file root relies on (the policy, the key helper): it and every
/// directory on its way, links resolved, must be root's alone (see
/// [`resolve_trusted`]), and it must be a regular file. Nothing is read
/// from a FIFO or device, and opening one does not block. The descriptor
/// returned is the file that was checked; read or execute through it.
pub fn open_trusted(path: &Path) -> Result<(File, PathBuf), String> {
    // First what the name is, without opening it: a FIFO or device gets a
    // clear answer even where its directory would be refused too.
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    require_regular(path, &meta)?;
    let real = resolve_trusted(path)?;
    // The directories cannot change under us (they are root's alone), but
    // the file is checked again through the descriptor that will be used.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(&real)
        .map_err(|e| format!("{}: {e}", real.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: {e}", real.display()))?;
    require_regular(&real, &meta)?;
    check_owner_and_mode(&real, &meta, None)?;
    Ok((file, real))
}

fn require_regular(path: &Path, meta: &std::fs::Metadata) -> Result<(), String> {
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "not a file"
    };
    Err(format!("{} is {what}, not a regular file", path.display()))
}

/// The key helper root will run, opened once and checked as
/// [`open_trusted`] does; run it through the returned descriptor.
pub fn open_program(path: &Path) -> Result<Program, String> {
    let (file, real) = open_trusted(path)?;
    Program::from_file(file, real).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads a small root-owned file (the policy) through the descriptor that
/// was checked, after [`open_trusted`]'s checks.
pub fn read_trusted(path: &Path, max_bytes: u64) -> Result<String, String> {
    let (file, _) = open_trusted(path)?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};

    #[test]
    fn system_program_through_links_is_trusted_and_resolved() {
        // /bin/sh is root's in root's directories; on merged-/usr systems
        // both /bin and /bin/sh are links, which must be followed.
        let real = resolve_trusted(Path::new("/bin/sh")).unwrap();
        assert!(real.is_absolute());
        assert_eq!(real, std::fs::canonicalize("/bin/sh").unwrap());
        let program = open_program(Path::new("/bin/sh")).unwrap();
        assert_eq!(program.path(), real);
        // `..` is walked as the kernel does, after links.
        assert_eq!(
            resolve_trusted(Path::new("/usr/bin/../bin/./sh")).unwrap(),
            real
        );
    }

    #[test]
    fn a_sticky_world_writable_ancestor_is_refused() {
        let tmp = std::fs::metadata("/tmp").unwrap();
        assert_eq!(tmp.mode() & 0o1002, 0o1002, "test needs a sticky /tmp");
        // The file and its own directory are root's alone; /tmp is not.
        let dir = tempfile::tempdir_in("/tmp").unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let file = sub.join("policy.toml");
        std::fs::write(&file, "enabled = true\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        for result in [
            resolve_trusted(&file).map(|_| ()),
            read_trusted(&file, 100).map(|_| ()),
            open_program(&file).map(|_| ()),
        ] {
            let why = result.unwrap_err();
            assert!(why.starts_with("/tmp is world-writable"), "{why}");
        }
    }

    #[test]
    fn relative_paths_and_link_loops_are_refused() {
        assert!(resolve_trusted(Path::new("etc/passwd"))
            .unwrap_err()
            .contains("not an absolute path"));
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::os::unix::fs::symlink(&a, &a).unwrap();
        // Refused either at the untrusted temporary directory or at the loop.
        assert!(resolve_trusted(&a).is_err());
    }

    #[test]
    fn fifos_devices_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        for (path, what) in [
            (fifo.as_path(), "is a FIFO"),
            (Path::new("/dev/zero"), "is a device"),
            (Path::new("/etc"), "is a directory"),
        ] {
            let start = Instant::now();
            let why = read_trusted(path, 1000).unwrap_err();
            assert!(why.contains(what), "{why}");
            assert!(start.elapsed() < Duration::from_secs(1));
        }
    }
}
