//! `[store]`: which backend keeps passes, keys and the audit trail. One
//! host uses the embedded SQLite file (the default); a fleet shares a
//! PostgreSQL database. The old top-level `store = "/path"` still reads as
//! the SQLite path.

use super::SettingError;
use crate::duration::{Duration, SECOND};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::path::{Path, PathBuf};

pub const DEFAULT_STORE: &str = "/var/lib/pam_tap/tap.db";
/// tapd's offline copy of the fleet's keys, beside where its own store
/// would be (the package's state directory, the daemon's alone).
pub const DEFAULT_OFFLINE_CACHE: &str = "/var/lib/pam_tap/offline-keys.db";
const TIMEOUTS: std::ops::RangeInclusive<Duration> = SECOND..=Duration::from_secs(60);

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Sqlite,
    Postgresql,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgresql => "postgresql",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorePolicy {
    pub backend: Backend,
    /// SQLite: the file (absolute). Not for PostgreSQL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// PostgreSQL: a libpq-style URL, several hosts and
    /// `target_session_attrs=read-write` allowed; TLS `verify-full`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// PostgreSQL: the role's password, in a file tapd's user alone reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// PostgreSQL: the CA that signed the servers' certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PostgreSQL: for each server, TCP, TLS and authentication together.
    pub connect_timeout: Duration,
    /// PostgreSQL: the server ends a statement that runs longer.
    pub statement_timeout: Duration,
    /// PostgreSQL: key sign-ins go on from tapd's own copy of the public
    /// keys while the database is unreachable.
    pub offline_keys: bool,
    /// PostgreSQL with `offline_keys`: where tapd keeps that copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offline_cache: Option<PathBuf>,
}

impl Default for StorePolicy {
    fn default() -> Self {
        StorePolicy {
            backend: Backend::Sqlite,
            path: None,
            url: None,
            password_file: None,
            ca_file: None,
            connect_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(4),
            offline_keys: false,
            offline_cache: None,
        }
    }
}

impl StorePolicy {
    /// The SQLite file, when that is the backend.
    pub fn sqlite_path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(DEFAULT_STORE))
    }

    /// tapd's offline copy of the keys, when `offline_keys` asks for one.
    pub fn offline_cache_path(&self) -> Option<&Path> {
        (self.backend == Backend::Postgresql && self.offline_keys).then(|| {
            self.offline_cache
                .as_deref()
                .unwrap_or(Path::new(DEFAULT_OFFLINE_CACHE))
        })
    }

    /// A SQLite store at `path` (tests, tools).
    pub fn sqlite(path: impl Into<PathBuf>) -> StorePolicy {
        StorePolicy {
            path: Some(path.into()),
            ..StorePolicy::default()
        }
    }

    /// Where the store is, for messages: the file, or the URL.
    pub fn describe(&self) -> String {
        match self.backend {
            Backend::Sqlite => self.sqlite_path().display().to_string(),
            Backend::Postgresql => self.url.clone().unwrap_or_default(),
        }
    }

    pub(super) fn validate(&self) -> Result<(), SettingError> {
        let other = |setting: &'static str, belongs_to: Backend| {
            Err(SettingError::OtherBackend {
                setting,
                belongs_to,
                backend: self.backend,
            })
        };
        match self.backend {
            Backend::Sqlite => {
                if !self.sqlite_path().is_absolute() {
                    return Err(SettingError::NotAbsolute {
                        setting: "[store] path",
                        path: self.sqlite_path().to_path_buf(),
                    });
                }
                for (key, set) in [
                    ("url", self.url.is_some()),
                    ("password_file", self.password_file.is_some()),
                    ("ca_file", self.ca_file.is_some()),
                    ("offline_keys", self.offline_keys),
                    ("offline_cache", self.offline_cache.is_some()),
                ] {
                    if set {
                        return other(key, Backend::Postgresql);
                    }
                }
            }
            Backend::Postgresql => {
                if let Some(cache) = &self.offline_cache {
                    if !self.offline_keys {
                        return Err(SettingError::OfflineCacheWithoutKeys);
                    }
                    if !cache.is_absolute() {
                        return Err(SettingError::NotAbsolute {
                            setting: "[store] offline_cache",
                            path: cache.clone(),
                        });
                    }
                }
                if self.path.is_some() {
                    return other("path", Backend::Sqlite);
                }
                let url = self.url.as_deref().unwrap_or_default();
                if !(url.starts_with("postgresql://") || url.starts_with("postgres://")) {
                    return Err(SettingError::StoreUrl(url.to_string()));
                }
                for (setting, file) in [
                    ("[store] password_file", &self.password_file),
                    ("[store] ca_file", &self.ca_file),
                ] {
                    if let Some(path) = file.as_ref().filter(|f| !f.is_absolute()) {
                        return Err(SettingError::NotAbsolute {
                            setting,
                            path: path.clone(),
                        });
                    }
                }
            }
        }
        for (setting, value) in [
            ("[store] connect_timeout", self.connect_timeout),
            ("[store] statement_timeout", self.statement_timeout),
        ] {
            super::check_range(setting, value, &TIMEOUTS)?;
        }
        // A call on a session the database stopped answering: the statement's
        // bound, then one new connect and its statement (store/src/postgres).
        let worst = self.statement_timeout.as_secs() + 2 * self.connect_timeout.as_secs();
        let wait = crate::daemon::SIGN_IN_WAIT.as_secs();
        if self.backend == Backend::Postgresql && worst >= wait {
            return Err(SettingError::StoreTooSlow {
                worst_secs: worst,
                wait_secs: wait,
            });
        }
        Ok(())
    }
}

/// `store = "/path"` (before 0.3) or a `[store]` table.
pub(super) fn store_or_path<'de, D: Deserializer<'de>>(de: D) -> Result<StorePolicy, D::Error> {
    struct Either;
    impl<'de> Visitor<'de> for Either {
        type Value = StorePolicy;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a [store] table, or the SQLite file's path")
        }
        fn visit_str<E: de::Error>(self, path: &str) -> Result<StorePolicy, E> {
            Ok(StorePolicy::sqlite(path))
        }
        fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<StorePolicy, M::Error> {
            StorePolicy::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }
    de.deserialize_any(Either)
}
