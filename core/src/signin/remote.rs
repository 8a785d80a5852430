//! The sign-in steps asked of tapd over its socket (the PAM module's
//! service). Anything but the expected answer fails closed.

use super::driver::SignInService;
use super::{DaemonError, Error, Mode, Unavailable};
use crate::daemon;
use crate::keys::protocol::Bytes;
use std::path::Path;
use std::time::Duration;
use tap_protocol::secret::Secret;
use tap_protocol::signin::{KeyAnswer, Origin, Plan, SignInRequest, Verdict};
use tap_protocol::{ErrorKind, Request, Response};

pub struct Remote<'a> {
    pub socket: &'a Path,
    /// For each step: the daemon bounds its own waits (a free hash slot)
    /// well inside this.
    pub timeout: Duration,
}

impl Remote<'_> {
    fn ask(&self, step: SignInRequest) -> Result<Response, Error> {
        let response = daemon::call(self.socket, &Request::SignIn(step), self.timeout)
            .map_err(|e| daemon(DaemonError::Call(e)))?;
        match response {
            Response::Refused(refusal) if refusal.kind == ErrorKind::UnknownUser => {
                Err(Error::UnknownUser)
            }
            Response::Refused(refusal) => Err(daemon(DaemonError::Refused(refusal))),
            other => Ok(other),
        }
    }

    fn verdict(&self, step: SignInRequest) -> Result<Verdict, Error> {
        match self.ask(step)? {
            Response::Verdict(verdict) => Ok(verdict),
            other => Err(unexpected(other)),
        }
    }
}

fn daemon(e: DaemonError) -> Error {
    Error::Unavailable(Unavailable::Daemon(e))
}

fn unexpected(response: Response) -> Error {
    daemon(DaemonError::OutOfTurn(Box::new(response)))
}

impl SignInService for Remote<'_> {
    fn plan(&mut self, user: &str, mode: Mode, origin: &Origin) -> Result<Plan, Error> {
        match self.ask(SignInRequest::Plan {
            user: user.into(),
            mode,
            origin: origin.clone(),
        })? {
            Response::Plan(plan) => Ok(plan),
            other => Err(unexpected(other)),
        }
    }

    fn key_answer(
        &mut self,
        user: &str,
        challenge: &Bytes,
        answer: KeyAnswer,
        origin: &Origin,
    ) -> Result<Verdict, Error> {
        self.verdict(SignInRequest::KeyAnswer {
            user: user.into(),
            challenge: challenge.clone(),
            answer,
            origin: origin.clone(),
        })
    }

    fn check_pass(&mut self, user: &str, pass: Secret, origin: &Origin) -> Result<Verdict, Error> {
        self.verdict(SignInRequest::CheckPass {
            user: user.into(),
            pass,
            origin: origin.clone(),
        })
    }
}
