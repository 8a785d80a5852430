//! The module's only unsafe code: the libpam and libc calls pam-bindings
//! does not wrap.

use pam::module::PamHandle;
use zeroize::Zeroizing;

/// PAM_AUTHTOK's item type (security/_pam_types.h).
const PAM_AUTHTOK: libc::c_int = 6;
const PAM_SUCCESS: libc::c_int = 0;

#[link(name = "pam")]
extern "C" {
    fn pam_fail_delay(pamh: *mut PamHandle, usec: libc::c_uint) -> libc::c_int;
    fn pam_set_item(
        pamh: *mut PamHandle,
        item_type: libc::c_int,
        item: *const libc::c_void,
    ) -> libc::c_int;
    fn pam_getenv(pamh: *mut PamHandle, name: *const libc::c_char) -> *const libc::c_char;
}

/// A variable of the PAM environment (set by the application or a
/// module), copied; None when unset or not UTF-8.
pub fn getenv(pamh: &mut PamHandle, name: &str) -> Option<String> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: pamh is the live handle libpam passed to this hook; name is a
    // NUL-terminated string that outlives the call.
    let value = unsafe { pam_getenv(pamh, name.as_ptr()) };
    if value.is_null() {
        return None;
    }
    // SAFETY: libpam returns a NUL-terminated string it owns, valid until the
    // environment changes; it is copied here before anything else runs.
    let text = unsafe { std::ffi::CStr::from_ptr(value) };
    text.to_str().ok().map(str::to_string)
}

/// Asks libpam to delay a failed sign-in by at least `usec`.
pub fn fail_delay(pamh: &mut PamHandle, usec: libc::c_uint) {
    // SAFETY: pamh is the live handle libpam passed to this hook.
    unsafe { pam_fail_delay(pamh, usec) };
}

/// Hands `token` to the next module as PAM_AUTHTOK. libpam keeps its own
/// copy (and scrubs it at pam_end); ours is zeroed on drop. False when the
/// token holds a NUL byte (no C string can) or libpam refuses.
pub fn set_authtok(pamh: &mut PamHandle, token: &[u8]) -> bool {
    if token.contains(&0) {
        return false;
    }
    let mut c_string = Zeroizing::new(Vec::with_capacity(token.len() + 1));
    c_string.extend_from_slice(token);
    c_string.push(0);
    // SAFETY: pamh is the live handle libpam passed to this hook; the item is
    // a NUL-terminated string that outlives the call, and libpam copies it.
    let rc = unsafe { pam_set_item(pamh, PAM_AUTHTOK, c_string.as_ptr().cast()) };
    rc == PAM_SUCCESS
}
