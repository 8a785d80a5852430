//! A worker's store connection, kept open across requests and opened again
//! when the policy names another store or the file was replaced (restored
//! from a backup, say).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use tap_core::policy::Policy;
use tap_core::store::StoreError;
use tap_store::SqliteStore;

struct Open {
    path: PathBuf,
    /// Device, inode, owner and mode of the file when it was opened.
    id: FileId,
    store: SqliteStore,
}

#[derive(Default)]
pub struct StoreSlot {
    open: Option<Open>,
}

impl StoreSlot {
    /// This worker's connection to the policy's store. The store is
    /// created (0600, in a 0700 directory, the daemon's) when missing.
    pub fn get(&mut self, policy: &Policy) -> Result<&mut SqliteStore, StoreError> {
        let id = file_id(policy)?;
        let current = self
            .open
            .as_ref()
            .is_some_and(|o| o.path == policy.store && Some(o.id) == id);
        if !current {
            self.open = None;
            let store = SqliteStore::open_for(policy, id.is_none())?;
            let id = file_id(policy)?
                .ok_or_else(|| StoreError(format!("store {} vanished", policy.store.display())))?;
            self.open = Some(Open {
                path: policy.store.clone(),
                id,
                store,
            });
        }
        match self.open.as_mut() {
            Some(open) => Ok(&mut open.store),
            None => Err(StoreError("store not open".into())),
        }
    }

    pub fn close(&mut self) {
        self.open = None;
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
fn file_id(policy: &Policy) -> Result<Option<FileId>, StoreError> {
    let mut wal = policy.store.clone().into_os_string();
    wal.push("-wal");
    let wal = std::fs::symlink_metadata(&wal).ok().map(|meta| meta.ino());
    match std::fs::symlink_metadata(&policy.store) {
        Ok(meta) => Ok(Some((meta.dev(), meta.ino(), meta.uid(), meta.mode(), wal))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError(format!(
            "store {}: cannot be reached: {e}",
            policy.store.display()
        ))),
    }
}
