//! A stored pass and whether it can be used now.

use crate::timefmt::Timestamp;
use serde::Serialize;

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

/// Entra's `methodUsabilityReason`, plus Locked and Revoked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Reason {
    EnabledByPolicy,
    DisabledByPolicy,
    Expired,
    NotYetValid,
    OneTimeUsed,
    Locked,
    Revoked,
}

impl Reason {
    pub fn usable(self) -> bool {
        self == Reason::EnabledByPolicy
    }

    /// A sentence for people.
    pub fn explain(self) -> &'static str {
        match self {
            Reason::EnabledByPolicy => "usable",
            Reason::DisabledByPolicy => {
                "not usable: the policy is disabled or does not cover this user"
            }
            Reason::Expired => "not usable: expired",
            Reason::NotYetValid => "not usable yet: its start time has not come",
            Reason::OneTimeUsed => "not usable: this one-time pass has been used",
            Reason::Locked => "not usable: locked after too many wrong tries",
            Reason::Revoked => "not usable: revoked by an administrator",
        }
    }
}

impl PassRecord {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn sample(now: Timestamp) -> PassRecord {
        PassRecord {
            user: "alice".into(),
            id: 7,
            phc: "$argon2id$...".into(),
            issued_by: "root".into(),
            created: now,
            start: now,
            expires: now + 3_600,
            one_time: false,
            used_at: None,
            last_used: None,
            failures: 0,
            locked_at: None,
            revoked_at: None,
        }
    }

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
    fn debug_never_shows_the_hash() {
        let shown = format!("{:?}", sample(0));
        assert!(!shown.contains("argon2"), "{shown}");
    }
}
