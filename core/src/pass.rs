//! A stored pass and whether it can be used now.

use crate::timefmt::Timestamp;

/// One user's pass, as the store keeps it. Holds only the hash.
#[derive(Clone, PartialEq, Eq)]
pub struct PassRecord {
    pub user: String,
    /// Distinguishes a pass from the one that replaced it, so a slow sign-in
    /// cannot consume or lock a newer pass.
    pub id: i64,
    pub phc: String,
    pub issued_by: String,
    pub created: Timestamp,
    pub start: Timestamp,
    pub expires: Timestamp,
    pub one_time: bool,
    pub used_at: Option<Timestamp>,
    pub last_used: Option<Timestamp>,
    pub failures: u32,
    pub locked_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    /// Until when the holder may enroll a security key; opened by a
    /// successful sign-in with this pass.
    pub enroll_until: Option<Timestamp>,
    /// Symbols in the clear pass, so an answer of another length is known
    /// not to be it without hashing. `None` for passes issued before the
    /// store kept it (schema 3 and older).
    pub length: Option<usize>,
}

impl std::fmt::Debug for PassRecord {
    // The hash stays out of debug output: it is an offline-attack target.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassRecord")
            .field("user", &self.user)
            .field("id", &self.id)
            .field("start", &self.start)
            .field("expires", &self.expires)
            .field("one_time", &self.one_time)
            .field("used_at", &self.used_at)
            .field("failures", &self.failures)
            .field("locked_at", &self.locked_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// A fresh, positive pass id from the OS random source.
pub fn random_id() -> Result<i64, getrandom::Error> {
    let mut bytes = [0u8; 8];
    getrandom::getrandom(&mut bytes)?;
    Ok(i64::from_ne_bytes(bytes) & i64::MAX)
}

pub use tap_protocol::signin::Reason;

/// What `PassRecord::issue` needs; everything else starts empty.
pub struct NewPass<'a> {
    pub user: &'a str,
    pub id: i64,
    pub phc: String,
    pub issued_by: &'a str,
    pub created: Timestamp,
    pub start: Timestamp,
    pub expires: Timestamp,
    pub one_time: bool,
    /// Symbols in the clear pass.
    pub length: usize,
}

impl PassRecord {
    /// A pass as issued: unused, no failures.
    pub fn issue(new: NewPass<'_>) -> PassRecord {
        PassRecord {
            user: new.user.to_string(),
            id: new.id,
            phc: new.phc,
            issued_by: new.issued_by.to_string(),
            created: new.created,
            start: new.start,
            expires: new.expires,
            one_time: new.one_time,
            used_at: None,
            last_used: None,
            failures: 0,
            locked_at: None,
            revoked_at: None,
            enroll_until: None,
            length: Some(new.length),
        }
    }

    /// End of the enrollment window a sign-in at `now` opens: `window` after
    /// a one-time pass, the pass's own expiry for a multi-use one, never
    /// past that expiry.
    pub fn enroll_window_end(
        &self,
        now: Timestamp,
        window: crate::duration::Duration,
    ) -> Timestamp {
        if self.one_time {
            (now + window.as_secs_i64()).min(self.expires)
        } else {
            self.expires
        }
    }

    /// Whether the enrollment window is open at `now`.
    pub fn enroll_window_open(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.enroll_until.is_some_and(|until| now < until)
    }
    /// Why the pass can or cannot be used at `now`. `admitted` is false when
    /// the policy is off or leaves the user out.
    pub fn usability(&self, admitted: bool, now: Timestamp) -> Reason {
        if !admitted {
            Reason::DisabledByPolicy
        } else if self.revoked_at.is_some() {
            Reason::Revoked
        } else if self.locked_at.is_some() {
            Reason::Locked
        } else if self.one_time && self.used_at.is_some() {
            Reason::OneTimeUsed
        } else if now >= self.expires {
            Reason::Expired
        } else if now < self.start {
            Reason::NotYetValid
        } else {
            Reason::EnabledByPolicy
        }
    }
}

/// A sample pass for tests here and in the store's backends.
#[cfg(any(test, feature = "testkit"))]
pub mod testkit {
    use super::*;

    /// alice's multi-use pass 7, valid for an hour from `now`.
    pub fn sample(now: Timestamp) -> PassRecord {
        PassRecord::issue(NewPass {
            user: "alice",
            id: 7,
            phc: "$argon2id$...".into(),
            issued_by: "root",
            created: now,
            start: now,
            expires: now + 3_600,
            one_time: false,
            length: 10,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::testkit::sample;
    use super::*;

    #[test]
    fn each_reason_at_its_time() {
        let now = 1_000_000;
        let pass = sample(now);
        assert_eq!(pass.usability(true, now), Reason::EnabledByPolicy);
        assert_eq!(pass.usability(false, now), Reason::DisabledByPolicy);
        assert_eq!(pass.usability(true, now + 3_600), Reason::Expired);
        assert_eq!(pass.usability(true, now + 3_599), Reason::EnabledByPolicy);
        assert_eq!(pass.usability(true, now - 1), Reason::NotYetValid);
        let used = PassRecord {
            one_time: true,
            used_at: Some(now),
            ..pass.clone()
        };
        assert_eq!(used.usability(true, now), Reason::OneTimeUsed);
        let reused_multi = PassRecord {
            used_at: Some(now),
            ..pass.clone()
        };
        assert_eq!(reused_multi.usability(true, now), Reason::EnabledByPolicy);
        let locked = PassRecord {
            locked_at: Some(now),
            ..pass.clone()
        };
        assert_eq!(locked.usability(true, now), Reason::Locked);
        let revoked = PassRecord {
            revoked_at: Some(now),
            locked_at: Some(now),
            ..pass.clone()
        };
        assert_eq!(revoked.usability(true, now), Reason::Revoked);
    }

    #[test]
    fn enrollment_window() {
        let now = 1_000_000;
        let window = crate::duration::Duration::from_secs(600);
        let multi = sample(now);
        assert_eq!(multi.enroll_window_end(now + 10, window), now + 3_600);
        let one_time = PassRecord {
            one_time: true,
            ..sample(now)
        };
        assert_eq!(one_time.enroll_window_end(now + 10, window), now + 610);
        assert_eq!(
            one_time.enroll_window_end(now + 3_500, window),
            now + 3_600,
            "never past expiry"
        );
        let open = PassRecord {
            enroll_until: Some(now + 600),
            ..sample(now)
        };
        assert!(open.enroll_window_open(now + 599));
        assert!(!open.enroll_window_open(now + 600));
        assert!(!sample(now).enroll_window_open(now));
        let revoked = PassRecord {
            revoked_at: Some(now),
            ..open
        };
        assert!(!revoked.enroll_window_open(now + 1));
    }

    #[test]
    fn debug_never_shows_the_hash() {
        let shown = format!("{:?}", sample(0));
        assert!(!shown.contains("argon2"), "{shown}");
    }
}
