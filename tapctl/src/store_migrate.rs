//! `tapctl store migrate --to URL`: root copies this host's SQLite store
//! into the fleet's PostgreSQL database. tapctl never opens the store (it
//! is the daemon user's alone): it starts `tapd --migrate-to URL` as the
//! store's owner, which reads the store read-only and writes the database
//! in one transaction. The admin role's password file is root's; tapctl
//! opens it, checks it is root's alone, and hands tapd the open file as its
//! stdin, so the daemon's user never needs a copy of it.

use crate::cli::StoreMigrateArgs;
use crate::failure::{Exit, Failure, Result};
use std::fs::File;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tap_core::policy::{self, Backend, Policy};

/// Where packages install tapd, when it is not beside tapctl.
const INSTALLED_TAPD: &str = "/usr/sbin/tapd";

pub fn run(args: StoreMigrateArgs, policy_path: Option<PathBuf>) -> Result<()> {
    if crate::sys::uid() != 0 {
        return Err(Failure::new(
            Exit::NotPermitted,
            "store migrate is for root: it runs tapd as the store's owner",
        ));
    }
    let policy_path = policy_path.unwrap_or_else(|| PathBuf::from(policy::DEFAULT_PATH));
    let policy = Policy::load(&policy_path).map_err(|e| {
        Failure::new(
            Exit::Policy,
            format!("policy {}: {e}", policy_path.display()),
        )
    })?;
    if policy.store.backend != Backend::Sqlite {
        return Err(Failure::new(
            Exit::Usage,
            format!(
                "the policy {} names a PostgreSQL store already: migrate this host's SQLite \
                 store while the policy still names it (or give --policy a policy that does)",
                policy_path.display()
            ),
        ));
    }
    let store = policy.store.sqlite_path();
    let owner = std::fs::metadata(store)
        .map_err(|e| Failure::new(Exit::NotFound, format!("store {}: {e}", store.display())))?;
    // The copy runs as this owner and gets the admin password: only tapd's
    // own user (or root) may be handed it, never whoever owns a stray file.
    let tapd_user = tap_core::accounts::user_by_name(tap_core::daemon::DAEMON_USER)
        .ok()
        .flatten();
    let (uid, gid) = match tapd_user {
        _ if owner.uid() == 0 => (0, 0),
        Some(user) if user.uid == owner.uid() => (user.uid, user.gid),
        _ => {
            return Err(Failure::new(
                Exit::Policy,
                format!(
                    "store {} is owned by uid {}, not by tapd's user {}: not handing it the \
                     admin password",
                    store.display(),
                    owner.uid(),
                    tap_core::daemon::DAEMON_USER
                ),
            ))
        }
    };
    let stdin = match &args.password_file {
        Some(path) => Stdio::from(root_only(path)?),
        None => Stdio::null(),
    };
    let tapd = tapd_binary()?;
    let mut command = Command::new(&tapd);
    // tapd runs from /: relative paths are made absolute here.
    command
        .arg("--policy")
        .arg(absolute(&policy_path)?)
        .arg("--migrate-to")
        .arg(&args.to);
    if let Some(ca) = &args.ca_file {
        command.arg("--ca-file").arg(absolute(ca)?);
    }
    if args.merge {
        command.arg("--merge");
    }
    // As the store's owner with its own group, no supplementary groups (std
    // drops them when root sets the uid), nothing of root's environment, from /.
    command
        .uid(uid)
        .gid(gid)
        .env_clear()
        .current_dir("/")
        .stdin(stdin);
    let status = command.status().map_err(|e| {
        Failure::new(
            Exit::Internal,
            format!("cannot run {}: {e}", tapd.display()),
        )
    })?;
    if status.success() {
        Ok(())
    } else {
        // tapd said why on stderr.
        Err(Failure::new(Exit::Store, ""))
    }
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path)
        .map_err(|e| Failure::new(Exit::Usage, format!("{}: {e}", path.display())))
}

/// The password file, open: a regular file (not a link), root's, and no
/// permission for group or others.
fn root_only(path: &Path) -> Result<File> {
    let fail = |why: String| {
        Failure::new(
            Exit::Usage,
            format!("password file {}: {why}", path.display()),
        )
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| fail(format!("cannot be opened ({e}); it must be a regular file")))?;
    let meta = file.metadata().map_err(|e| fail(e.to_string()))?;
    let mode = meta.mode() & 0o7777;
    if !meta.is_file() {
        Err(fail("is not a regular file".into()))
    } else if meta.uid() != 0 || mode & 0o077 != 0 {
        Err(fail(format!(
            "is owned by uid {} with mode {mode:04o}: it must be root's alone (chmod 0600)",
            meta.uid()
        )))
    } else {
        Ok(file)
    }
}

/// tapd beside this tapctl (a build tree, a tarball), else the installed one;
/// root runs it, so it must be root's and writable by nobody else.
fn tapd_binary() -> Result<PathBuf> {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("tapd")));
    let path = beside
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(INSTALLED_TAPD));
    let meta = std::fs::metadata(&path)
        .map_err(|e| Failure::new(Exit::Internal, format!("tapd {}: {e}", path.display())))?;
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(Failure::new(
            Exit::Internal,
            format!(
                "tapd {} is not root's alone (uid {}, mode {:04o}); not running it",
                path.display(),
                meta.uid(),
                meta.mode() & 0o7777
            ),
        ));
    }
    Ok(path)
}
