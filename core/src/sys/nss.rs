//! NSS lookups through the reentrant C calls (getpw*_r, getgr*_r,
//! getgrouplist): the unsafe half of `accounts`, which words the errors.

use std::ffi::CStr;
use std::io;

/// The C structs the getpw*_r / getgr*_r functions fill: plain data, for
/// which all-zero bytes are a valid value.
trait NssEntry {}
impl NssEntry for libc::passwd {}
impl NssEntry for libc::group {}

/// Runs one reentrant NSS lookup, growing its buffer while it answers
/// ERANGE (a group with many members needs more than the first 4 KiB), and
/// reads the entry while the buffer it points into is alive. The buffer is
/// handed to C as a pointer and a length and never read as Rust bytes, so
/// it need not be zeroed first (which cost more than the lookup of a user
/// in /etc/passwd). `Ok(None)`: NSS answered "no such entry".
fn lookup<T: NssEntry, R>(
    mut call: impl FnMut(&mut T, *mut libc::c_char, usize, &mut *mut T) -> libc::c_int,
    read: impl FnOnce(&T) -> R,
) -> io::Result<Option<R>> {
    let mut size = 4096;
    loop {
        let mut buf: Vec<u8> = Vec::with_capacity(size);
        // SAFETY: T is passwd or group (NssEntry), plain C data.
        let mut entry: T = unsafe { std::mem::zeroed() };
        let mut result: *mut T = std::ptr::null_mut();
        let rc = call(
            &mut entry,
            buf.as_mut_ptr().cast(),
            buf.capacity(),
            &mut result,
        );
        if rc == libc::ERANGE && size < 1 << 22 {
            size *= 2;
            continue;
        }
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // `entry` points into `buf`, alive until the end of this call.
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

/// (uid, gid) of the user `name`.
pub fn user_ids(name: &CStr) -> io::Result<Option<(u32, u32)>> {
    lookup(
        // SAFETY: `buf` points to `len` writable bytes that `lookup` keeps alive;
        // the other pointers are valid for the call.
        |pwd, buf, len, result| unsafe { libc::getpwnam_r(name.as_ptr(), pwd, buf, len, result) },
        |pwd: &libc::passwd| (pwd.pw_uid, pwd.pw_gid),
    )
}

pub fn user_name(uid: u32) -> io::Result<Option<String>> {
    lookup(
        // SAFETY: as in `user_ids`.
        |pwd, buf, len, result| unsafe { libc::getpwuid_r(uid, pwd, buf, len, result) },
        // SAFETY: pw_name points into the live buffer, NUL-terminated.
        |pwd: &libc::passwd| unsafe { entry_string(pwd.pw_name) },
    )
}

pub fn group_id(name: &CStr) -> io::Result<Option<u32>> {
    lookup(
        // SAFETY: as in `user_ids`.
        |grp, buf, len, result| unsafe { libc::getgrnam_r(name.as_ptr(), grp, buf, len, result) },
        |grp: &libc::group| grp.gr_gid,
    )
}

pub fn group_name(gid: u32) -> io::Result<Option<String>> {
    lookup(
        // SAFETY: as in `user_ids`.
        |grp, buf, len, result| unsafe { libc::getgrgid_r(gid, grp, buf, len, result) },
        // SAFETY: gr_name points into the live buffer, NUL-terminated.
        |grp: &libc::group| unsafe { entry_string(grp.gr_name) },
    )
}

/// The gids of every group `user` (primary group `gid`) is in; None when
/// more than 65,536.
pub fn group_list(user: &CStr, gid: u32) -> Option<Vec<u32>> {
    let mut count: libc::c_int = 64;
    loop {
        let mut gids: Vec<libc::gid_t> = vec![0; usize::try_from(count).unwrap_or(64)];
        // SAFETY: gids has room for `count` entries; getgrouplist updates count.
        let rc = unsafe { libc::getgrouplist(user.as_ptr(), gid, gids.as_mut_ptr(), &mut count) };
        if rc < 0 {
            if count > 65_536 {
                return None;
            }
            continue;
        }
        gids.truncate(usize::try_from(count).unwrap_or(0));
        return Some(gids);
    }
}
