//! The daemon's steps in this process, for tests and the benchmark: the
//! store is opened at the first step that needs it (only for users the
//! policy covers), and a key challenge is remembered between steps as the
//! daemon would remember it.

use super::driver::SignInService;
use super::steps::{self, DirectVerifier, Requester};
use super::{DaemonError, Error, Mode, Unavailable};
use crate::accounts::Directory;
use crate::keys::protocol::Bytes;
use crate::policy::Policy;
use crate::store::{Store, StoreError};
use crate::timefmt::Timestamp;
use tap_protocol::secret::Secret;
use tap_protocol::signin::{KeyAnswer, Origin, Plan, Verdict};

pub struct Local<'a, S, F> {
    policy: &'a Policy,
    directory: &'a dyn Directory,
    open: Option<F>,
    store: Option<S>,
    now: Timestamp,
    pending: Option<(String, [u8; 32])>,
}

impl<'a, S: Store, F: FnOnce() -> Result<S, StoreError>> Local<'a, S, F> {
    pub fn new(policy: &'a Policy, directory: &'a dyn Directory, open: F, now: Timestamp) -> Self {
        Local {
            policy,
            directory,
            open: Some(open),
            store: None,
            now,
            pending: None,
        }
    }

    fn store(&mut self) -> Result<&mut S, Error> {
        if self.store.is_none() {
            let open = self.open.take().ok_or_else(|| {
                Error::Unavailable(Unavailable::Store(StoreError::internal(
                    "store could not be opened",
                )))
            })?;
            self.store = Some(open()?);
        }
        self.store.as_mut().ok_or_else(|| {
            Error::Unavailable(Unavailable::Store(StoreError::internal(
                "store could not be opened",
            )))
        })
    }
}

impl<S: Store, F: FnOnce() -> Result<S, StoreError>> SignInService for Local<'_, S, F> {
    fn plan(&mut self, user: &str, mode: Mode, origin: &Origin) -> Result<Plan, Error> {
        let (policy, directory, now) = (self.policy, self.directory, self.now);
        if let Some(reason) = steps::admit(policy, directory, user)? {
            return Ok(Plan {
                nothing: Some(reason),
                key: None,
                prompt: String::new(),
                pass: None,
                offline: false,
            });
        }
        let requester = Requester::new(user, origin, "", now);
        let planned = steps::plan(policy, directory, self.store()?, &requester, mode)?;
        self.pending = planned
            .challenge
            .map(|challenge| (user.to_string(), challenge));
        Ok(planned.plan)
    }

    fn key_answer(
        &mut self,
        user: &str,
        challenge: &Bytes,
        answer: KeyAnswer,
        origin: &Origin,
    ) -> Result<Verdict, Error> {
        let Some((_, issued)) = self
            .pending
            .take()
            .filter(|(u, c)| u == user && c[..] == challenge.0[..])
        else {
            return Err(Error::Unavailable(Unavailable::Daemon(
                DaemonError::NoSuchChallenge,
            )));
        };
        let (policy, directory, now) = (self.policy, self.directory, self.now);
        let requester = Requester::new(user, origin, "", now);
        steps::key_answer(
            policy,
            directory,
            self.store()?,
            &requester,
            &issued,
            answer,
        )
    }

    fn check_pass(&mut self, user: &str, pass: Secret, origin: &Origin) -> Result<Verdict, Error> {
        let (policy, directory, now) = (self.policy, self.directory, self.now);
        let requester = Requester::new(user, origin, "", now);
        steps::check_pass(
            policy,
            directory,
            self.store()?,
            &DirectVerifier,
            &requester,
            pass.expose().as_bytes(),
        )
    }
}
