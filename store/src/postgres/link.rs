//! One connection to the database, driven on the calling thread: a
//! current-thread runtime polls the connection and the caller's query
//! together, under a deadline, and returns when the query is answered.
//! Nothing runs between calls (a host name's look-up may borrow a blocking
//! thread from the runtime for that look-up; numeric addresses need none).

use super::url::{Roots, Server, Target};
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use postgres_openssl::{MakeTlsConnector, TlsStream};
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;
use tap_core::store::{StoreError, StoreErrorKind};
use tokio_postgres::config::{SslMode, TargetSessionAttrs};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, Connection, Row, Socket, Statement};
use zeroize::Zeroizing;

pub(super) type Conn = Connection<Socket, TlsStream<Socket>>;

/// A call's future: it holds the client (shared, so the future may also borrow
/// the caller's data for `'a`) while the connection is driven beside it.
pub(super) type Query<'a, T> = Pin<Box<dyn Future<Output = Result<T, tokio_postgres::Error>> + 'a>>;

/// How to reach the database again: everything a (re)connect needs.
pub(super) struct Dialer {
    target: Target,
    password: Option<Zeroizing<String>>,
    tls: MakeTlsConnector,
    connect_timeout: Duration,
    statement_timeout: Duration,
    application_name: String,
}

/// A session's client, and the statements it has prepared. Each statement
/// is parsed once per session rather than at every call: a text query costs
/// a round trip to prepare it before the one that runs it, and a sign-in
/// runs the same few statements every time. (Their number is fixed: every
/// statement is a constant of this backend, values are always parameters.)
#[derive(Clone)]
pub(super) struct Session {
    client: Arc<Client>,
    prepared: Arc<Mutex<HashMap<String, Statement>>>,
}

type Sql<T> = Result<T, tokio_postgres::Error>;

impl Session {
    async fn statement(&self, sql: &str) -> Sql<Statement> {
        let known = self
            .prepared
            .lock()
            .ok()
            .and_then(|cache| cache.get(sql).cloned());
        if let Some(statement) = known {
            return Ok(statement);
        }
        let statement = self.client.prepare(sql).await?;
        if let Ok(mut cache) = self.prepared.lock() {
            cache.insert(sql.to_string(), statement.clone());
        }
        Ok(statement)
    }

    pub(super) async fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Sql<Vec<Row>> {
        let statement = self.statement(sql).await?;
        self.client.query(&statement, params).await
    }

    pub(super) async fn query_one(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Sql<Row> {
        let statement = self.statement(sql).await?;
        self.client.query_one(&statement, params).await
    }

    pub(super) async fn query_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Sql<Option<Row>> {
        let statement = self.statement(sql).await?;
        self.client.query_opt(&statement, params).await
    }

    pub(super) async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Sql<u64> {
        let statement = self.statement(sql).await?;
        self.client.execute(&statement, params).await
    }

    /// Statements without parameters (transaction control, DDL), unprepared.
    pub(super) async fn batch_execute(&self, sql: &str) -> Sql<()> {
        self.client.batch_execute(sql).await
    }
}

/// An open session.
pub(super) struct Link {
    session: Session,
    connection: Pin<Box<Conn>>,
    /// Which server of the URL answered.
    pub server: String,
}

/// What became of a call.
pub(super) enum Outcome<T> {
    Done(T),
    /// The server refused the statement; the session is still good.
    Refused(tokio_postgres::Error),
    /// The session is gone (closed, broken, or silent past the deadline),
    /// or a new one could not be made: why, as the dial or the session
    /// ended (`Unreachable`, or `Refused` when the servers answered no).
    Lost(StoreError),
}

impl Dialer {
    pub(super) fn new(
        target: Target,
        password: Option<Zeroizing<String>>,
        connect_timeout: Duration,
        statement_timeout: Duration,
        application_name: String,
    ) -> Result<Dialer, StoreError> {
        let tls = tls_connector(target.roots.as_ref())?;
        Ok(Dialer {
            target,
            password,
            tls,
            connect_timeout,
            statement_timeout,
            application_name,
        })
    }

    /// How long each server gets to connect.
    pub(super) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The longest a call may take once connected: the server's own
    /// statement_timeout ends a slow statement, and this bounds a silent
    /// network (it cannot answer at all) with a connect_timeout to spare.
    pub(super) fn call_deadline(&self) -> Duration {
        self.statement_timeout + self.connect_timeout
    }

    /// Tries each server in the URL's order, each within connect_timeout
    /// (TCP, TLS, authentication and the read-write check together), and
    /// keeps the first that answers as asked.
    pub(super) fn dial(&self, runtime: &tokio::runtime::Runtime) -> Result<Link, StoreError> {
        self.dial_within(runtime, None)
    }

    /// `dial`, all servers together within `limit` when one is given.
    pub(super) fn dial_within(
        &self,
        runtime: &tokio::runtime::Runtime,
        limit: Option<Duration>,
    ) -> Result<Link, StoreError> {
        let give_up = limit.map(|limit| std::time::Instant::now() + limit);
        let mut failures = Vec::new();
        // Each server that answered refused (a password, pg_hba.conf), as
        // opposed to not answering, or not as asked.
        let mut all_refused = true;
        for server in &self.target.servers {
            let config = self.config_for(server);
            let shown = show(server);
            let timeout = match give_up {
                Some(at) => self
                    .connect_timeout
                    .min(at.saturating_duration_since(std::time::Instant::now())),
                None => self.connect_timeout,
            };
            // The timer is made inside the runtime (it needs its clock).
            let attempt =
                async { tokio::time::timeout(timeout, config.connect(self.tls.clone())).await };
            match runtime.block_on(attempt) {
                Ok(Ok((client, connection))) => {
                    return Ok(Link {
                        session: Session {
                            client: Arc::new(client),
                            prepared: Arc::default(),
                        },
                        connection: Box::pin(connection),
                        server: shown,
                    })
                }
                Ok(Err(e)) => {
                    all_refused &= e.as_db_error().is_some();
                    failures.push(format!("{shown}: {}", describe(&e)))
                }
                Err(_) => {
                    all_refused = false;
                    failures.push(if timeout == self.connect_timeout {
                        format!(
                            "{shown}: no answer within the connect timeout ({} ms)",
                            timeout.as_millis()
                        )
                    } else {
                        format!("{shown}: no answer within {} ms", timeout.as_millis())
                    })
                }
            }
        }
        let kind = if all_refused && !failures.is_empty() {
            StoreErrorKind::Refused
        } else {
            StoreErrorKind::Unreachable
        };
        Err(StoreError::new(
            kind,
            format!(
                "postgresql: cannot connect as {} to database {}: {}",
                self.target.user,
                self.target.dbname,
                failures.join("; ")
            ),
        ))
    }

    fn config_for(&self, server: &Server) -> Config {
        let mut config = Config::new();
        config
            .user(&self.target.user)
            .dbname(&self.target.dbname)
            .application_name(
                self.target
                    .application_name
                    .as_deref()
                    .unwrap_or(&self.application_name),
            )
            .connect_timeout(self.connect_timeout)
            // Unacknowledged data past a call's deadline: the peer is gone.
            .tcp_user_timeout(self.call_deadline())
            .target_session_attrs(if self.target.read_write {
                TargetSessionAttrs::ReadWrite
            } else {
                TargetSessionAttrs::Any
            });
        let mut options = format!(
            "-c statement_timeout={}",
            self.statement_timeout.as_millis()
        );
        if let Some(more) = &self.target.options {
            options = format!("{more} {options}");
        }
        config.options(&options);
        if let Some(password) = &self.password {
            config.password(password.as_bytes());
        }
        match server {
            Server::Tcp { name, addr, port } => {
                config.host(name).port(*port).ssl_mode(SslMode::Require);
                if let Some(addr) = addr {
                    config.hostaddr(*addr);
                }
            }
            Server::Unix { dir, port } => {
                config.host_path(dir).port(*port).ssl_mode(SslMode::Disable);
            }
        }
        config
    }
}

/// TLS that checks the chain against the given roots and the certificate's
/// name against the host (OpenSSL's hostname check, which postgres-openssl
/// turns on for every connection): libpq's verify-full.
fn tls_connector(roots: Option<&Roots>) -> Result<MakeTlsConnector, StoreError> {
    let fail = |what: &str, e: openssl::error::ErrorStack| {
        StoreError::config(format!("postgresql TLS: {what}: {e}"))
    };
    let mut builder =
        SslConnector::builder(SslMethod::tls_client()).map_err(|e| fail("setup", e))?;
    builder.set_verify(SslVerifyMode::PEER);
    match roots {
        Some(Roots::File(path)) => {
            // Read it here so a missing or unreadable file is named plainly.
            std::fs::metadata(path).map_err(|e| {
                StoreError::config(format!("postgresql TLS: CA file {}: {e}", path.display()))
            })?;
            builder
                .set_ca_file(path)
                .map_err(|e| fail(&format!("CA file {}", path.display()), e))?;
        }
        Some(Roots::System) => builder
            .set_default_verify_paths()
            .map_err(|e| fail("system CA store", e))?,
        None => {}
    }
    Ok(MakeTlsConnector::new(builder.build()))
}

fn show(server: &Server) -> String {
    match server {
        Server::Tcp { name, port, .. } => format!("{name}:{port}"),
        Server::Unix { dir, port } => format!("{}/.s.PGSQL.{port}", dir.display()),
    }
}

/// A client error as one line, with its causes, and a hint where the
/// commonest cause is known.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let hint = match db.code().code() {
            "28P01" => " (check the password_file)",
            "28000" => " (pg_hba.conf has no entry for this role, database and address)",
            "42501" => {
                " (the connected role lacks this right: issuing, revoking, removing and \
                 adding keys need pam_tap_admin)"
            }
            _ => "",
        };
        return format!("{} [{}]{hint}", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let piece = cause.to_string();
        if !text.contains(&piece) {
            text.push_str(": ");
            text.push_str(&piece);
        }
        source = cause.source();
    }
    if text.contains("read-write") || text.contains("read only") {
        text.push_str(" (a standby; target_session_attrs=read-write skips it)");
    }
    text
}

impl Link {
    /// Whether the session still stands: lets the connection read what
    /// the server sent since the last call (a shutdown notice, an EOF)
    /// without waiting for anything.
    pub(super) fn alive(&mut self, runtime: &tokio::runtime::Runtime) -> bool {
        let connection = &mut self.connection;
        runtime.block_on(poll_fn(|cx| {
            Poll::Ready(
                connection.as_mut().poll(cx).is_pending() && !self.session.client.is_closed(),
            )
        }))
    }

    /// Runs `query` to its end while driving the connection, within `deadline`.
    pub(super) fn run<T>(
        runtime: &tokio::runtime::Runtime,
        connection: &mut Pin<Box<Conn>>,
        query: Query<'_, T>,
        deadline: Duration,
    ) -> Outcome<T> {
        let mut query = query;
        let mut ended: Option<String> = None;
        let work = poll_fn(|cx| {
            if ended.is_none() {
                if let Poll::Ready(result) = connection.as_mut().poll(cx) {
                    ended = Some(match result {
                        Ok(()) => "the server closed the connection".to_string(),
                        Err(e) => describe(&e),
                    });
                }
            }
            match query.as_mut().poll(cx) {
                Poll::Ready(Ok(value)) => Poll::Ready(Outcome::Done(value)),
                Poll::Ready(Err(e)) if e.as_db_error().is_some() && ended.is_none() => {
                    Poll::Ready(Outcome::Refused(e))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Outcome::Lost(StoreError::unreachable(
                    ended.clone().unwrap_or_else(|| describe(&e)),
                ))),
                Poll::Pending => match &ended {
                    Some(why) => Poll::Ready(Outcome::Lost(StoreError::unreachable(why.clone()))),
                    None => Poll::Pending,
                },
            }
        });
        match runtime.block_on(async { tokio::time::timeout(deadline, work).await }) {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Lost(StoreError::unreachable(format!(
                "no answer within {} ms",
                deadline.as_millis()
            ))),
        }
    }

    /// Drops the prepared statements (after a refusal: a statement whose
    /// table a migration changed is refused until it is prepared again).
    pub(super) fn forget_prepared(&mut self) {
        if let Ok(mut cache) = self.session.prepared.lock() {
            cache.clear();
        }
    }

    pub(super) fn parts(&mut self) -> (Session, &mut Pin<Box<Conn>>) {
        (self.session.clone(), &mut self.connection)
    }
}
