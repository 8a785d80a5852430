//! A user name's uid, looked up again at most once a minute: the accept
//! loop asks for every connection (is this sshd's AuthorizedKeysCommandUser?)
//! and must not wait on NSS each time.

use std::sync::Mutex;
use std::time::{Duration, Instant};

const FRESH_FOR: Duration = Duration::from_secs(60);

#[derive(Default)]
pub struct UidCache(Mutex<Option<Entry>>);

struct Entry {
    name: String,
    uid: Option<u32>,
    at: Instant,
}

impl UidCache {
    /// The uid of `name`, None when there is no such user (or NSS fails).
    pub fn uid_of(&self, name: &str) -> Option<u32> {
        let Ok(mut entry) = self.0.lock() else {
            return None;
        };
        let now = Instant::now();
        match entry.as_ref() {
            Some(e) if e.name == name && now.duration_since(e.at) < FRESH_FOR => e.uid,
            _ => {
                let uid = tap_core::accounts::user_by_name(name)
                    .ok()
                    .flatten()
                    .map(|a| a.uid);
                *entry = Some(Entry {
                    name: name.to_string(),
                    uid,
                    at: now,
                });
                uid
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_names_and_remembers_them() {
        let cache = UidCache::default();
        assert_eq!(cache.uid_of("root"), Some(0));
        assert_eq!(cache.uid_of("root"), Some(0));
        assert_eq!(cache.uid_of("no-such-user-pam-tap"), None);
    }
}
