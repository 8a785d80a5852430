//! The daemon's roster of users who have a pass or a key in a fleet's
//! database (`tap_store`'s `Roster`): one listening session for the
//! policy's PostgreSQL store, shared by every place's store, and made again
//! when the `[store]` settings change.

use crate::log;
use crate::store_slot::postgres_config;
use std::sync::{Arc, Mutex};
use tap_core::policy::StorePolicy;
use tap_store::{Roster, RosterEvent};

#[derive(Default)]
pub struct Rosters(Mutex<Option<(StorePolicy, Arc<Roster>)>>);

impl Rosters {
    /// The roster for these settings, started on first use. None when it
    /// cannot be started: every sign-in then asks the database.
    pub fn for_settings(&self, settings: &StorePolicy) -> Option<Arc<Roster>> {
        let mut slot = self.0.lock().ok()?;
        if let Some((current, roster)) = slot.as_ref() {
            if current == settings {
                return Some(Arc::clone(roster));
            }
        }
        // The old one's session ends when its last store lets go of it.
        *slot = None;
        match Roster::start(&postgres_config(settings), report) {
            Ok(roster) => {
                let roster = Arc::new(roster);
                *slot = Some((settings.clone(), Arc::clone(&roster)));
                Some(roster)
            }
            Err(e) => {
                log::warning(&format!(
                    "store {}: no roster ({e}); every sign-in asks the database",
                    settings.describe()
                ));
                None
            }
        }
    }

    /// The policy names no PostgreSQL store now: let its roster go (its
    /// session ends once the last place's store lets go of it too).
    pub fn forget(&self) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = None;
        }
    }
}

fn report(event: RosterEvent) {
    match event {
        RosterEvent::Current { users } => log::notice(&format!(
            "roster: listening to the database; {users} user(s) have a pass or key there, and \
             sign-ins of anyone else are answered without asking it"
        )),
        RosterEvent::Lost(why) => log::warning(&format!(
            "roster: no listening session ({why}); every sign-in asks the database until one \
             is back"
        )),
    }
}
