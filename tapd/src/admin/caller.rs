//! Who the peer is: its uid (from the kernel) named through NSS, and what
//! that allows under the policy. Never anything from the request.

use crate::peer::Peer;
use tap_core::accounts::{self, Account, DirectoryError};
use tap_core::policy::Policy;
use tap_protocol::{ErrorKind, Refusal};

/// The user directory the rules are asked of: NSS in the daemon, a fixed
/// list in tests. An NSS failure is an error; "no such user" is `Ok(None)`.
pub trait Users {
    fn name_of(&self, uid: u32) -> Option<String>;
    fn user(&self, name: &str) -> Result<Option<Account>, DirectoryError>;
    fn groups(&self, account: &Account) -> Result<Vec<String>, DirectoryError>;
}

/// The system's NSS.
pub struct SystemUsers;

impl Users for SystemUsers {
    fn name_of(&self, uid: u32) -> Option<String> {
        accounts::name_by_uid(uid)
    }
    fn user(&self, name: &str) -> Result<Option<Account>, DirectoryError> {
        accounts::user_by_name(name)
    }
    fn groups(&self, account: &Account) -> Result<Vec<String>, DirectoryError> {
        accounts::group_names(account)
    }
}

pub struct Caller {
    pub uid: u32,
    pub pid: i32,
    pub name: String,
    groups: Vec<String>,
}

impl Caller {
    pub fn identify(peer: &Peer, users: &dyn Users) -> Result<Caller, Refusal> {
        let name = users.name_of(peer.uid).ok_or_else(|| {
            Refusal::new(
                ErrorKind::NotPermitted,
                format!("your uid {} has no user name", peer.uid),
            )
        })?;
        let groups = match users.user(&name) {
            Ok(Some(account)) => users.groups(&account).unwrap_or_default(),
            _ => Vec::new(),
        };
        Ok(Caller {
            uid: peer.uid,
            pid: peer.pid,
            name,
            groups,
        })
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    pub fn is_admin(&self, policy: &Policy) -> bool {
        self.is_root() || self.groups.iter().any(|g| policy.admins.groups.contains(g))
    }

    pub fn require_root(&self, what: &str) -> Result<(), Refusal> {
        if self.is_root() {
            return Ok(());
        }
        Err(Refusal::new(
            ErrorKind::NotPermitted,
            format!("only root may {what}"),
        ))
    }

    pub fn require_admin(&self, policy: &Policy, what: &str) -> Result<(), Refusal> {
        if self.is_admin(policy) {
            return Ok(());
        }
        Err(Refusal::new(
            ErrorKind::NotPermitted,
            format!(
                "only root or members of the admin groups ({}) may {what}",
                policy.admins.groups.join(", ")
            ),
        ))
    }

    /// Admins for anyone; everyone for themselves.
    pub fn require_self_or_admin(
        &self,
        policy: &Policy,
        user: &str,
        what: &str,
    ) -> Result<(), Refusal> {
        if self.name == user {
            Ok(())
        } else {
            self.require_admin(policy, what)
        }
    }
}

fn lookup(e: DirectoryError) -> Refusal {
    Refusal::new(ErrorKind::Internal, e.to_string())
}

/// Looks a user up; an unknown name is `UnknownUser`.
pub fn existing_user(users: &dyn Users, name: &str) -> Result<Account, Refusal> {
    users.user(name).map_err(lookup)?.ok_or_else(|| {
        Refusal::new(
            ErrorKind::UnknownUser,
            format!("no such user {name:?} on this system"),
        )
    })
}

/// The user's groups; an unknown name is `UnknownUser`.
pub fn groups_of(users: &dyn Users, name: &str) -> Result<Vec<String>, Refusal> {
    let account = existing_user(users, name)?;
    users.groups(&account).map_err(lookup)
}

/// Whether the policy's `[scope]` covers an existing user.
pub fn admitted(policy: &Policy, users: &dyn Users, name: &str) -> Result<bool, Refusal> {
    let account = existing_user(users, name)?;
    policy
        .scope
        .admits(name, || users.groups(&account))
        .map_err(lookup)
}
