//! System accounts, read through NSS (getpwnam_r and friends).

use crate::sys::nss;
use std::ffi::CString;
use std::io;

/// A system user, as much of it as pam_tap needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Whose name a lookup was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    User,
    Group,
}

impl NameKind {
    fn word(self) -> &'static str {
        match self {
            NameKind::User => "user",
            NameKind::Group => "group",
        }
    }
}

/// Why NSS gave no answer.
#[derive(Debug)]
pub enum DirectoryError {
    /// A name with a NUL byte cannot be asked.
    Nul {
        kind: NameKind,
        name: String,
    },
    Lookup {
        kind: NameKind,
        name: String,
        source: io::Error,
    },
    TooManyGroups {
        user: String,
    },
}

impl std::fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirectoryError::Nul { kind, name } => {
                write!(f, "{} name {name:?} contains NUL", kind.word())
            }
            DirectoryError::Lookup { kind, name, source } => {
                write!(f, "looking up {} {name:?}: {source}", kind.word())
            }
            DirectoryError::TooManyGroups { user } => {
                write!(f, "user {user:?} is in too many groups")
            }
        }
    }
}

impl std::error::Error for DirectoryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DirectoryError::Lookup { source, .. } => Some(source),
            DirectoryError::Nul { .. } | DirectoryError::TooManyGroups { .. } => None,
        }
    }
}

fn c_name(kind: NameKind, name: &str) -> Result<CString, DirectoryError> {
    CString::new(name).map_err(|_| DirectoryError::Nul {
        kind,
        name: name.to_string(),
    })
}

fn lookup_failed(kind: NameKind, name: &str) -> impl FnOnce(io::Error) -> DirectoryError + '_ {
    move |source| DirectoryError::Lookup {
        kind,
        name: name.to_string(),
        source,
    }
}

/// Looks up a user by name. `Ok(None)` means NSS answered "no such user".
pub fn user_by_name(name: &str) -> Result<Option<Account>, DirectoryError> {
    let c_name = c_name(NameKind::User, name)?;
    let ids = nss::user_ids(&c_name).map_err(lookup_failed(NameKind::User, name))?;
    Ok(ids.map(|(uid, gid)| Account {
        name: name.to_string(),
        uid,
        gid,
    }))
}

/// The user's name for a uid (for audit records of who acted).
pub fn name_by_uid(uid: u32) -> Option<String> {
    nss::user_name(uid).ok().flatten()
}

/// The gid of a group by name, `Ok(None)` when there is no such group.
pub fn gid_by_name(name: &str) -> Result<Option<u32>, DirectoryError> {
    let c_name = c_name(NameKind::Group, name)?;
    nss::group_id(&c_name).map_err(lookup_failed(NameKind::Group, name))
}

/// Names of every group the account belongs to, primary included.
pub fn group_names(account: &Account) -> Result<Vec<String>, DirectoryError> {
    let c_name = c_name(NameKind::User, &account.name)?;
    let gids =
        nss::group_list(&c_name, account.gid).ok_or_else(|| DirectoryError::TooManyGroups {
            user: account.name.clone(),
        })?;
    Ok(gids
        .into_iter()
        .filter_map(|gid| nss::group_name(gid).ok().flatten())
        .collect())
}

/// Where sign-in looks users up; tests give a fixed list.
pub trait Directory {
    fn user(&self, name: &str) -> Result<Option<Account>, DirectoryError>;
    fn groups(&self, account: &Account) -> Result<Vec<String>, DirectoryError>;
}

/// The system's NSS.
pub struct SystemDirectory;

impl Directory for SystemDirectory {
    fn user(&self, name: &str) -> Result<Option<Account>, DirectoryError> {
        user_by_name(name)
    }

    fn groups(&self, account: &Account) -> Result<Vec<String>, DirectoryError> {
        group_names(account)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_exists_and_nobody_else_by_this_name() {
        let root = user_by_name("root").ok().flatten();
        assert_eq!(root.as_ref().map(|a| a.uid), Some(0));
        assert_eq!(user_by_name("no-such-user-pam-tap-test").ok(), Some(None));
        assert!(matches!(
            user_by_name("bad\0name"),
            Err(DirectoryError::Nul {
                kind: NameKind::User,
                ..
            })
        ));
        assert_eq!(name_by_uid(0).as_deref(), Some("root"));
        assert_eq!(gid_by_name("root").ok(), Some(Some(0)));
        let groups = root
            .map(|r| group_names(&r).unwrap_or_default())
            .unwrap_or_default();
        assert!(groups.contains(&"root".to_string()));
    }
}
