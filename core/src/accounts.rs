//! System accounts, read through NSS (getpwnam_r and friends).

use crate::sys::nss;
use std::ffi::CString;

/// A system user, as much of it as pam_tap needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Looks up a user by name. `Ok(None)` means NSS answered "no such user".
pub fn user_by_name(name: &str) -> Result<Option<Account>, String> {
    let c_name = CString::new(name).map_err(|_| format!("user name {name:?} contains NUL"))?;
    let ids = nss::user_ids(&c_name).map_err(|e| format!("looking up user {name:?}: {e}"))?;
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
pub fn gid_by_name(name: &str) -> Result<Option<u32>, String> {
    let c_name = CString::new(name).map_err(|_| format!("group name {name:?} contains NUL"))?;
    nss::group_id(&c_name).map_err(|e| format!("looking up group {name:?}: {e}"))
}

/// Names of every group the account belongs to, primary included.
pub fn group_names(account: &Account) -> Result<Vec<String>, String> {
    let c_name =
        CString::new(account.name.as_str()).map_err(|_| "user name contains NUL".to_string())?;
    let gids = nss::group_list(&c_name, account.gid)
        .ok_or_else(|| format!("user {:?} is in too many groups", account.name))?;
    Ok(gids
        .into_iter()
        .filter_map(|gid| nss::group_name(gid).ok().flatten())
        .collect())
}

/// Where sign-in looks users up; tests give a fixed list.
pub trait Directory {
    fn user(&self, name: &str) -> Result<Option<Account>, String>;
    fn groups(&self, account: &Account) -> Result<Vec<String>, String>;
}

/// The system's NSS.
pub struct SystemDirectory;

impl Directory for SystemDirectory {
    fn user(&self, name: &str) -> Result<Option<Account>, String> {
        user_by_name(name)
    }

    fn groups(&self, account: &Account) -> Result<Vec<String>, String> {
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
        assert_eq!(user_by_name("no-such-user-pam-tap-test"), Ok(None));
        assert!(user_by_name("bad\0name").is_err());
        assert_eq!(name_by_uid(0).as_deref(), Some("root"));
        assert_eq!(gid_by_name("root"), Ok(Some(0)));
        let groups = root
            .map(|r| group_names(&r).unwrap_or_default())
            .unwrap_or_default();
        assert!(groups.contains(&"root".to_string()));
    }
}
