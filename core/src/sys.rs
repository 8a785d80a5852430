//! System calls the standard library does not offer, each behind a safe
//! function. New unsafe code in core goes here, with its SAFETY note.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

/// An argv and envp for execve, built before fork: the child of a
/// multi-threaded process may not allocate between fork and exec.
pub struct ExecArgs {
    // Owned strings the pointer arrays below point into; never mutated.
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
}

// SAFETY: the raw pointers only point into `_strings`, which the struct
// owns and never changes after construction; sharing or sending the struct
// shares read-only C strings, as `Vec<CString>` itself may be shared.
unsafe impl Send for ExecArgs {}
// SAFETY: as above; nothing is ever written through the pointers.
unsafe impl Sync for ExecArgs {}

impl ExecArgs {
    /// argv = `[program]`, envp = `env`. None if a string holds a NUL.
    pub fn new(program: &OsStr, env: &[&str]) -> Option<ExecArgs> {
        let mut strings = vec![CString::new(program.as_bytes()).ok()?];
        for var in env {
            strings.push(CString::new(*var).ok()?);
        }
        // Moving a CString does not move its heap bytes: the pointers stay valid.
        let argv = vec![strings[0].as_ptr(), std::ptr::null()];
        let mut envp: Vec<_> = strings[1..].iter().map(|s| s.as_ptr()).collect();
        envp.push(std::ptr::null());
        Some(ExecArgs {
            _strings: strings,
            argv,
            envp,
        })
    }
}

/// Execute the file open at `fd` (fexecve: execveat with AT_EMPTY_PATH), so
/// the program that runs is the one that was checked, whatever its path
/// names meanwhile. Returns only on failure. Async-signal-safe: meant for
/// the child between fork and exec.
pub fn fexecve(fd: BorrowedFd<'_>, args: &ExecArgs) -> io::Error {
    // SAFETY: argv and envp are NULL-terminated arrays of pointers to
    // NUL-terminated strings owned by `args`, alive for this call; fexecve
    // returns only on failure and writes nothing through them.
    unsafe { libc::fexecve(fd.as_raw_fd(), args.argv.as_ptr(), args.envp.as_ptr()) };
    io::Error::last_os_error()
}

/// Set or clear FD_CLOEXEC on `fd`. Async-signal-safe.
pub fn set_cloexec(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    // SAFETY: fcntl F_GETFD/F_SETFD on a descriptor the caller borrows; it
    // changes only that descriptor's flags.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFD);
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        let wanted = if on {
            flags | libc::FD_CLOEXEC
        } else {
            flags & !libc::FD_CLOEXEC
        };
        if libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, wanted) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
