//! Files that decide who signs in must be root's alone: a policy, store or
//! key helper that someone else could write, or replace through a
//! directory on its way, is refused, as OpenSSH's StrictModes does.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::helper::runner::Program;

/// Why a file root relies on is refused, or could not be looked at.
#[derive(Debug)]
pub enum TrustError {
    NotRootOwned {
        path: PathBuf,
        uid: u32,
    },
    WorldWritable {
        path: PathBuf,
        mode: u32,
    },
    /// Writable by a group other than the one allowed.
    GroupWritable {
        path: PathBuf,
        gid: u32,
        mode: u32,
        /// A group (the store's) may write; this is not it.
        group_allowed: bool,
    },
    NotAbsolute(PathBuf),
    TooManyLinks(PathBuf),
    /// A component on the way is not a directory.
    NotADirectory(PathBuf),
    NotRegular {
        path: PathBuf,
        kind: FileKind,
    },
    TooLarge {
        path: PathBuf,
        size: u64,
        max: u64,
    },
    /// Looking at, opening or reading it failed.
    Io {
        path: PathBuf,
        source: io::Error,
    },
    NotText {
        path: PathBuf,
        source: io::Error,
    },
}

/// What a path that should be a regular file is instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Directory,
    Fifo,
    Socket,
    Device,
    Other,
}

impl FileKind {
    fn of(kind: std::fs::FileType) -> FileKind {
        if kind.is_dir() {
            FileKind::Directory
        } else if kind.is_fifo() {
            FileKind::Fifo
        } else if kind.is_socket() {
            FileKind::Socket
        } else if kind.is_char_device() || kind.is_block_device() {
            FileKind::Device
        } else {
            FileKind::Other
        }
    }

    fn described(self) -> &'static str {
        match self {
            FileKind::Directory => "a directory",
            FileKind::Fifo => "a FIFO",
            FileKind::Socket => "a socket",
            FileKind::Device => "a device",
            FileKind::Other => "not a file",
        }
    }
}

impl std::fmt::Display for TrustError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrustError::NotRootOwned { path, uid } => write!(
                f,
                "{} is owned by uid {uid}, it must be owned by root",
                path.display()
            ),
            TrustError::WorldWritable { path, mode } => write!(
                f,
                "{} is world-writable (mode {mode:04o}); allowed: not writable by others",
                path.display()
            ),
            TrustError::GroupWritable {
                path,
                gid,
                mode,
                group_allowed,
            } => write!(
                f,
                "{} is group-writable by gid {gid} (mode {mode:04o}); allowed: writable by root{}",
                path.display(),
                if *group_allowed {
                    " and the store's group"
                } else {
                    " only"
                }
            ),
            TrustError::NotAbsolute(path) => {
                write!(f, "{} is not an absolute path", path.display())
            }
            TrustError::TooManyLinks(path) => {
                write!(f, "{}: too many symbolic links", path.display())
            }
            TrustError::NotADirectory(path) => write!(f, "{} is not a directory", path.display()),
            TrustError::NotRegular { path, kind } => write!(
                f,
                "{} is {}, not a regular file",
                path.display(),
                kind.described()
            ),
            TrustError::TooLarge { path, size, max } => write!(
                f,
                "{} is {size} bytes; allowed at most {max}",
                path.display()
            ),
            TrustError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            TrustError::NotText { path, source } => write!(
                f,
                "{}: not readable as UTF-8 text: {source}",
                path.display()
            ),
        }
    }
}

impl std::error::Error for TrustError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TrustError::Io { source, .. } | TrustError::NotText { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// `map_err` for an I/O failure on `path`.
fn io_at(path: &Path) -> impl FnOnce(io::Error) -> TrustError + '_ {
    move |source| TrustError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks owner and mode: owned by root, not world-writable, and
/// group-writable only when the group is `writable_group` (the store's).
pub fn check_owner_and_mode(
    path: &Path,
    meta: &std::fs::Metadata,
    writable_group: Option<u32>,
) -> Result<(), TrustError> {
    let mode = meta.mode() & 0o7777;
    let path = || path.to_path_buf();
    if meta.uid() != 0 {
        return Err(TrustError::NotRootOwned {
            path: path(),
            uid: meta.uid(),
        });
    }
    if mode & 0o002 != 0 {
        return Err(TrustError::WorldWritable { path: path(), mode });
    }
    if mode & 0o020 != 0 && writable_group != Some(meta.gid()) {
        return Err(TrustError::GroupWritable {
            path: path(),
            gid: meta.gid(),
            mode,
            group_allowed: writable_group.is_some(),
        });
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
pub fn resolve_trusted(path: &Path) -> Result<PathBuf, TrustError> {
    if !path.is_absolute() {
        return Err(TrustError::NotAbsolute(path.to_path_buf()));
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
        let meta = std::fs::symlink_metadata(&here).map_err(io_at(&here))?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(TrustError::TooManyLinks(path.to_path_buf()));
            }
            let target = std::fs::read_link(&here).map_err(io_at(&here))?;
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

fn check_directory(dir: &Path) -> Result<(), TrustError> {
    let meta = std::fs::symlink_metadata(dir).map_err(io_at(dir))?;
    check_directory_meta(dir, &meta)
}

fn check_directory_meta(dir: &Path, meta: &std::fs::Metadata) -> Result<(), TrustError> {
    if !meta.is_dir() {
        return Err(TrustError::NotADirectory(dir.to_path_buf()));
    }
    check_owner_and_mode(dir, meta, None)
}

/// Opens a file root relies on (the policy, the key helper): it and every
/// directory on its way, links resolved, must be root's alone (see
/// [`resolve_trusted`]), and it must be a regular file. Nothing is read
/// from a FIFO or device, and opening one does not block. The descriptor
/// returned is the file that was checked; read or execute through it.
pub fn open_trusted(path: &Path) -> Result<(File, PathBuf), TrustError> {
    // First what the name is, without opening it: a FIFO or device gets a
    // clear answer even where its directory would be refused too.
    let meta = std::fs::metadata(path).map_err(io_at(path))?;
    require_regular(path, &meta)?;
    let real = resolve_trusted(path)?;
    // The directories cannot change under us (they are root's alone), but
    // the file is checked again through the descriptor that will be used.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(&real)
        .map_err(io_at(&real))?;
    let meta = file.metadata().map_err(io_at(&real))?;
    require_regular(&real, &meta)?;
    check_owner_and_mode(&real, &meta, None)?;
    Ok((file, real))
}

fn require_regular(path: &Path, meta: &std::fs::Metadata) -> Result<(), TrustError> {
    let kind = meta.file_type();
    if kind.is_file() {
        return Ok(());
    }
    Err(TrustError::NotRegular {
        path: path.to_path_buf(),
        kind: FileKind::of(kind),
    })
}

/// The key helper root will run, opened once and checked as
/// [`open_trusted`] does; run it through the returned descriptor.
pub fn open_program(path: &Path) -> Result<Program, TrustError> {
    let (file, real) = open_trusted(path)?;
    Program::from_file(file, real).map_err(io_at(path))
}

/// Reads a small root-owned file (the policy) through the descriptor that
/// was checked, after [`open_trusted`]'s checks.
pub fn read_trusted(path: &Path, max_bytes: u64) -> Result<String, TrustError> {
    let (file, _) = open_trusted(path)?;
    let meta = file.metadata().map_err(io_at(path))?;
    if meta.len() > max_bytes {
        return Err(TrustError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            max: max_bytes,
        });
    }
    let mut text = String::new();
    file.take(max_bytes + 1)
        .read_to_string(&mut text)
        .map_err(|source| TrustError::NotText {
            path: path.to_path_buf(),
            source,
        })?;
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
            assert!(
                matches!(&why, TrustError::WorldWritable { path, .. } if path == Path::new("/tmp")),
                "{why}"
            );
            assert!(
                why.to_string().starts_with("/tmp is world-writable"),
                "{why}"
            );
        }
    }

    #[test]
    fn relative_paths_and_link_loops_are_refused() {
        assert!(resolve_trusted(Path::new("etc/passwd"))
            .unwrap_err()
            .to_string()
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
        for (path, kind, what) in [
            (fifo.as_path(), FileKind::Fifo, "is a FIFO"),
            (Path::new("/dev/zero"), FileKind::Device, "is a device"),
            (Path::new("/etc"), FileKind::Directory, "is a directory"),
        ] {
            let start = Instant::now();
            let why = read_trusted(path, 1000).unwrap_err();
            assert!(
                matches!(&why, TrustError::NotRegular { kind: k, .. } if *k == kind),
                "{why}"
            );
            assert!(why.to_string().contains(what), "{why}");
            assert!(start.elapsed() < Duration::from_secs(1));
        }
    }
}
