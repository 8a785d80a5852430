//! The roster: which users have a pass or a security key in the database,
//! kept current by one listening session, so that a sign-in by a user who
//! has neither (most logins on most hosts) costs no round trip to it.
//!
//! * **Filled.** A thread of the daemon's own holds a session that first
//!   `LISTEN`s on `pam_tap_credentials` (schema step 2's triggers notify
//!   each new pass and key row with its user), then reads every user with
//!   a row in either table. The session is driven by hand, so notifications
//!   that arrive while it reads are kept: no user falls between the two.
//! * **Trusted only while current.** The session answers an empty query
//!   every `HEARTBEAT`, each within `connect_timeout`; the roster counts as
//!   current until `HEARTBEAT + connect_timeout` after the last answer.
//!   A store that loses its own session says so (`distrust`): the roster
//!   is then not current until its session answers again. While it is not
//!   (at start, after a lost session, a failover, a silent network),
//!   sign-ins read the database as before. A new session reads the whole
//!   list again, and so does every `RELOAD`, which catches rows written
//!   without the triggers (a restore).
//! * **Never shrinks.** A pass revoked or a key removed leaves its user in
//!   it; their sign-ins read the database, which answers for itself. So a
//!   stale roster can only make a user who just got a pass or key on
//!   another host be treated, for the milliseconds a notification takes,
//!   as one who has neither; never the other way round.

use super::link::{describe, Dialer, Query, Session};
use super::Result;
use std::collections::HashSet;
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio_postgres::AsyncMessage;

/// The channel schema step 2's triggers notify, with the user as payload.
const CHANNEL: &str = "pam_tap_credentials";

/// How often the listening session must prove itself: with
/// `connect_timeout`, how long a database gone silent can still be taken
/// at its last word about who has nothing.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// How often the whole list is read again.
const RELOAD: Duration = Duration::from_secs(60);

/// How long to wait before dialing again after a failed session.
const RETRY: Duration = Duration::from_secs(2);

/// At most this many names heard between two reads of the whole list.
/// Anyone who may connect to the database can `NOTIFY` the channel (a
/// stolen host credential too); a name heard only makes tapd ask the
/// database about that user, so a flood can cost memory, never a wrong
/// answer. Past this, the roster stops being current until the next read.
const HEARD_MAX: usize = 100_000;

/// Every user with a pass row or a key row (a host may read both).
const EVERY_USER: &str =
    "SELECT \"user\" FROM pam_tap.host_passes UNION SELECT \"user\" FROM pam_tap.keys";

/// Every user with a pass row or a key row, read on `session`.
async fn every_user(session: &Session) -> std::result::Result<Vec<String>, tokio_postgres::Error> {
    let rows = session.query(EVERY_USER, &[]).await?;
    rows.iter().map(|r| r.try_get(0)).collect()
}

/// Which users have a pass or a key, as one listening session knows it.
/// Dropping the last handle ends the session (within a heartbeat).
pub struct Roster {
    shared: Arc<Shared>,
}

struct Shared {
    users: RwLock<HashSet<String>>,
    /// Users this daemon noted since the list was last read: a read that
    /// began before their row was written does not have them.
    noted: Mutex<Vec<String>>,
    /// Until when (ms after `epoch`) the roster is current; 0: it is not.
    current_until: AtomicU64,
    /// Names heard since a read of the whole list began; past `HEARD_MAX`
    /// the roster is not current (and takes no more) until a read that
    /// was not flooded.
    heard: AtomicUsize,
    epoch: Instant,
    stop: AtomicBool,
    /// What became of the session, for the daemon's log.
    report: Box<dyn Fn(RosterEvent) + Send + Sync>,
}

/// What the listening session reports, once per change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterEvent {
    /// The list is read and the session listens: `users` have a pass or key.
    Current { users: usize },
    /// The session is gone or failed; sign-ins read the database meanwhile.
    Lost(String),
}

impl Roster {
    /// Starts the listening session's thread for the store `config` names.
    /// Fails only when the settings cannot make a session at all (the same
    /// checks as connecting); the database need not answer yet.
    pub fn start(
        config: &super::PostgresConfig,
        report: impl Fn(RosterEvent) + Send + Sync + 'static,
    ) -> Result<Roster> {
        let (dialer, _) = super::dialer(config, None, "pam_tap-roster")?;
        let shared = Arc::new(Shared {
            users: RwLock::new(HashSet::new()),
            noted: Mutex::new(Vec::new()),
            current_until: AtomicU64::new(0),
            heard: AtomicUsize::new(0),
            epoch: Instant::now(),
            stop: AtomicBool::new(false),
            report: Box::new(report),
        });
        let listening = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("tap-roster".into())
            .spawn(move || listen_until_stopped(&listening, &dialer))
            .map_err(|e| {
                tap_core::store::StoreError::io(format!("postgresql: roster thread: {e}"))
            })?;
        Ok(Roster { shared })
    }

    /// True only when the roster is current and `user` has neither a pass
    /// nor a key in the database.
    pub fn has_nothing(&self, user: &str) -> bool {
        self.is_current()
            && self
                .shared
                .users
                .read()
                .is_ok_and(|users| !users.contains(user))
    }

    /// Whether the listening session answered recently enough.
    pub fn is_current(&self) -> bool {
        self.shared.now_ms() < self.shared.current_until.load(Ordering::Acquire)
    }

    /// A session of this daemon's found the database gone: not current
    /// until the listening session answers again.
    pub(super) fn distrust(&self) {
        self.shared.current_until.store(0, Ordering::Release);
    }

    /// A pass or key this daemon itself just wrote for `user`: known at
    /// once, before the notification comes back.
    pub(super) fn note(&self, user: &str) {
        if let Ok(mut noted) = self.shared.noted.lock() {
            noted.push(user.to_string());
        }
        if let Ok(mut users) = self.shared.users.write() {
            users.insert(user.to_string());
        }
    }
}

impl Drop for Roster {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
    }
}

impl Shared {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Current until one heartbeat and one connect timeout from now
    /// (unless flooded since the last read).
    fn answered(&self, connect_timeout: Duration) {
        if self.flooded() {
            return;
        }
        let until =
            self.now_ms() + u64::try_from((HEARTBEAT + connect_timeout).as_millis()).unwrap_or(0);
        self.current_until.store(until, Ordering::Release);
    }

    /// A name heard on the channel.
    fn add(&self, user: String) {
        if self.heard.fetch_add(1, Ordering::AcqRel) >= HEARD_MAX {
            self.current_until.store(0, Ordering::Release);
            return;
        }
        if let Ok(mut users) = self.users.write() {
            users.insert(user);
        }
    }

    fn flooded(&self) -> bool {
        self.heard.load(Ordering::Acquire) >= HEARD_MAX
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }
}

fn listen_until_stopped(shared: &Shared, dialer: &Dialer) {
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    else {
        (shared.report)(RosterEvent::Lost(
            "no runtime for the listening session".into(),
        ));
        return;
    };
    // A session that keeps failing is reported once, until one works.
    let mut failing = false;
    let mut report = |event: RosterEvent| {
        let repeated = failing && matches!(event, RosterEvent::Lost(_));
        failing = matches!(event, RosterEvent::Lost(_));
        if !repeated {
            (shared.report)(event);
        }
    };
    while !shared.stopped() {
        let why = listen(shared, dialer, &runtime, &mut report);
        shared.current_until.store(0, Ordering::Release);
        if shared.stopped() {
            return;
        }
        report(RosterEvent::Lost(why));
        let retry_at = Instant::now() + RETRY;
        while Instant::now() < retry_at && !shared.stopped() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One listening session, until it fails (the reason) or the roster stops.
fn listen(
    shared: &Shared,
    dialer: &Dialer,
    runtime: &tokio::runtime::Runtime,
    report: &mut impl FnMut(RosterEvent),
) -> String {
    let mut link = match dialer.dial(runtime) {
        Ok(link) => link,
        Err(e) => return e.to_string(),
    };
    let timeout = dialer.connect_timeout();
    // Between the LISTEN and the end of a read of the whole list, what is
    // heard is kept aside, to join the list read; otherwise it joins the
    // roster at once.
    let mut aside = Vec::new();
    let (session, connection) = link.parts();
    forget_noted(shared);
    let listen_and_read: Query<'_, Vec<String>> = Box::pin(async move {
        session.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
        every_user(&session).await
    });
    let mut keep = |user: String| keep_aside(shared, &mut aside, user);
    let users = match drive(
        runtime,
        connection,
        &mut keep,
        listen_and_read,
        dialer.call_deadline(),
    ) {
        Ok(users) => users,
        Err(why) => return why,
    };
    let count = replace(shared, users, &mut aside);
    let mut loaded_at = Instant::now();
    shared.answered(timeout);
    report(RosterEvent::Current { users: count });
    let mut add = |user: String| shared.add(user);
    loop {
        // Wait out the heartbeat, taking notifications as they come.
        let (session, connection) = link.parts();
        let pause: Query<'_, ()> = Box::pin(async {
            tokio::time::sleep(HEARTBEAT).await;
            Ok(())
        });
        if let Err(why) = drive(runtime, connection, &mut add, pause, HEARTBEAT * 2) {
            return why;
        }
        if shared.stopped() {
            return "stopped".into();
        }
        if loaded_at.elapsed() >= RELOAD {
            forget_noted(shared);
            let read: Query<'_, Vec<String>> = Box::pin(async move { every_user(&session).await });
            let mut keep = |user: String| keep_aside(shared, &mut aside, user);
            match drive(runtime, connection, &mut keep, read, dialer.call_deadline()) {
                Ok(users) => {
                    replace(shared, users, &mut aside);
                    loaded_at = Instant::now();
                }
                Err(why) => return why,
            }
        } else {
            let probe: Query<'_, ()> = Box::pin(async move { session.batch_execute("").await });
            if let Err(why) = drive(runtime, connection, &mut add, probe, timeout) {
                return why;
            }
        }
        shared.answered(timeout);
    }
}

/// The whole list as read, with what was heard and noted meanwhile; its
/// size. (`forget_noted` ran before the read began.)
fn replace(shared: &Shared, users: Vec<String>, heard: &mut Vec<String>) -> usize {
    let mut fresh: HashSet<String> = users.into_iter().collect();
    fresh.extend(heard.drain(..));
    if let Ok(mut noted) = shared.noted.lock() {
        fresh.extend(noted.drain(..));
    }
    let size = fresh.len();
    if let Ok(mut users) = shared.users.write() {
        *users = fresh;
    }
    size
}

/// A name heard during a read of the whole list, kept for after it, and
/// counted as `Shared::add` counts: past `HEARD_MAX` it is dropped, and
/// the roster is not current until a read that was not flooded.
fn keep_aside(shared: &Shared, aside: &mut Vec<String>, user: String) {
    if shared.heard.fetch_add(1, Ordering::AcqRel) < HEARD_MAX {
        aside.push(user);
    }
}

/// Before a read of the whole list: what was noted and heard so far is in
/// it.
fn forget_noted(shared: &Shared) {
    if let Ok(mut noted) = shared.noted.lock() {
        noted.clear();
    }
    shared.heard.store(0, Ordering::Release);
}

/// Runs `query` to its end within `deadline`, driving the connection by
/// its messages (its `Future` drops notifications) and giving each
/// notification's payload, a user, to `heard` as it comes.
fn drive<T>(
    runtime: &tokio::runtime::Runtime,
    connection: &mut std::pin::Pin<Box<super::link::Conn>>,
    heard: &mut dyn FnMut(String),
    query: Query<'_, T>,
    deadline: Duration,
) -> std::result::Result<T, String> {
    let mut query = query;
    let work = poll_fn(|cx| {
        loop {
            match connection.as_mut().poll_message(cx) {
                Poll::Ready(Some(Ok(AsyncMessage::Notification(n)))) => {
                    heard(n.payload().to_string());
                }
                Poll::Ready(Some(Ok(_))) => {}
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Err(describe(&e))),
                Poll::Ready(None) => {
                    return Poll::Ready(Err("the server closed the connection".to_string()))
                }
                Poll::Pending => break,
            }
        }
        match query.as_mut().poll(cx) {
            Poll::Ready(Ok(value)) => Poll::Ready(Ok(value)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(describe(&e))),
            Poll::Pending => Poll::Pending,
        }
    });
    match runtime.block_on(async { tokio::time::timeout(deadline, work).await }) {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("no answer within {} ms", deadline.as_millis())),
    }
}
