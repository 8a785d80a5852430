//! System calls the standard library does not offer, each behind a safe
//! function. All of tapd's unsafe code is here, each block with its SAFETY
//! note (enforced by `undocumented_unsafe_blocks`).

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::time::Duration;

/// The kernel's record of who is at the other end of a Unix socket
/// (`SO_PEERCRED`): taken at connect time, so it cannot be forged.
pub fn peer_cred(socket: BorrowedFd<'_>) -> io::Result<(i32, u32, u32)> {
    let mut cred = MaybeUninit::<libc::ucred>::zeroed();
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred is writable for len bytes, and len says so; the kernel
    // writes at most len bytes and sets len to what it wrote.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            cred.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != size_of::<libc::ucred>() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "SO_PEERCRED returned a short record",
        ));
    }
    // SAFETY: zero-initialised, and the kernel filled the whole record (checked above).
    let cred = unsafe { cred.assume_init() };
    Ok((cred.pid, cred.uid, cred.gid))
}

fn socket_option(fd: RawFd, option: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value is a writable c_int and len is its size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// Takes over an inherited descriptor (systemd's socket activation passes
/// the listening socket as fd 3), after checking that it is a listening
/// Unix stream socket. The caller must call this at most once per `fd`, and
/// nothing else in the process may own that descriptor.
pub fn adopt_listener(fd: RawFd) -> io::Result<UnixListener> {
    let mut stat = MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: stat is writable for a whole `struct stat`; fstat on a
    // descriptor that is not open fails with EBADF and writes nothing.
    if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded, so it filled the record.
    let stat = unsafe { stat.assume_init() };
    if stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {fd} is not a socket"),
        ));
    }
    if socket_option(fd, libc::SO_TYPE)? != libc::SOCK_STREAM
        || socket_option(fd, libc::SO_DOMAIN)? != libc::AF_UNIX
        || socket_option(fd, libc::SO_ACCEPTCONN)? != 1
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("descriptor {fd} is not a listening Unix stream socket"),
        ));
    }
    // SAFETY: fd is open (fstat succeeded) and, by this function's
    // contract, owned by nobody else; from here the listener owns it.
    let listener = unsafe { UnixListener::from_raw_fd(fd) };
    // SAFETY: F_SETFD with FD_CLOEXEC on a descriptor we own; no memory involved.
    if unsafe { libc::fcntl(listener.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(listener)
}

/// SIGTERM and SIGINT, blocked in every thread and read from a descriptor
/// that the accept loop polls. Create it before starting any thread, so
/// every thread inherits the blocked mask.
pub fn termination_signals() -> io::Result<OwnedFd> {
    let mut set = MaybeUninit::<libc::sigset_t>::zeroed();
    // SAFETY: set points to a writable sigset_t; sigemptyset initialises it
    // and sigaddset only adds valid signal numbers to it.
    let set = unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGTERM);
        libc::sigaddset(set.as_mut_ptr(), libc::SIGINT);
        set.assume_init()
    };
    // SAFETY: set is an initialised sigset_t; the old mask is not wanted (null).
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: -1 asks for a new descriptor for the initialised set.
    let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: signalfd returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Reads one pending signal from `termination_signals`' descriptor.
pub fn read_signal(fd: BorrowedFd<'_>) -> Option<i32> {
    let mut info = MaybeUninit::<libc::signalfd_siginfo>::zeroed();
    let size = size_of::<libc::signalfd_siginfo>();
    // SAFETY: info is writable for `size` bytes; a non-blocking signalfd
    // writes whole records or fails with EAGAIN.
    let n = unsafe { libc::read(fd.as_raw_fd(), info.as_mut_ptr().cast(), size) };
    if n != size as isize {
        return None;
    }
    // SAFETY: read filled the whole record (checked above).
    Some(unsafe { info.assume_init() }.ssi_signo as i32)
}

/// Waits until one of `fds` is readable or `timeout` passes (None: no
/// limit). Returns, for each descriptor, whether it is readable.
pub fn poll_readable<const N: usize>(
    fds: [BorrowedFd<'_>; N],
    timeout: Option<Duration>,
) -> io::Result<[bool; N]> {
    let mut polled = fds.map(|fd| libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    let millis = match timeout {
        None => -1,
        Some(t) => libc::c_int::try_from(t.as_millis().max(1)).unwrap_or(libc::c_int::MAX),
    };
    // SAFETY: polled is an array of N initialised pollfd records, and N is
    // passed as its length.
    let rc = unsafe { libc::poll(polled.as_mut_ptr(), N as libc::nfds_t, millis) };
    if rc < 0 {
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::Interrupted {
            return Ok([false; N]);
        }
        return Err(error);
    }
    Ok(polled.map(|p| p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0))
}

/// A descriptor that becomes readable, for good, once `raise` is called:
/// how the accept loop tells waiting connection threads to stop.
pub fn stop_flag() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes an initial count and flags and returns a new
    // descriptor or -1.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: eventfd returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes a `stop_flag` descriptor readable (it stays so: nothing reads it).
pub fn raise(flag: BorrowedFd<'_>) {
    let one: u64 = 1;
    // SAFETY: writes the 8 bytes of `one`, as eventfd requires.
    unsafe { libc::write(flag.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// What a connection thread waits for.
#[derive(Debug, PartialEq, Eq)]
pub enum Woken {
    /// The listening socket may have a connection to accept.
    Incoming,
    /// The stop flag is raised.
    Stop,
}

/// One connection thread's wait for the listening socket or the stop flag.
/// Each thread has its own epoll instance watching the listener with
/// EPOLLEXCLUSIVE, so a new connection wakes one waiting thread, not all.
pub struct Waiting {
    epoll: OwnedFd,
}

const LISTENER: u64 = 0;
const STOP: u64 = 1;

impl Waiting {
    pub fn new(listener: BorrowedFd<'_>, stop: BorrowedFd<'_>) -> io::Result<Waiting> {
        // SAFETY: epoll_create1 takes flags and returns a new descriptor or -1.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: epoll_create1 returned a new descriptor that nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        for (watched, events, key) in [
            (listener, libc::EPOLLIN | libc::EPOLLEXCLUSIVE, LISTENER),
            (stop, libc::EPOLLIN, STOP),
        ] {
            let mut event = libc::epoll_event {
                events: events as u32,
                u64: key,
            };
            // SAFETY: both descriptors are open; event is an initialised
            // epoll_event that the call only reads.
            let rc = unsafe {
                libc::epoll_ctl(
                    epoll.as_raw_fd(),
                    libc::EPOLL_CTL_ADD,
                    watched.as_raw_fd(),
                    &mut event,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(Waiting { epoll })
    }

    /// Blocks until a connection may be waiting or the stop flag is raised
    /// (the stop flag wins when both are).
    pub fn wait(&self) -> io::Result<Woken> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 2];
        loop {
            // SAFETY: events is a writable array of 2 epoll_event records,
            // and 2 is passed as its length.
            let n = unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), events.as_mut_ptr(), 2, -1) };
            if n < 0 {
                let error = io::Error::last_os_error();
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            let ready = &events[..usize::try_from(n).unwrap_or(0)];
            if ready.iter().any(|e| e.u64 == STOP) {
                return Ok(Woken::Stop);
            }
            if !ready.is_empty() {
                return Ok(Woken::Incoming);
            }
        }
    }
}

/// This process's effective uid (the store's owner).
pub fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

/// Files this process creates are its own only, whatever umask started it
/// (by hand, without systemd's `UMask=`): the store and its side files.
pub fn private_umask() {
    // SAFETY: umask takes a mode, touches no memory and cannot fail.
    unsafe { libc::umask(0o077) };
}
