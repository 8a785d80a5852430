//! The policy in force: read again whenever the file changes, so an edit
//! applies to the next request, as it did when each sign-in read it.
//! One stat per request decides (device, inode, size, mtime, ctime).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tap_core::policy::{Policy, PolicyError};
use tap_core::trust::TrustError;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileId {
    fn of(meta: &std::fs::Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// The policy, or why it cannot be used (shared by every request until
/// the file changes).
pub type Loaded = Result<Arc<Policy>, Arc<Unusable>>;

/// Why there is no policy to serve with.
#[derive(Debug)]
pub enum Unusable {
    Policy(PolicyError),
    /// A thread panicked while it held the cache.
    Poisoned,
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Policy(e) => write!(f, "{e}"),
            Unusable::Poisoned => f.write_str("policy cache poisoned"),
        }
    }
}

impl std::error::Error for Unusable {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Unusable::Policy(e) => Some(e),
            Unusable::Poisoned => None,
        }
    }
}

pub struct PolicyCache {
    path: PathBuf,
    cached: Mutex<Option<(FileId, Loaded)>>,
}

impl PolicyCache {
    pub fn new(path: &Path) -> PolicyCache {
        PolicyCache {
            path: path.to_path_buf(),
            cached: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The policy as the file is now. Loaded (and checked: root's, every
    /// directory on its way root's, valid) only when the file changed.
    pub fn current(&self) -> Loaded {
        // Stat before reading: a change after this stat is seen next time.
        let id = match std::fs::metadata(&self.path) {
            Ok(meta) => FileId::of(&meta),
            Err(source) => {
                let why = Arc::new(Unusable::Policy(PolicyError::Untrusted(TrustError::Io {
                    path: self.path.clone(),
                    source,
                })));
                self.remember(None, Err(why.clone()));
                return Err(why);
            }
        };
        let Ok(mut cached) = self.cached.lock() else {
            return Err(Arc::new(Unusable::Poisoned));
        };
        if let Some((seen, loaded)) = cached.as_ref() {
            if *seen == id {
                return loaded.clone();
            }
        }
        let loaded = Policy::load(&self.path)
            .map(Arc::new)
            .map_err(|e| Arc::new(Unusable::Policy(e)));
        report(cached.as_ref().map(|(_, l)| l), &loaded, &self.path);
        *cached = Some((id, loaded.clone()));
        loaded
    }

    fn remember(&self, id: Option<FileId>, loaded: Loaded) {
        if let Ok(mut cached) = self.cached.lock() {
            let before = cached.as_ref().map(|(_, l)| l);
            report(before, &loaded, &self.path);
            *cached = id.map(|id| (id, loaded));
        }
    }
}

/// One log line when the policy becomes unusable, changes its complaint,
/// or is usable again.
fn report(before: Option<&Loaded>, now: &Loaded, path: &Path) {
    match (before, now) {
        // The same complaint again: said once already.
        (Some(Err(old)), Err(new)) if old.to_string() == new.to_string() => {}
        (_, Err(why)) => crate::log::error(&format!(
            "policy not usable, every request is refused until it is fixed: {why}"
        )),
        (Some(Err(_)), Ok(_)) => {
            crate::log::notice(&format!("policy {} usable again", path.display()))
        }
        (Some(Ok(_)), Ok(_)) => crate::log::notice(&format!("policy {} reloaded", path.display())),
        (None, Ok(_)) => {}
    }
}
