//! A worker's store connection, kept open across requests and opened again
//! when the policy names another store, or (SQLite) the file was replaced
//! (restored from a backup, say).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use tap_core::policy::{Backend, Policy, StorePolicy};
use tap_core::store::{Store, StoreError};
use tap_store::{PostgresConfig, PostgresStore, SqliteStore};

use crate::roster::Rosters;

enum Open {
    Sqlite {
        path: PathBuf,
        /// Device, inode, owner and mode of the file when it was opened.
        id: FileId,
        store: SqliteStore,
    },
    Postgres {
        /// The `[store]` settings it was opened with.
        settings: StorePolicy,
        store: Box<PostgresStore>,
    },
}

#[derive(Default)]
pub struct StoreSlot {
    open: Option<Open>,
}

impl StoreSlot {
    /// This worker's connection to the policy's store. A SQLite store is
    /// created (0600, in a 0700 directory, the daemon's) when missing.
    pub fn get(
        &mut self,
        policy: &Policy,
        rosters: &Rosters,
    ) -> Result<&mut dyn Store, StoreError> {
        match policy.store.backend {
            Backend::Sqlite => {
                if matches!(self.open, Some(Open::Postgres { .. })) {
                    rosters.forget();
                }
                self.sqlite(policy.store.sqlite_path())
            }
            Backend::Postgresql => self.postgres(&policy.store, rosters),
        }
    }

    /// `get`, and for PostgreSQL a session that answers now (one kept from
    /// an earlier request may have died since), found within `limit` if
    /// given, else the connect timeouts: a request the offline copy could
    /// serve learns here, before any step, which one serves it.
    pub fn get_answering(
        &mut self,
        policy: &Policy,
        rosters: &Rosters,
        limit: Option<std::time::Duration>,
    ) -> Result<&mut dyn Store, StoreError> {
        if policy.store.backend == Backend::Sqlite {
            return self.get(policy, rosters);
        }
        self.postgres(&policy.store, rosters)?;
        match self.open.as_mut() {
            Some(Open::Postgres { store, .. }) => {
                store.reachable_within(limit)?;
                Ok(store.as_mut())
            }
            _ => Err(StoreError::internal("store not open")),
        }
    }

    /// Open on a SQLite store.
    pub fn is_sqlite(&self) -> bool {
        matches!(self.open, Some(Open::Sqlite { .. }))
    }

    fn sqlite(&mut self, path: &Path) -> Result<&mut dyn Store, StoreError> {
        let id = file_id(path)?;
        let current = matches!(&self.open, Some(Open::Sqlite { path: p, id: i, .. }) if p == path && Some(*i) == id);
        if !current {
            self.open = None;
            let store = SqliteStore::open(
                path,
                tap_store::OpenOptions {
                    create: id.is_none(),
                    check_trust: true,
                },
            )?;
            let id = file_id(path)?
                .ok_or_else(|| StoreError::io(format!("store {} vanished", path.display())))?;
            self.open = Some(Open::Sqlite {
                path: path.to_path_buf(),
                id,
                store,
            });
        }
        match self.open.as_mut() {
            Some(Open::Sqlite { store, .. }) => Ok(store),
            _ => Err(StoreError::internal("store not open")),
        }
    }

    /// The session reconnects by itself after a lost connection; a change
    /// of the settings opens a new one. Each uses the daemon's roster.
    fn postgres(
        &mut self,
        settings: &StorePolicy,
        rosters: &Rosters,
    ) -> Result<&mut dyn Store, StoreError> {
        let current =
            matches!(&self.open, Some(Open::Postgres { settings: s, .. }) if s == settings);
        if !current {
            self.open = None;
            let mut store = PostgresStore::connect(&postgres_config(settings))?;
            if let Some(roster) = rosters.for_settings(settings) {
                store.use_roster(roster);
            }
            for warning in store.warnings() {
                crate::log::warning(&format!("store {}: {warning}", settings.describe()));
            }
            self.open = Some(Open::Postgres {
                settings: settings.clone(),
                store: Box::new(store),
            });
        }
        match self.open.as_mut() {
            Some(Open::Postgres { store, .. }) => Ok(store.as_mut()),
            _ => Err(StoreError::internal("store not open")),
        }
    }

    pub fn close(&mut self) {
        self.open = None;
    }
}

/// The `[store]` settings as the PostgreSQL backend takes them.
pub fn postgres_config(settings: &StorePolicy) -> PostgresConfig {
    PostgresConfig {
        url: settings.url.clone().unwrap_or_default(),
        password_file: settings.password_file.clone(),
        ca_file: settings.ca_file.clone(),
        connect_timeout: settings.connect_timeout.into(),
        statement_timeout: settings.statement_timeout.into(),
    }
}

/// What must not change under an open store: the file (device, inode),
/// its owner and its mode, and which file its write-ahead log is. A change
/// reopens it, and opening re-runs the trust checks, so a store chowned or
/// chmodded away from the daemon, or emptied with its log deleted behind
/// the daemon's back, is refused at the next request, as it would be at
/// the next start. (tapd's own connections never delete the log: it is
/// removed only when the last connection closes.)
type FileId = (u64, u64, u32, u32, Option<u64>);

/// None when the file does not exist.
fn file_id(path: &Path) -> Result<Option<FileId>, StoreError> {
    let mut wal = path.as_os_str().to_os_string();
    wal.push("-wal");
    let wal = std::fs::symlink_metadata(&wal).ok().map(|meta| meta.ino());
    match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some((meta.dev(), meta.ino(), meta.uid(), meta.mode(), wal))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(format!(
            "store {}: cannot be reached: {e}",
            path.display()
        ))),
    }
}
