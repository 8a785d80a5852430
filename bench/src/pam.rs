//! Just enough libpam to drive pam_authenticate from a benchmark: a handle
//! opened on a private service directory, and a conversation that answers
//! every hidden prompt with one fixed string. `login` is one whole login's
//! PAM life (pam_start, pam_authenticate, pam_end), so loading and
//! unloading the modules counts, as in every login process.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;

#[repr(C)]
struct Message {
    style: c_int,
    text: *const c_char,
}

#[repr(C)]
struct Response {
    text: *mut c_char,
    retcode: c_int,
}

#[repr(C)]
struct Conversation {
    callback: extern "C" fn(c_int, *mut *const Message, *mut *mut Response, *mut c_void) -> c_int,
    answer: *mut c_void,
}

#[link(name = "pam")]
extern "C" {
    fn pam_start_confdir(
        service: *const c_char,
        user: *const c_char,
        conv: *const Conversation,
        confdir: *const c_char,
        handle: *mut *mut c_void,
    ) -> c_int;
    fn pam_authenticate(handle: *mut c_void, flags: c_int) -> c_int;
    fn pam_end(handle: *mut c_void, status: c_int) -> c_int;
}

const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_SILENT: c_int = 0x8000;
pub const PAM_SUCCESS: c_int = 0;

extern "C" fn answer(
    count: c_int,
    messages: *mut *const Message,
    responses: *mut *mut Response,
    answer: *mut c_void,
) -> c_int {
    let count = usize::try_from(count).unwrap_or(0);
    // SAFETY: libpam frees this array and each text with free(3).
    let out = unsafe { libc::calloc(count, std::mem::size_of::<Response>()) }.cast::<Response>();
    if out.is_null() {
        return 5; // PAM_BUF_ERR
    }
    for i in 0..count {
        // SAFETY: libpam passes `count` valid message pointers (Linux-PAM layout).
        let style = unsafe { (**messages.add(i)).style };
        if style == PAM_PROMPT_ECHO_OFF {
            // SAFETY: `answer` is the CString owned by the Session below.
            unsafe { (*out.add(i)).text = libc::strdup(answer.cast::<c_char>()) };
        }
    }
    // SAFETY: responses is libpam's out-parameter.
    unsafe { *responses = out };
    PAM_SUCCESS
}

pub struct Session {
    handle: *mut c_void,
    // Boxed so the pointers handed to libpam stay put.
    _conversation: Box<Conversation>,
    _answer: CString,
}

impl Session {
    pub fn open(confdir: &Path, service: &str, user: &str, typed: &str) -> Result<Session, c_int> {
        let answer = CString::new(typed).unwrap_or_default();
        let conversation = Box::new(Conversation {
            callback: answer_fn(),
            answer: answer.as_ptr() as *mut c_void,
        });
        let (service, user) = (cstring(service), cstring(user));
        let confdir = cstring(&confdir.to_string_lossy());
        let mut handle = std::ptr::null_mut();
        // SAFETY: every pointer is valid; libpam copies the strings.
        let rc = unsafe {
            pam_start_confdir(
                service.as_ptr(),
                user.as_ptr(),
                &*conversation,
                confdir.as_ptr(),
                &mut handle,
            )
        };
        if rc != PAM_SUCCESS {
            return Err(rc);
        }
        Ok(Session {
            handle,
            _conversation: conversation,
            _answer: answer,
        })
    }

    pub fn authenticate(&mut self) -> c_int {
        // SAFETY: the handle is live until drop.
        unsafe { pam_authenticate(self.handle, PAM_SILENT) }
    }
}

/// One whole login: pam_start, pam_authenticate, pam_end. Returns
/// pam_authenticate's code (or pam_start's, when that failed).
pub fn login(confdir: &Path, service: &str, user: &str, typed: &str) -> c_int {
    match Session::open(confdir, service, user, typed) {
        Ok(mut session) => session.authenticate(),
        Err(code) => code,
    }
}

fn answer_fn() -> extern "C" fn(c_int, *mut *const Message, *mut *mut Response, *mut c_void) -> c_int
{
    answer
}

fn cstring(text: &str) -> CString {
    CString::new(text).unwrap_or_default()
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: the handle came from pam_start_confdir and is ended once.
        unsafe { pam_end(self.handle, PAM_SUCCESS) };
    }
}

pub fn code_name(code: c_int) -> String {
    extern "C" {
        fn pam_strerror(handle: *mut c_void, code: c_int) -> *const c_char;
    }
    // SAFETY: pam_strerror returns a static string for any code.
    let text = unsafe { pam_strerror(std::ptr::null_mut(), code) };
    // SAFETY: non-null static C string.
    let text = if text.is_null() {
        "?".into()
    } else {
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    };
    format!("{code} ({text})")
}
