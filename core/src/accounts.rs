//! System accounts, read through NSS (getpwnam_r and friends).

use std::ffi::{CStr, CString};

/// A system user, as much of it as pam_tap needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// The C structs the getpw*_r / getgr*_r functions fill: plain data, for
/// which all-zero bytes are a valid value.
trait NssEntry {}
impl NssEntry for libc::passwd {}
impl NssEntry for libc::group {}

/// Runs one reentrant NSS lookup, growing its buffer while it answers
/// ERANGE (a group with many members needs more than the first 4 KiB), and
/// reads the entry while the buffer it points into is alive. `Ok(None)`:
/// NSS answered "no such entry".
fn nss_lookup<T: NssEntry, R>(
    mut call: impl FnMut(&mut T, &mut [u8], &mut *mut T) -> libc::c_int,
    read: impl FnOnce(&T) -> R,
) -> std::io::Result<Option<R>> {
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: T is passwd or group (NssEntry), plain C data.
        let mut entry: T = unsafe { std::mem::zeroed() };
        let mut result: *mut T = std::ptr::null_mut();
        let rc = call(&mut entry, &mut buf, &mut result);
        if rc == libc::ERANGE && buf.len() < 1 << 22 {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        return Ok((!result.is_null()).then(|| read(&entry)));
    }
}

/// A NUL-terminated string inside an entry's buffer.
///
/// # Safety
/// `ptr` must point to a NUL-terminated string that is alive for the call.
unsafe fn entry_string(ptr: *const libc::c_char) -> String {
    // SAFETY: the caller's promise.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

/// Looks up a user by name. `Ok(None)` means NSS answered "no such user".
pub fn user_by_name(name: &str) -> Result<Option<Account>, String> {
    let c_name = CString::new(name).map_err(|_| format!("user name {name:?} contains NUL"))?;
    nss_lookup(
        // SAFETY: every pointer is valid for the call; nss_lookup keeps buf alive.
        |pwd, buf, result| unsafe {
            libc::getpwnam_r(
                c_name.as_ptr(),
                pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                result,
            )
        },
        |pwd: &libc::passwd| Account {
            name: name.to_string(),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
        },
    )
    .map_err(|e| format!("looking up user {name:?}: {e}"))
}

/// The user's name for a uid (for audit records of who acted).
pub fn name_by_uid(uid: u32) -> Option<String> {
    nss_lookup(
        // SAFETY: every pointer is valid for the call.
        |pwd, buf, result| unsafe {
            libc::getpwuid_r(uid, pwd, buf.as_mut_ptr().cast(), buf.len(), result)
        },
        // SAFETY: pw_name points into the live buffer, NUL-terminated.
        |pwd: &libc::passwd| unsafe { entry_string(pwd.pw_name) },
    )
    .ok()
    .flatten()
}

/// The gid of a group by name, `Ok(None)` when there is no such group.
pub fn gid_by_name(name: &str) -> Result<Option<u32>, String> {
    let c_name = CString::new(name).map_err(|_| format!("group name {name:?} contains NUL"))?;
    nss_lookup(
        // SAFETY: every pointer is valid for the call.
        |grp, buf, result| unsafe {
            libc::getgrnam_r(
                c_name.as_ptr(),
                grp,
                buf.as_mut_ptr().cast(),
                buf.len(),
                result,
            )
        },
        |grp: &libc::group| grp.gr_gid,
    )
    .map_err(|e| format!("looking up group {name:?}: {e}"))
}

fn group_name(gid: u32) -> Option<String> {
    nss_lookup(
        // SAFETY: every pointer is valid for the call.
        |grp, buf, result| unsafe {
            libc::getgrgid_r(gid, grp, buf.as_mut_ptr().cast(), buf.len(), result)
        },
        // SAFETY: gr_name points into the live buffer, NUL-terminated.
        |grp: &libc::group| unsafe { entry_string(grp.gr_name) },
    )
    .ok()
    .flatten()
}

/// Names of every group the account belongs to, primary included.
pub fn group_names(account: &Account) -> Result<Vec<String>, String> {
    let c_name =
        CString::new(account.name.as_str()).map_err(|_| "user name contains NUL".to_string())?;
    let mut count: libc::c_int = 64;
    loop {
        let mut gids: Vec<libc::gid_t> = vec![0; usize::try_from(count).unwrap_or(64)];
        // SAFETY: gids has room for `count` entries; getgrouplist updates count.
        let rc = unsafe {
            libc::getgrouplist(c_name.as_ptr(), account.gid, gids.as_mut_ptr(), &mut count)
        };
        if rc < 0 {
            if count > 65_536 {
                return Err(format!("user {:?} is in too many groups", account.name));
            }
            continue;
        }
        gids.truncate(usize::try_from(count).unwrap_or(0));
        return Ok(gids.into_iter().filter_map(group_name).collect());
    }
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
