//! tapd: pam_tap's daemon, the only process that opens the store.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use clap::Parser;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tap_core::policy::PolicyError;
use tap_core::store::StoreError;
use tapd::cli::Cli;
use tapd::copy_store::CopyError;
use tapd::server::{Server, Stop};
use tapd::worker::{Pool, Shared};
use tapd::{activation, log, sys};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("tapd: {why}");
            tap_core::audit::syslog(tap_core::audit::Severity::Error, "tapd", &why.to_string());
            ExitCode::FAILURE
        }
    }
}

/// Why tapd ended with an error.
#[derive(Debug)]
enum Fatal {
    Activation(io::Error),
    Signals(io::Error),
    Listen { socket: PathBuf, source: io::Error },
    Serving(io::Error),
    Policy(PolicyError),
    Store(StoreError),
    Copy(CopyError),
}

impl std::fmt::Display for Fatal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fatal::Activation(e) => write!(f, "socket activation: {e}"),
            Fatal::Signals(e) => write!(f, "signals: {e}"),
            Fatal::Listen { socket, source } => {
                write!(f, "cannot listen on {}: {source}", socket.display())
            }
            Fatal::Serving(e) => write!(f, "serving: {e}"),
            Fatal::Policy(e) => write!(f, "policy not usable: {e}"),
            Fatal::Store(e) => write!(f, "{e}"),
            Fatal::Copy(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Fatal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Fatal::Activation(e) | Fatal::Signals(e) | Fatal::Serving(e) => Some(e),
            Fatal::Listen { source, .. } => Some(source),
            Fatal::Policy(e) => Some(e),
            Fatal::Store(e) => Some(e),
            Fatal::Copy(e) => Some(e),
        }
    }
}

fn run(cli: &Cli) -> Result<(), Fatal> {
    if cli.migrate {
        return migrate(cli);
    }
    if let Some(url) = &cli.migrate_to {
        sys::private_umask();
        let request = tapd::copy_store::CopyRequest {
            policy: &cli.policy,
            url,
            ca_file: cli.ca_file.clone(),
            merge: cli.merge,
        };
        let done =
            tapd::copy_store::copy(&request, std::io::stdin().lock()).map_err(Fatal::Copy)?;
        println!("{done}");
        return Ok(());
    }
    // Before any thread: these change process-wide state every thread inherits.
    sys::private_umask();
    let inherited = activation::inherited().map_err(Fatal::Activation)?;
    let signals = sys::termination_signals().map_err(Fatal::Signals)?;
    let activated = inherited.is_some();
    let (listener, where_) = match inherited {
        Some(listener) => (listener, "the socket systemd passed".to_string()),
        None => {
            let listener = activation::bind(&cli.socket).map_err(|source| Fatal::Listen {
                socket: cli.socket.clone(),
                source,
            })?;
            (listener, cli.socket.display().to_string())
        }
    };
    log::mirror_to_stderr(!activated);
    let policy = Arc::new(tapd::policy_cache::PolicyCache::new(&cli.policy));
    let hashes = match policy.current() {
        Ok(p) => p.daemon.max_concurrent_hashes,
        // Refused per request, with the reason, until it is fixed.
        Err(_) => tap_core::policy::DaemonPolicy::default().max_concurrent_hashes,
    };
    let shared = Arc::new(Shared {
        policy: policy.clone(),
        challenges: Default::default(),
        hashes: tapd::hash_gate::HashSlots::new(hashes),
        offline: tapd::offline::OfflineKeys::default(),
        rosters: tapd::roster::Rosters::default(),
    });
    let workers = hashes + 2;
    let pool = Pool::new(workers, shared);
    let idle_exit = cli.idle_exit(activated);
    eprintln!(
        "tapd: serving on {where_} (pid {}, uid {}, policy {}, {workers} workers, {})",
        std::process::id(),
        sys::euid(),
        cli.policy.display(),
        match idle_exit {
            Some(idle) => format!("exits after {} s idle", idle.as_secs()),
            None => "no idle exit".into(),
        }
    );
    let server = Server {
        sshd_command_user: tapd::uid_cache::UidCache::default(),
        listener,
        signals,
        pool,
        policy,
        idle_exit,
    };
    let stop = server.run().map_err(Fatal::Serving)?;
    if !activated {
        // Ours to remove; a socket systemd passed is systemd's.
        let _ = std::fs::remove_file(&cli.socket);
    }
    match stop {
        Stop::Signal(signal) => log::notice(&format!("stopped by signal {signal}")),
        Stop::Idle => log::notice("idle; exiting (the next connection starts tapd again)"),
    }
    Ok(())
}

/// `tapd --migrate`: the store the policy names, created or brought up to
/// date, and nothing served.
fn migrate(cli: &Cli) -> Result<(), Fatal> {
    sys::private_umask();
    let policy = tap_core::policy::Policy::load(&cli.policy).map_err(Fatal::Policy)?;
    let store = &policy.store;
    let version = match store.backend {
        tap_core::policy::Backend::Sqlite => {
            tap_store::SqliteStore::open(
                store.sqlite_path(),
                tap_store::OpenOptions {
                    create: true,
                    check_trust: true,
                },
            )
            .map_err(Fatal::Store)?;
            tap_store::sqlite::SCHEMA_VERSION
        }
        tap_core::policy::Backend::Postgresql => {
            let migrated = tap_store::PostgresStore::connect_and_migrate(
                &tapd::store_slot::postgres_config(store),
            )
            .map_err(Fatal::Store)?;
            for warning in migrated.warnings() {
                eprintln!("tapd: warning: {warning}");
            }
            tap_store::postgres::SCHEMA_VERSION
        }
    };
    println!("store {} is at schema version {version}", store.describe());
    Ok(())
}
