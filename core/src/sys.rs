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

/// Starts connecting a non-blocking Unix stream socket to `path`. A full
/// listen backlog is `WouldBlock` (Linux does not queue a non-blocking
/// connect on a Unix socket), so the caller can retry until its deadline
/// instead of blocking in connect.
pub fn connect_unix_nonblocking(path: &std::path::Path) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long or holds a NUL",
        ));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: socket has no memory preconditions; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new descriptor this function owns from here on.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: addr is a valid sockaddr_un of `len` bytes, alive for the call.
    let rc = unsafe { libc::connect(fd, (&addr as *const libc::sockaddr_un).cast(), len) };
    if rc == 0 {
        return Ok(owned);
    }
    match io::Error::last_os_error() {
        e if e.raw_os_error() == Some(libc::EAGAIN) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "listen backlog full",
        )),
        e => Err(e),
    }
}

/// This process's effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The uid of the process at the other end of a Unix socket, as the kernel
/// recorded it when the connection (or, for the listening side, the
/// socket) was made (`SO_PEERCRED`).
pub fn peer_uid(socket: BorrowedFd<'_>) -> io::Result<u32> {
    // SAFETY: ucred is plain data; all-zero is a valid value.
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred is writable for len bytes and len says so; the kernel
    // writes at most len bytes.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != std::mem::size_of::<libc::ucred>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "SO_PEERCRED returned a short record",
        ));
    }
    Ok(cred.uid)
}

/// The host's name, if it has one that is text.
pub fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: buf is writable for its length; gethostname NUL-terminates or truncates.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    match (rc, std::str::from_utf8(&buf[..end])) {
        (0, Ok(name)) if !name.is_empty() => Some(name.to_string()),
        _ => None,
    }
}

/// One syslog line at `priority` (facility and level).
pub fn syslog(priority: libc::c_int, line: &std::ffi::CStr) {
    // SAFETY: a constant format string and one NUL-terminated argument.
    unsafe { libc::syslog(priority, c"%s".as_ptr(), line.as_ptr()) };
}
