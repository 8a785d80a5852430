//! Running the key helper: one request in, one response out, within a hard
//! deadline. The helper is untrusted for anything but carrying bytes, and
//! it may hang (a key waiting for a touch), die (a crashing HID stack), or
//! print anything at all; none of that may hang, crash or leak into the
//! PAM host process (sshd, login, su, sudo).
//!
//! * The helper runs with an empty environment (`PATH=/usr/bin:/bin` only),
//!   stdin a socket (so writing to a helper that already exited raises no
//!   SIGPIPE in the host: `send(MSG_NOSIGNAL)`), stdout a pipe, stderr
//!   `/dev/null`, in its own process group, with every other inherited file
//!   descriptor closed at exec (sshd and login may hold descriptors without
//!   `FD_CLOEXEC`).
//! * What runs is the file opened once as a [`Program`] (and, for root,
//!   checked through that descriptor): it is executed with `fexecve`, never
//!   looked up by path again, so renaming another file over the path after
//!   the check changes nothing.
//! * Request and response travel in one `poll(2)` loop bounded by the
//!   deadline; at most [`MAX_MESSAGE_BYTES`] + 1 bytes are read.
//! * On timeout, overflow or garbage the whole process group is killed with
//!   SIGKILL; after any exit, what is left of the group (children that
//!   outlived the helper) is killed too, and the helper is always reaped.
//!   The group is killed only while the helper is unreaped (a zombie at
//!   worst, found with `waitid(WNOWAIT)`), so its id is still ours. A host that set SIGCHLD to
//!   SIG_IGN (or reaps every child itself) makes `waitpid` fail with
//!   ECHILD: the child is gone, which is not an error.
//! * The request may carry a PIN: its serialized form lives only in a
//!   zeroized buffer, and nothing here logs a request.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sys::ExecArgs;

use zeroize::Zeroizing;

use crate::keys::protocol::{Request, Response, MAX_MESSAGE_BYTES};

pub use super::failure::{Death, Garbage, HelperFailure, SpawnError};

/// How long a helper that already answered may take to exit before it is
/// killed, and how long a killed helper may take to be reaped before a
/// background thread takes over (a process stuck in uninterruptible USB
/// I/O dies only when the I/O ends).
const EXIT_GRACE: Duration = Duration::from_millis(500);

/// The helper program, opened once: what runs is this file, whatever its
/// path names by the time it is executed. [`crate::trust::open_program`]
/// opens and checks one for root; [`Program::open`] opens one unchecked.
#[derive(Debug)]
pub struct Program {
    file: File,
    /// For messages and the helper's argv[0].
    path: PathBuf,
    /// Starts with `#!`: the kernel hands the interpreter `/dev/fd/N`, so
    /// the descriptor must stay open across exec (for an ELF it is closed).
    script: bool,
}

impl Program {
    /// Opens `path` for running, without trust checks (a helper the
    /// caller runs with its own rights, and tests).
    pub fn open(path: &Path) -> io::Result<Program> {
        let open = |flags| {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(flags)
                .open(path)
        };
        match open(libc::O_NONBLOCK | libc::O_NOCTTY) {
            Ok(file) => Program::from_file(file, path.to_owned()),
            // Execute-only (mode 0711): a path descriptor still executes. No
            // script can be run so: its interpreter could not read it.
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(Program {
                file: open(libc::O_PATH)?,
                path: path.to_owned(),
                script: false,
            }),
            Err(e) => Err(e),
        }
    }

    /// `file` is open for reading (close-on-exec, as std opens files).
    pub fn from_file(file: File, path: PathBuf) -> io::Result<Program> {
        let mut magic = [0u8; 2];
        let got = file.read_at(&mut magic, 0)?;
        Ok(Program {
            file,
            path,
            script: got == 2 && magic == *b"#!",
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Run the program at `helper` on `request`: [`run_program`] on the file
/// `helper` names now. For callers that need no trust checks.
pub fn run_helper(
    helper: &Path,
    request: &Request,
    timeout: Duration,
) -> Result<Response, HelperFailure> {
    let program = Program::open(helper).map_err(spawn_error(helper))?;
    run_program(&program, request, timeout)
}

/// Run `program` on `request` and return its response, or why there is none,
/// within `timeout` (plus a fraction of a second to reap a killed helper).
pub fn run_program(
    program: &Program,
    request: &Request,
    timeout: Duration,
) -> Result<Response, HelperFailure> {
    let deadline = Instant::now() + timeout;
    // The request may hold a PIN: serialize into a buffer that is zeroed on
    // drop and large enough that serde_json never reallocates (and so never
    // leaves a copy behind in freed memory).
    let mut wire = Zeroizing::new(Vec::with_capacity(MAX_MESSAGE_BYTES + 1));
    if let Err(e) = serde_json::to_writer(&mut *wire, request) {
        return Err(HelperFailure::Spawn(SpawnError::Encode(e)));
    }
    wire.push(b'\n');

    let helper = program.path();
    let (ours, theirs) = stdin_socketpair().map_err(spawn_error(helper))?;
    let mut child = spawn_retrying_busy(program, &theirs).map_err(spawn_error(helper))?;
    drop(theirs);
    let Some(stdout) = child.stdout.take() else {
        kill_and_reap(&mut child);
        return Err(HelperFailure::Spawn(SpawnError::NoStdout));
    };
    let stdout = OwnedFd::from(stdout);

    let outcome = exchange(&ours, &stdout, &wire, deadline);
    drop(ours);
    drop(stdout);
    match outcome {
        Exchange::Answer(bytes) => {
            let parsed = Response::from_json(&bytes);
            match parsed {
                Ok(response) => {
                    // The answer is all we need; a helper that lingers after
                    // answering is killed after a short grace.
                    let grace = deadline
                        .saturating_duration_since(Instant::now())
                        .min(EXIT_GRACE);
                    if wait_exit(&child, Instant::now() + grace) {
                        reap(&mut child);
                    } else {
                        kill_and_reap(&mut child);
                    }
                    Ok(response)
                }
                Err(why) => {
                    kill_and_reap(&mut child);
                    Err(HelperFailure::Garbage(Garbage::Unreadable(why)))
                }
            }
        }
        Exchange::Empty => {
            if wait_exit(&child, deadline) {
                Err(HelperFailure::Died(Death::Exited(reap(&mut child))))
            } else {
                kill_and_reap(&mut child);
                Err(HelperFailure::Timeout)
            }
        }
        Exchange::TooLarge => {
            kill_and_reap(&mut child);
            Err(HelperFailure::Garbage(Garbage::TooLarge))
        }
        Exchange::Timeout => {
            kill_and_reap(&mut child);
            Err(HelperFailure::Timeout)
        }
        Exchange::Io(e) => {
            kill_and_reap(&mut child);
            Err(HelperFailure::Died(Death::Unread(e)))
        }
    }
}

fn spawn_error(helper: &Path) -> impl FnOnce(io::Error) -> HelperFailure + '_ {
    move |source| {
        HelperFailure::Spawn(SpawnError::Program {
            path: helper.to_path_buf(),
            source,
        })
    }
}

/// A connected pair of Unix stream sockets, both close-on-exec; `Command`
/// dup2()s the child's end onto fd 0, which clears the flag there.
fn stdin_socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    crate::sys::socketpair_cloexec()
}

/// Spawn, retrying briefly on ETXTBSY. A multi-threaded process that has
/// just written the helper (the test suites do) can see its write descriptor
/// still held by another thread's forked child until that child execs; the
/// kernel lets go within milliseconds. An installed helper is never open for
/// writing, so in production the loop runs once.
fn spawn_retrying_busy(program: &Program, stdin: &OwnedFd) -> io::Result<Child> {
    const ATTEMPTS: u32 = 20;
    // argv[0] is the path; the environment is PATH alone.
    let args = Arc::new(
        ExecArgs::new(program.path.as_os_str(), &["PATH=/usr/bin:/bin"])
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the path"))?,
    );
    let mut attempt = 1;
    loop {
        match spawn(program, &args, stdin.try_clone()?) {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && attempt < ATTEMPTS => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            result => return result,
        }
    }
}

fn spawn(program: &Program, args: &Arc<ExecArgs>, stdin: OwnedFd) -> io::Result<Child> {
    // Computed before fork: the child may only make async-signal-safe calls.
    let max_fd = crate::sys::open_files_limit();
    // std sets up stdio, the working directory and the process group, then
    // runs the child's set-up; that executes the descriptor itself, so
    // std's own exec by path (and its environment) is never reached.
    let mut command = Command::new(&program.path);
    command
        .current_dir("/")
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group, so a timeout kills the helper's children too.
        .process_group(0);
    crate::sys::exec_fd_in_child(
        &mut command,
        max_fd,
        program.file.try_clone()?.into(),
        program.script,
        Arc::clone(args),
    );
    command.spawn()
}

enum Exchange {
    /// Stdout reached EOF with these bytes (at least one).
    Answer(Vec<u8>),
    /// Stdout reached EOF with nothing on it.
    Empty,
    TooLarge,
    Timeout,
    Io(io::Error),
}

/// Write `wire` to the helper's stdin (then close it) while reading its
/// stdout to EOF, all before `deadline`.
fn exchange(stdin: &OwnedFd, stdout: &OwnedFd, wire: &[u8], deadline: Instant) -> Exchange {
    let nonblocking =
        crate::sys::set_nonblocking(stdin.as_fd()).and(crate::sys::set_nonblocking(stdout.as_fd()));
    if let Err(e) = nonblocking {
        return Exchange::Io(e);
    }
    let mut written = 0usize;
    let mut stdin_open = true;
    let mut answer: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        if stdin_open && written == wire.len() {
            // Everything sent: EOF for the helper.
            crate::sys::shutdown_write(stdin.as_fd());
            stdin_open = false;
        }
        let Some(wait) = remaining_millis(deadline) else {
            return Exchange::Timeout;
        };
        let mut fds = [
            libc::pollfd {
                fd: stdout.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: if stdin_open { stdin.as_raw_fd() } else { -1 },
                events: libc::POLLOUT,
                revents: 0,
            },
        ];
        if let Err(e) = crate::sys::poll(&mut fds, wait) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Exchange::Io(e);
        }
        if stdin_open && fds[1].revents != 0 {
            // Without SIGPIPE: a helper that closed its stdin raises none here.
            match crate::sys::send_nosignal(stdin.as_fd(), &wire[written..]) {
                Ok(n) => written += n,
                Err(e)
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    // The helper does not read its stdin (EPIPE, ECONNRESET):
                    // its answer decides.
                    stdin_open = false;
                }
                Err(_) => {}
            }
        }
        if fds[0].revents != 0 {
            // Read at most one byte past the limit, to see an overflow.
            let room = (MAX_MESSAGE_BYTES + 1 - answer.len()).min(chunk.len());
            match crate::sys::read(stdout.as_fd(), &mut chunk[..room]) {
                Ok(0) => {
                    return if answer.is_empty() {
                        Exchange::Empty
                    } else {
                        Exchange::Answer(answer)
                    };
                }
                Ok(n) => {
                    answer.extend_from_slice(&chunk[..n]);
                    if answer.len() > MAX_MESSAGE_BYTES {
                        return Exchange::TooLarge;
                    }
                }
                Err(e)
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    return Exchange::Io(e);
                }
                Err(_) => {}
            }
        }
    }
}

/// Milliseconds left until `deadline`, rounded up, or None once it passed.
fn remaining_millis(deadline: Instant) -> Option<libc::c_int> {
    let left = deadline.checked_duration_since(Instant::now())?;
    if left.is_zero() {
        return None;
    }
    let millis = left.as_micros().div_ceil(1000);
    Some(libc::c_int::try_from(millis).unwrap_or(libc::c_int::MAX))
}

/// Wait until the helper has exited, without reaping it: while it is a
/// zombie its pid, which is also its process group's id, stays reserved, so
/// the group can still be killed safely (see [`reap`]). True once it exited
/// or is gone (a host that set SIGCHLD to SIG_IGN, or reaps every child
/// itself, makes waitid fail with ECHILD: not an error), false if it still
/// runs at `deadline`.
fn wait_exit(child: &Child, deadline: Instant) -> bool {
    let pid: libc::id_t = child.id();
    // A pidfd becomes readable when the child exits, so the wait ends at
    // the exit, not at the next tick of a sleep loop (Linux 5.3+; without
    // it, sleeps of 1 ms doubling to 20 ms).
    let mut pidfd: Option<OwnedFd> = None;
    let mut tried_pidfd = false;
    let mut pause = Duration::from_millis(1);
    loop {
        if crate::sys::child_exited(pid) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        if !tried_pidfd {
            tried_pidfd = true;
            pidfd = crate::sys::pidfd_open(child.id());
        }
        match &pidfd {
            Some(fd) => {
                let wait = remaining_millis(deadline).unwrap_or(0);
                let mut entry = libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // Its result does not matter: the loop asks `exited` again.
                let _ = crate::sys::poll(std::slice::from_mut(&mut entry), wait);
            }
            None => {
                std::thread::sleep(pause.min(deadline - now));
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        }
    }
}

/// SIGKILL the helper's process group (its own children too). Only while
/// the helper is not yet reaped, so that the group id cannot be anybody
/// else's.
fn kill_group(child: &Child) {
    // The group the helper leads (process_group(0)).
    crate::sys::kill_process_group(child.id());
}

/// The helper has exited: kill what is left of its process group (children
/// that outlived it, maybe still holding its stdout), then reap it. Its
/// status, unless the host took it.
fn reap(child: &mut Child) -> Option<ExitStatus> {
    kill_group(child);
    for _ in 0..100 {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => std::thread::sleep(Duration::from_millis(1)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    None
}

/// SIGKILL the helper's process group and reap the helper. If it cannot be
/// reaped within [`EXIT_GRACE`] (stuck in uninterruptible I/O), a detached
/// thread waits for it so that it never lingers as a zombie.
fn kill_and_reap(child: &mut Child) {
    kill_group(child);
    if wait_exit(child, Instant::now() + EXIT_GRACE) {
        reap(child);
        return;
    }
    let pid = child.id();
    let _ = std::thread::Builder::new()
        .name("tap-helper-reaper".into())
        .spawn(move || crate::sys::reap_blocking(pid));
}

#[cfg(test)]
mod tests;
