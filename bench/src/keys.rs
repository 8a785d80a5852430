//! Case (d): sign-in by security key, with the software authenticator
//! behind the real helper protocol. The module's and tapd's own share is
//! the whole login less one helper round trip (spawn + authenticator),
//! measured beside it in the same run. The key is enrolled straight into
//! the store before its daemon starts.

use crate::workspace::Workspace;
use crate::{fail, now};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tap_core::audit::AuditRecord;
use tap_core::helper::runner::run_helper;
use tap_core::keys::credential::KeyCredential;
use tap_core::keys::protocol::{
    AssertRequest, Bytes, RegisterRequest, Request, Response, UserVerification,
};
use tap_core::keys::{verify_registration, RegistrationAnswer};
use tap_core::policy::Policy;
use tap_core::store::Store;
use tap_store::{OpenOptions, SqliteStore};

pub const KEY_USER: &str = "daemon";
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct KeySetup {
    helper: PathBuf,
    rp_id: String,
    credential_id: Vec<u8>,
}

impl KeySetup {
    /// A policy whose helper is the soft key, and one key enrolled for KEY_USER.
    pub fn new(work: &Workspace, softkey: &Path) -> KeySetup {
        let dir = &work.dir;
        let helper = dir.join("softkey.sh");
        let state = dir.join("softkey.json");
        std::fs::write(
            &helper,
            format!(
                "#!/bin/sh\nexec {} --state {} \"$@\"\n",
                softkey.display(),
                state.display()
            ),
        )
        .unwrap_or_else(|e| fail(&format!("{}: {e}", helper.display())));
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| fail(&e.to_string()));
        let policy_path = work.policy(
            "keys",
            &format!(
                "[keys]\nhelper = \"{}\"\nrp_id = \"pam://bench\"\nuser_verification = \"discouraged\"\n",
                helper.display()
            ),
        );
        let policy = Policy::load(&policy_path).unwrap_or_else(|e| fail(&e.to_string()));
        let mut setup = KeySetup {
            helper,
            rp_id: policy.keys.rp_id().to_string(),
            credential_id: Vec::new(),
        };
        setup.enroll(&policy);
        setup
    }

    fn enroll(&mut self, policy: &Policy) {
        let challenge = [7u8; 32];
        let request = Request::Register(RegisterRequest {
            rp_id: self.rp_id.clone(),
            client_data_hash: Bytes(challenge.to_vec()),
            user_id: Bytes(vec![1; 16]),
            user_name: KEY_USER.into(),
            exclude: Vec::new(),
            algorithms: vec![-7],
            user_verification: UserVerification::Discouraged,
            pin: None,
        });
        let Ok(Response::Registered {
            authenticator_data,
            attestation_format,
            attestation_statement,
        }) = run_helper(&self.helper, &request, TIMEOUT)
        else {
            fail("the soft key did not register a credential");
        };
        let answer = RegistrationAnswer {
            authenticator_data: &authenticator_data.0,
            attestation_format: &attestation_format,
            attestation_statement: &attestation_statement.0,
        };
        let verified = verify_registration(&self.rp_id, &challenge, false, &answer)
            .unwrap_or_else(|e| fail(&format!("registration: {e}")));
        let key = KeyCredential {
            user: KEY_USER.into(),
            credential_id: verified.credential_id.clone(),
            public_key: verified.public_key,
            algorithm: verified.algorithm.cose_id(),
            aaguid: verified.aaguid,
            sign_count: verified.sign_count,
            label: "bench".into(),
            attestation: "none".into(),
            created: now(),
            last_used: None,
        };
        let options = OpenOptions {
            create: true,
            check_trust: false,
        };
        SqliteStore::open(policy.store.sqlite_path(), options)
            .and_then(|mut store| store.add_key(&key, 5, &AuditRecord::default()))
            .unwrap_or_else(|e| fail(e.detail()));
        self.credential_id = verified.credential_id;
    }

    /// One helper round trip with an assertion request like the module's.
    pub fn helper_round_trip(&self) {
        let mut challenge = vec![0u8; 32];
        tap_core::keys::random_bytes(&mut challenge).unwrap_or_else(|e| fail(&e.to_string()));
        let request = Request::Assert(AssertRequest {
            rp_id: self.rp_id.clone(),
            client_data_hash: Bytes(challenge),
            allow: vec![Bytes(self.credential_id.clone())],
            user_verification: UserVerification::Discouraged,
            pin: None,
        });
        match run_helper(&self.helper, &request, TIMEOUT) {
            Ok(Response::Asserted { .. }) => {}
            other => fail(&format!("soft key assertion: {other:?}")),
        }
    }
}

/// Case (d)'s CPU time, per helper trip and per key login: this process's
/// (the module, the loader, libpam; a helper trip's fork, exec and wait)
/// and tapd's. The helper's own process is in neither.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyCpu {
    pub helper_client: std::time::Duration,
    pub login_client: std::time::Duration,
    pub login_tapd: std::time::Duration,
}

impl KeyCpu {
    /// This process's CPU per login beyond what a helper trip costs it.
    pub fn client_own_ms(&self) -> f64 {
        crate::ms(self.login_client) - crate::ms(self.helper_client)
    }
}

impl std::ops::Div<u32> for KeyCpu {
    type Output = KeyCpu;
    fn div(self, n: u32) -> KeyCpu {
        KeyCpu {
            helper_client: self.helper_client / n,
            login_client: self.login_client / n,
            login_tapd: self.login_tapd / n,
        }
    }
}
