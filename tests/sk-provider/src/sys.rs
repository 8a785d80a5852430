//! The crate's only unsafe code: the C functions OpenSSH's ssh-sk.c looks
//! up with dlsym(), the `#[repr(C)]` structs of 9.2p1's sk-api.h, the
//! malloc'd answers OpenSSH later free()s, and flock(2). Every unsafe block
//! carries a SAFETY note (enforced by `undocumented_unsafe_blocks`). No
//! panic crosses the boundary: each entry point runs under catch_unwind.

use std::ffi::{c_char, c_int, CStr};
use std::fs::File;
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;

use crate::api::{self, SkError};
use crate::config;
use crate::device::{self, EnrollRequest, EnrollResponse, SignRequest, SignResponse, SkOption};

/// `struct sk_enroll_response`.
#[repr(C)]
pub struct SkEnrollResponse {
    pub flags: u8,
    pub public_key: *mut u8,
    pub public_key_len: usize,
    pub key_handle: *mut u8,
    pub key_handle_len: usize,
    pub signature: *mut u8,
    pub signature_len: usize,
    pub attestation_cert: *mut u8,
    pub attestation_cert_len: usize,
    pub authdata: *mut u8,
    pub authdata_len: usize,
}

/// `struct sk_sign_response`.
#[repr(C)]
pub struct SkSignResponse {
    pub flags: u8,
    pub counter: u32,
    pub sig_r: *mut u8,
    pub sig_r_len: usize,
    pub sig_s: *mut u8,
    pub sig_s_len: usize,
}

/// `struct sk_resident_key` (never filled: no resident keys here).
#[repr(C)]
pub struct SkResidentKey {
    pub alg: u32,
    pub slot: usize,
    pub application: *mut c_char,
    pub key: SkEnrollResponse,
    pub flags: u8,
    pub user_id: *mut u8,
    pub user_id_len: usize,
}

/// `struct sk_option`.
#[repr(C)]
pub struct SkOptionC {
    pub name: *mut c_char,
    pub value: *mut c_char,
    pub required: u8,
}

/// `uint32_t sk_api_version(void)`.
#[no_mangle]
pub extern "C" fn sk_api_version() -> u32 {
    catch_unwind(config::api_version).unwrap_or(api::API_VERSION)
}

/// `int sk_enroll(uint32_t alg, const uint8_t *challenge, size_t
/// challenge_len, const char *application, uint8_t flags, const char *pin,
/// struct sk_option **options, struct sk_enroll_response **enroll_response)`.
///
/// # Safety
///
/// As sk-api.h: `challenge` points to `challenge_len` readable bytes;
/// `application` and `pin` are NUL-terminated strings or NULL; `options`
/// is NULL or a NULL-terminated array of valid `sk_option`s; and
/// `enroll_response` is NULL or writable. The caller frees the answer
/// with free().
#[no_mangle]
pub unsafe extern "C" fn sk_enroll(
    alg: u32,
    challenge: *const u8,
    challenge_len: usize,
    application: *const c_char,
    flags: u8,
    pin: *const c_char,
    options: *mut *mut SkOptionC,
    enroll_response: *mut *mut SkEnrollResponse,
) -> c_int {
    guarded("sk_enroll", || {
        if enroll_response.is_null() {
            return Err(SkError::General("enroll_response is NULL".into()));
        }
        // SAFETY: non-NULL, and writable by the contract above.
        unsafe { *enroll_response = null_mut() };
        // SAFETY: each pointer as the contract above describes it.
        let (challenge, application, pin, options) = unsafe {
            (
                bytes(challenge, challenge_len)?,
                string(application)?,
                string(pin)?,
                read_options(options)?,
            )
        };
        let application =
            application.ok_or_else(|| SkError::General("application is NULL".into()))?;
        let response = device::enroll(&EnrollRequest {
            alg,
            challenge,
            application: &application,
            flags,
            pin: pin.as_deref(),
            options,
        })?;
        let out = enroll_to_c(&response)?;
        // SAFETY: non-NULL and writable (checked above).
        unsafe { *enroll_response = out };
        Ok(())
    })
}

/// `int sk_sign(uint32_t alg, const uint8_t *data, size_t data_len, const
/// char *application, const uint8_t *key_handle, size_t key_handle_len,
/// uint8_t flags, const char *pin, struct sk_option **options, struct
/// sk_sign_response **sign_response)`.
///
/// # Safety
///
/// As sk-api.h: `data` and `key_handle` point to their lengths of readable
/// bytes; `application` and `pin` are NUL-terminated strings or NULL;
/// `options` is NULL or a NULL-terminated array of valid `sk_option`s; and
/// `sign_response` is NULL or writable. The caller frees the answer with
/// free().
#[no_mangle]
pub unsafe extern "C" fn sk_sign(
    alg: u32,
    data: *const u8,
    data_len: usize,
    application: *const c_char,
    key_handle: *const u8,
    key_handle_len: usize,
    flags: u8,
    pin: *const c_char,
    options: *mut *mut SkOptionC,
    sign_response: *mut *mut SkSignResponse,
) -> c_int {
    guarded("sk_sign", || {
        if sign_response.is_null() {
            return Err(SkError::General("sign_response is NULL".into()));
        }
        // SAFETY: non-NULL, and writable by the contract above.
        unsafe { *sign_response = null_mut() };
        // SAFETY: each pointer as the contract above describes it.
        let (data, application, key_handle, pin, options) = unsafe {
            (
                bytes(data, data_len)?,
                string(application)?,
                bytes(key_handle, key_handle_len)?,
                string(pin)?,
                read_options(options)?,
            )
        };
        let application =
            application.ok_or_else(|| SkError::General("application is NULL".into()))?;
        let response = device::sign(&SignRequest {
            alg,
            data,
            application: &application,
            key_handle,
            flags,
            pin: pin.as_deref(),
            options,
        })?;
        let out = sign_to_c(&response)?;
        // SAFETY: non-NULL and writable (checked above).
        unsafe { *sign_response = out };
        Ok(())
    })
}

/// `int sk_load_resident_keys(const char *pin, struct sk_option **options,
/// struct sk_resident_key ***rks, size_t *nrks)`: this device makes no
/// resident keys, so it answers SSH_SK_ERR_UNSUPPORTED with none.
///
/// # Safety
///
/// `rks` and `nrks` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sk_load_resident_keys(
    _pin: *const c_char,
    _options: *mut *mut SkOptionC,
    rks: *mut *mut *mut SkResidentKey,
    nrks: *mut usize,
) -> c_int {
    guarded("sk_load_resident_keys", || {
        if !rks.is_null() {
            // SAFETY: non-NULL, and writable by the contract above.
            unsafe { *rks = null_mut() };
        }
        if !nrks.is_null() {
            // SAFETY: non-NULL, and writable by the contract above.
            unsafe { *nrks = 0 };
        }
        Err(SkError::Unsupported(
            "this software key holds no resident (discoverable) keys".into(),
        ))
    })
}

/// Runs an entry point: errors and panics become an error code and one
/// line on stderr (which ssh-sk-helper passes on to the user).
fn guarded(name: &str, body: impl FnOnce() -> Result<(), SkError>) -> c_int {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => 0,
        Ok(Err(error)) => {
            eprintln!("pam_tap-sk-provider: {name}: {error}");
            error.code()
        }
        Err(_) => {
            eprintln!("pam_tap-sk-provider: {name}: internal error (panic)");
            api::ERR_GENERAL
        }
    }
}

/// # Safety
///
/// `ptr` points to `len` readable bytes that outlive the returned slice
/// (or `len` is 0).
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], SkError> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(SkError::General("NULL buffer with a length".into()));
    }
    // SAFETY: non-NULL, `len` readable bytes by this function's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// # Safety
///
/// `ptr` is NULL or a NUL-terminated string.
unsafe fn string(ptr: *const c_char) -> Result<Option<String>, SkError> {
    if ptr.is_null() {
        return Ok(None);
    }
    // SAFETY: non-NULL and NUL-terminated by this function's contract.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str()
        .map(|s| Some(s.to_owned()))
        .map_err(|_| SkError::General("a string argument is not UTF-8".into()))
}

/// # Safety
///
/// `options` is NULL or a NULL-terminated array of pointers to valid
/// `sk_option`s whose name and value are NULL or NUL-terminated.
unsafe fn read_options(options: *mut *mut SkOptionC) -> Result<Vec<SkOption>, SkError> {
    let mut out = Vec::new();
    if options.is_null() {
        return Ok(out);
    }
    for index in 0.. {
        // SAFETY: the array is NULL-terminated, and we stop at the NULL.
        let option = unsafe { *options.add(index) };
        if option.is_null() {
            break;
        }
        // SAFETY: a non-NULL entry points to a valid sk_option.
        let option = unsafe { &*option };
        // SAFETY: name and value are NULL or NUL-terminated.
        let (name, value) = unsafe { (string(option.name)?, string(option.value)?) };
        out.push(SkOption {
            name: name.unwrap_or_default(),
            value: value.unwrap_or_default(),
            required: option.required != 0,
        });
    }
    Ok(out)
}

/// A malloc'd copy of `data` (NULL when empty, as sk-usbhid leaves absent
/// fields), for OpenSSH to free().
fn malloc_copy(data: &[u8]) -> Result<*mut u8, SkError> {
    if data.is_empty() {
        return Ok(null_mut());
    }
    // SAFETY: malloc with a non-zero size; the result is checked for NULL.
    let ptr = unsafe { libc::malloc(data.len()) }.cast::<u8>();
    if ptr.is_null() {
        return Err(SkError::General("malloc failed".into()));
    }
    // SAFETY: `ptr` is a fresh allocation of data.len() bytes, disjoint
    // from `data`.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr, data.len()) };
    Ok(ptr)
}

/// A calloc'd `T` (all fields zero: NULL pointers, zero lengths).
fn calloc_one<T>() -> Result<*mut T, SkError> {
    // SAFETY: calloc of one T-sized block; the result is checked for NULL.
    let ptr = unsafe { libc::calloc(1, std::mem::size_of::<T>()) }.cast::<T>();
    if ptr.is_null() {
        return Err(SkError::General("calloc failed".into()));
    }
    Ok(ptr)
}

fn enroll_to_c(response: &EnrollResponse) -> Result<*mut SkEnrollResponse, SkError> {
    let out = calloc_one::<SkEnrollResponse>()?;
    // SAFETY: `out` is a fresh, zeroed, exclusively owned allocation; all
    // zero bytes is a valid SkEnrollResponse (NULL pointers, zero lengths).
    let fields = unsafe { &mut *out };
    let filled = (|| {
        fields.flags = response.flags;
        fields.public_key = malloc_copy(&response.public_key)?;
        fields.public_key_len = response.public_key.len();
        fields.key_handle = malloc_copy(&response.key_handle)?;
        fields.key_handle_len = response.key_handle.len();
        fields.signature = malloc_copy(&response.signature)?;
        fields.signature_len = response.signature.len();
        fields.attestation_cert = malloc_copy(&response.attestation_cert)?;
        fields.attestation_cert_len = response.attestation_cert.len();
        fields.authdata = malloc_copy(&response.authdata)?;
        fields.authdata_len = response.authdata.len();
        Ok(())
    })();
    if let Err(error) = filled {
        // SAFETY: every pointer is NULL or came from malloc above, and
        // `out` from calloc; none is used again.
        unsafe {
            libc::free(fields.public_key.cast());
            libc::free(fields.key_handle.cast());
            libc::free(fields.signature.cast());
            libc::free(fields.attestation_cert.cast());
            libc::free(fields.authdata.cast());
            libc::free(out.cast());
        }
        return Err(error);
    }
    Ok(out)
}

fn sign_to_c(response: &SignResponse) -> Result<*mut SkSignResponse, SkError> {
    let out = calloc_one::<SkSignResponse>()?;
    // SAFETY: `out` is a fresh, zeroed, exclusively owned allocation; all
    // zero bytes is a valid SkSignResponse.
    let fields = unsafe { &mut *out };
    let filled = (|| {
        fields.flags = response.flags;
        fields.counter = response.counter;
        fields.sig_r = malloc_copy(&response.sig_r)?;
        fields.sig_r_len = response.sig_r.len();
        fields.sig_s = malloc_copy(&response.sig_s)?;
        fields.sig_s_len = response.sig_s.len();
        Ok(())
    })();
    if let Err(error) = filled {
        // SAFETY: every pointer is NULL or came from malloc above, and
        // `out` from calloc; none is used again.
        unsafe {
            libc::free(fields.sig_r.cast());
            libc::free(fields.sig_s.cast());
            libc::free(out.cast());
        }
        return Err(error);
    }
    Ok(out)
}

/// Blocks until this process holds `file`'s exclusive flock; released when
/// the descriptor closes.
pub fn lock_exclusive(file: &File) -> std::io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor `file` owns for the whole call.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}
