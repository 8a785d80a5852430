//! Who is running tapctl. The real uid decides, never the effective ids:
//! tapctl is installed setgid to the store's group, like unix_chkpwd.

use crate::failure::{Exit, Failure, Result};
use tap_core::accounts::{self, Account};
use tap_core::policy::Policy;

pub struct Caller {
    pub uid: u32,
    pub name: String,
    groups: Vec<String>,
}

impl Caller {
    pub fn current() -> Result<Caller> {
        // SAFETY: getuid cannot fail.
        let uid = unsafe { libc::getuid() };
        let name = accounts::name_by_uid(uid).ok_or_else(|| {
            Failure::new(Exit::Internal, format!("your uid {uid} has no user name"))
        })?;
        let groups = match accounts::user_by_name(&name) {
            Ok(Some(account)) => accounts::group_names(&account).unwrap_or_default(),
            _ => Vec::new(),
        };
        Ok(Caller { uid, name, groups })
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    pub fn is_admin(&self, policy: &Policy) -> bool {
        self.is_root() || self.groups.iter().any(|g| policy.admins.groups.contains(g))
    }

    pub fn require_root(&self, what: &str) -> Result<()> {
        if self.is_root() {
            Ok(())
        } else {
            Err(Failure::new(
                Exit::NotPermitted,
                format!("only root may {what}"),
            ))
        }
    }

    pub fn require_admin(&self, policy: &Policy, what: &str) -> Result<()> {
        if self.is_admin(policy) {
            return Ok(());
        }
        Err(Failure::new(
            Exit::NotPermitted,
            format!(
                "only root or members of the admin groups ({}) may {what}",
                policy.admins.groups.join(", ")
            ),
        ))
    }

    /// Admins for anyone; everyone for themselves.
    pub fn require_self_or_admin(&self, policy: &Policy, user: &str, what: &str) -> Result<()> {
        if self.name == user {
            Ok(())
        } else {
            self.require_admin(policy, what)
        }
    }
}

/// Looks a user up, with tapctl's messages.
pub fn existing_user(name: &str) -> Result<Account> {
    accounts::user_by_name(name)
        .map_err(|e| Failure::new(Exit::Internal, e))?
        .ok_or_else(|| {
            Failure::new(
                Exit::NotFound,
                format!("no such user {name:?} on this system"),
            )
        })
}

/// Gives up the store group when a command does not need the store, so a
/// user-named file is read with the user's own rights only.
pub fn drop_privileges() -> Result<()> {
    // SAFETY: getgid/setresgid have no memory-safety preconditions.
    let rc = unsafe {
        let gid = libc::getgid();
        libc::setresgid(gid, gid, gid)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(Failure::new(
            Exit::Internal,
            format!(
                "cannot drop privileges: {}",
                std::io::Error::last_os_error()
            ),
        ))
    }
}
