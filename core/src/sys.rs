//! System calls the standard library does not offer, each behind a safe
//! function. New unsafe code in core goes here, with its SAFETY note.

pub mod nss;

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
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

// --- the key helper's process and descriptors (helper/runner.rs) ---------

/// A connected pair of Unix stream sockets, both close-on-exec.
pub fn socketpair_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds: [RawFd; 2] = [-1, -1];
    // SAFETY: socketpair writes two descriptors into the array we pass.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sets up `command`'s child, between fork and exec: every inherited
/// descriptor from 3 up close-on-exec (below `max_fd` where close_range(2)
/// is missing), the set-group-id privilege dropped, and then `fd` itself
/// executed with `args` (`fexecve`), kept open across exec for a script
/// (the interpreter opens /dev/fd/N).
pub fn exec_fd_in_child(
    command: &mut std::process::Command,
    max_fd: libc::c_int,
    fd: OwnedFd,
    script: bool,
    args: std::sync::Arc<ExecArgs>,
) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and makes
    // only async-signal-safe system calls (close_range, fcntl, getresgid,
    // setresgid, execveat); it allocates nothing and touches no locks (argv
    // and envp were built before fork, `max_fd` computed before it).
    unsafe {
        command.pre_exec(move || {
            mark_fds_cloexec_from_3(max_fd);
            drop_set_group_id()?;
            if script {
                set_cloexec(fd.as_fd(), false)?;
            }
            Err(fexecve(fd.as_fd(), &args))
        });
    }
}

/// All three group ids set to the real one, so that a set-group-id
/// privilege is gone for good. Async-signal-safe.
fn drop_set_group_id() -> io::Result<()> {
    let (mut real, mut effective, mut saved) = (0, 0, 0);
    // SAFETY: getresgid writes three gid_t we own; setresgid takes no
    // pointers; both are async-signal-safe. (execve copies the effective
    // gid to the saved one, so checking the saved id is belt and braces.)
    unsafe {
        if libc::getresgid(&mut real, &mut effective, &mut saved) != 0 {
            return Err(io::Error::last_os_error());
        }
        if (effective != real || saved != real) && libc::setresgid(real, real, real) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// RLIMIT_NOFILE's soft limit, bounded: the last descriptor the fallback
/// of `mark_fds_cloexec_from_3` has to mark.
pub fn open_files_limit() -> libc::c_int {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we pass.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc != 0 || limit.rlim_cur == libc::RLIM_INFINITY {
        return 1 << 16;
    }
    libc::c_int::try_from(limit.rlim_cur.min(1 << 20)).unwrap_or(1 << 16)
}

/// Marks every descriptor from 3 up close-on-exec. (Closing them outright
/// would also close the pipe on which std reports a failed exec back to
/// the parent; it is close-on-exec already, so marking keeps it working.)
/// Async-signal-safe.
fn mark_fds_cloexec_from_3(max_fd: libc::c_int) {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range(2) only changes descriptor flags; async-signal-safe.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if rc == 0 {
        return;
    }
    // Kernels before 5.11: one fcntl per possible descriptor.
    for fd in 3..max_fd {
        // SAFETY: fcntl on a descriptor number that may not be open fails
        // with EBADF and changes nothing; async-signal-safe.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

pub fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: fcntl F_GETFL on a descriptor the caller borrows.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fcntl F_SETFL on the same descriptor; only its flags change.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// No more writes on this socket: EOF for its peer.
pub fn shutdown_write(socket: BorrowedFd<'_>) {
    // SAFETY: shutdown on a socket the caller borrows.
    unsafe { libc::shutdown(socket.as_raw_fd(), libc::SHUT_WR) };
}

/// poll(2) over `fds` (a descriptor of -1 is ignored), for at most
/// `timeout_ms`. The number of entries with events.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: libc::c_int) -> io::Result<usize> {
    let count = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
    // SAFETY: poll on a slice of pollfd we borrow mutably, its length given.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), count, timeout_ms) };
    usize::try_from(ready).map_err(|_| io::Error::last_os_error())
}

/// send(2) without blocking and without SIGPIPE (a peer that closed its
/// end makes it fail with EPIPE instead).
pub fn send_nosignal(socket: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: send from a live slice on a socket the caller borrows.
    let n = unsafe {
        libc::send(
            socket.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// read(2) into `buffer`.
pub fn read(fd: BorrowedFd<'_>, buffer: &mut [u8]) -> io::Result<usize> {
    // SAFETY: read into a live buffer of its own length.
    let n = unsafe { libc::read(fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Has our child `pid` exited? Leaves it unreaped (WNOWAIT). A child that
/// is gone (ECHILD: reaped by someone else) counts as exited.
pub fn child_exited(pid: libc::id_t) -> bool {
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value; waitid fills it.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waitid on our own child, writing into `info`.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid,
                &mut info,
                libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            // SAFETY: waitid succeeded, so si_pid is set (0: still running).
            return unsafe { info.si_pid() } != 0;
        }
        if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return true;
        }
    }
}

/// pidfd_open(2) for our own, not yet reaped, child.
pub fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = RawFd::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: the descriptor was just created (close-on-exec, as pidfd_open
    // always makes it) and is owned by nobody else.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// SIGKILL process group `pgid` (which may be empty already: harmless).
pub fn kill_process_group(pgid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pgid) {
        // SAFETY: kill(2) with a negative pid signals that process group.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
}

/// Waits for our child `pid` to end and reaps it, however long it takes.
pub fn reap_blocking(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    let mut status = 0;
    // SAFETY: waitpid on our own child, writing into `status`; it blocks
    // until the child is gone.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
}
