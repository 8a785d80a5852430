//! The key-helper protocol on top of 1Password's `passkey-authenticator`
//! (a CTAP 2.0 authenticator in software). It makes the keys, builds the
//! authenticator data, keeps the signature counter and signs; this module
//! adds what it lacks for our tests: a client PIN (it has no PIN protocol,
//! so the PIN is checked here and the authenticator is told "user
//! verified", its built-in-UV path), "packed" self attestation (it only
//! makes "none"), persistence, and fault injection.
//!
//! Nothing here verifies anything the way the caller does: tests stay
//! honest only if the authenticator and the verifier are independent.

use passkey_authenticator::{
    Authenticator, CredentialStore, DiscoverabilitySupport, StoreInfo, UiHint, UserCheck,
    UserValidationMethod,
};
use passkey_crypto::coset::{iana, iana::EnumI64, CborSerializable, CoseKey};
use passkey_crypto::rust_crypto::{RustCryptoBackend, RustCryptoSecretKey};
use passkey_crypto::SecretKeyT;
use passkey_types::ctap2::{get_assertion, make_credential, Aaguid, Ctap2Error, Flags, StatusCode};
use passkey_types::webauthn::{
    PublicKeyCredentialDescriptor, PublicKeyCredentialParameters, PublicKeyCredentialType,
    PublicKeyCredentialUserEntity,
};
use passkey_types::{Bytes as PkBytes, Passkey};
use tap_core::keys::protocol::{
    AssertRequest, Bytes, HelperError, RegisterRequest, Request, Response, UserVerification,
};
use zeroize::Zeroizing;

use crate::state::{Credential, State, PIN_RETRIES};

/// The rp id signed for under `--wrong-rp-id`.
pub const WRONG_RP_ID: &str = "wrong-rp.invalid";

/// How the authenticator verifies its user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Uv {
    /// A client PIN is set; UV only with the right PIN.
    Pin(Zeroizing<String>),
    /// No PIN, built-in verification that always succeeds (a matching finger).
    BuiltIn,
    /// No PIN and no built-in verification: presence only.
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Attestation {
    #[default]
    None,
    /// "packed" self attestation: attStmt {alg, sig}, signed by the new key.
    PackedSelf,
}

/// Ways to misbehave, for the caller's refusal tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    pub wrong_rp_id: bool,
    pub no_up: bool,
    pub no_uv_flag: bool,
    pub tamper_authdata: bool,
    pub tamper_signature: bool,
    pub counter_regress: bool,
    pub no_device: bool,
    pub other_key: bool,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub uv: Uv,
    pub attestation: Attestation,
    /// Algorithms this authenticator supports (COSE ids), in no order.
    pub algorithms: Vec<i64>,
    /// Overrides the state's AAGUID (and is saved into it).
    pub aaguid: Option<[u8; 16]>,
    pub faults: Faults,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            uv: Uv::BuiltIn,
            attestation: Attestation::None,
            algorithms: vec![-7, -8],
            aaguid: None,
            faults: Faults::default(),
        }
    }
}

fn failed(error: HelperError, message: impl Into<String>) -> Response {
    Response::Failed {
        error,
        message: message.into(),
    }
}

/// Answer one request; `state` is updated in place (the caller saves it).
pub fn handle(request: &Request, config: &Config, state: &mut State) -> Response {
    if let Some(aaguid) = config.aaguid {
        state.aaguid = aaguid;
    }
    if config.faults.no_device {
        return failed(HelperError::NoDevice, "no security key found");
    }
    match request {
        Request::Probe => Response::Present {
            pin_set: matches!(config.uv, Uv::Pin(_)),
        },
        Request::Register(register) => self::register(register, config, state),
        Request::Assert(assert) => self::assert(assert, config, state),
    }
}

/// Decide whether the user is verified for this operation, as a CTAP 2.0
/// key with this configuration would (PIN retries persist in the state).
fn verify_user(
    config: &Config,
    state: &mut State,
    wanted: UserVerification,
    pin: Option<&str>,
    registering: bool,
) -> Result<bool, Response> {
    match &config.uv {
        Uv::Pin(expected) => {
            if state.pin_retries == 0 {
                return Err(failed(HelperError::PinBlocked, "the PIN is blocked"));
            }
            match pin {
                Some(given) if given == expected.as_str() => {
                    state.pin_retries = PIN_RETRIES;
                    Ok(true)
                }
                Some(_) => {
                    state.pin_retries -= 1;
                    if state.pin_retries == 0 {
                        Err(failed(HelperError::PinBlocked, "the PIN is blocked"))
                    } else {
                        Err(failed(
                            HelperError::PinInvalid,
                            format!("wrong PIN ({} attempts left)", state.pin_retries),
                        ))
                    }
                }
                // CTAP 2.0: a key with a PIN wants it for makeCredential,
                // and for getAssertion only when UV is required.
                None if registering || wanted == UserVerification::Required => {
                    Err(failed(HelperError::PinRequired, "this key has a PIN"))
                }
                None => Ok(false),
            }
        }
        Uv::BuiltIn => Ok(pin.is_some() || wanted != UserVerification::Discouraged),
        Uv::None => {
            if wanted == UserVerification::Required {
                Err(failed(
                    HelperError::Device,
                    "this key cannot verify the user (no PIN set, no built-in verification)",
                ))
            } else {
                Ok(false)
            }
        }
    }
}

fn register(request: &RegisterRequest, config: &Config, state: &mut State) -> Response {
    if request.client_data_hash.0.len() != 32 {
        return failed(HelperError::BadRequest, "client_data_hash must be 32 bytes");
    }
    let pin = request.pin.as_ref().map(|p| p.0.as_str());
    let verified = match verify_user(config, state, request.user_verification, pin, true) {
        Ok(verified) => verified,
        Err(response) => return response,
    };
    let faults = &config.faults;
    let signing_rp = if faults.wrong_rp_id {
        WRONG_RP_ID
    } else {
        request.rp_id.as_str()
    };
    let params: Vec<PublicKeyCredentialParameters> = request
        .algorithms
        .iter()
        .filter_map(|id| iana::Algorithm::from_i64(*id))
        .map(|alg| PublicKeyCredentialParameters {
            ty: PublicKeyCredentialType::PublicKey,
            alg,
        })
        .collect();
    let input = make_credential::Request {
        client_data_hash: request.client_data_hash.0.clone().into(),
        rp: make_credential::PublicKeyCredentialRpEntity {
            id: signing_rp.to_string(),
            name: None,
        },
        user: PublicKeyCredentialUserEntity {
            id: request.user_id.0.clone().into(),
            display_name: request.user_name.clone(),
            name: request.user_name.clone(),
        },
        pub_key_cred_params: params,
        exclude_list: descriptors(&request.exclude),
        extensions: None,
        options: make_credential::Options {
            rk: false,
            up: true,
            uv: verified,
        },
        pin_auth: None,
        pin_protocol: None,
    };
    let store = Store {
        state: state.clone(),
        ignore_rp: faults.wrong_rp_id,
        save_as_rp: Some(request.rp_id.clone()),
        ..Store::default()
    };
    let user = SoftUser {
        can_verify: config.uv != Uv::None,
        presence: true,
        verified,
    };
    let mut authenticator = match new_authenticator(state.aaguid, store, user, config) {
        Ok(a) => a,
        Err(response) => return response,
    };
    let made = match pollster::block_on(authenticator.make_credential(input)) {
        Ok(made) => made,
        Err(status) => return from_status(&status),
    };
    let store = authenticator.store();
    let Some(new) = store.saved.clone() else {
        return failed(HelperError::Device, "the authenticator saved no credential");
    };
    let mut auth_data = made.auth_data.to_vec();
    // Faults the attestation (if any) signs over.
    if faults.no_up {
        auth_data[32] &= !Flags::UP.bits();
    }
    if faults.no_uv_flag {
        auth_data[32] &= !Flags::UV.bits();
    }
    let (format, statement) = match config.attestation {
        Attestation::None => ("none", cbor(&ciborium::Value::Map(vec![]))),
        Attestation::PackedSelf => {
            let mut key = match secret_key(&new.key) {
                Ok(key) => key,
                Err(response) => return response,
            };
            let mut target = auth_data.clone();
            target.extend_from_slice(&request.client_data_hash.0);
            let mut sig = key.sign(&target);
            if faults.tamper_signature {
                flip_last_bit(&mut sig);
            }
            let statement = ciborium::Value::Map(vec![
                (
                    ciborium::Value::Text("alg".into()),
                    ciborium::Value::Integer(new.alg.into()),
                ),
                (
                    ciborium::Value::Text("sig".into()),
                    ciborium::Value::Bytes(sig),
                ),
            ]);
            ("packed", cbor(&statement))
        }
    };
    if faults.tamper_authdata {
        tamper(&mut auth_data);
    }
    state.credentials.push(new);
    Response::Registered {
        authenticator_data: Bytes(auth_data),
        attestation_format: format.into(),
        attestation_statement: Bytes(statement),
    }
}

fn assert(request: &AssertRequest, config: &Config, state: &mut State) -> Response {
    if request.client_data_hash.0.len() != 32 {
        return failed(HelperError::BadRequest, "client_data_hash must be 32 bytes");
    }
    let pin = request.pin.as_ref().map(|p| p.0.as_str());
    let verified = match verify_user(config, state, request.user_verification, pin, false) {
        Ok(verified) => verified,
        Err(response) => return response,
    };
    let faults = &config.faults;
    let signing_rp = if faults.wrong_rp_id {
        WRONG_RP_ID
    } else {
        request.rp_id.as_str()
    };
    let uv_flag = verified && !faults.no_uv_flag;
    let user = SoftUser {
        can_verify: config.uv != Uv::None,
        presence: !faults.no_up,
        verified: uv_flag,
    };

    let (store, allow) = if faults.other_key {
        // A key nobody enrolled: make a fresh credential in a throwaway
        // store and sign with it.
        match throwaway_credential(config, &request.rp_id) {
            Ok((store, id)) => (store, Some(vec![descriptor(&id)])),
            Err(response) => return response,
        }
    } else {
        let store = Store {
            state: state.clone(),
            ignore_rp: faults.wrong_rp_id,
            counter_regress: faults.counter_regress,
            ..Store::default()
        };
        (store, descriptors(&request.allow))
    };
    let input = get_assertion::Request {
        rp_id: signing_rp.to_string(),
        client_data_hash: request.client_data_hash.0.clone().into(),
        allow_list: allow,
        extensions: None,
        options: get_assertion::Options {
            up: !faults.no_up,
            uv: uv_flag,
        },
        pin_auth: None,
        pin_protocol: None,
    };
    let mut authenticator = match new_authenticator(state.aaguid, store, user, config) {
        Ok(a) => a,
        Err(response) => return response,
    };
    let asserted = match pollster::block_on(authenticator.get_assertion(input)) {
        Ok(asserted) => asserted,
        Err(status) => return from_status(&status),
    };
    if !faults.other_key {
        // The counter the authenticator advanced (not under --counter-regress).
        state.credentials = authenticator.store().state.credentials.clone();
    }
    let Some(credential) = asserted.credential else {
        return failed(HelperError::Device, "the authenticator named no credential");
    };
    let mut auth_data = asserted.auth_data.to_vec();
    let mut signature: Vec<u8> = asserted.signature.into();
    if faults.tamper_authdata {
        tamper(&mut auth_data);
    }
    if faults.tamper_signature {
        flip_last_bit(&mut signature);
    }
    Response::Asserted {
        credential_id: Bytes(credential.id.into()),
        authenticator_data: Bytes(auth_data),
        signature: Bytes(signature),
    }
}

fn throwaway_credential(config: &Config, rp_id: &str) -> Result<(Store, Vec<u8>), Response> {
    let store = Store {
        save_as_rp: Some(rp_id.to_string()),
        ..Store::default()
    };
    let user = SoftUser {
        can_verify: true,
        presence: true,
        verified: false,
    };
    let mut authenticator = new_authenticator([0; 16], store, user, config)?;
    let mut cdh = [0u8; 32];
    getrandom::getrandom(&mut cdh).map_err(|e| failed(HelperError::Device, e.to_string()))?;
    let algorithms = config
        .algorithms
        .iter()
        .filter_map(|id| iana::Algorithm::from_i64(*id))
        .map(|alg| PublicKeyCredentialParameters {
            ty: PublicKeyCredentialType::PublicKey,
            alg,
        })
        .collect();
    let input = make_credential::Request {
        client_data_hash: cdh.to_vec().into(),
        rp: make_credential::PublicKeyCredentialRpEntity {
            id: rp_id.to_string(),
            name: None,
        },
        user: PublicKeyCredentialUserEntity {
            id: vec![0].into(),
            display_name: "other".into(),
            name: "other".into(),
        },
        pub_key_cred_params: algorithms,
        exclude_list: None,
        extensions: None,
        options: make_credential::Options::default(),
        pin_auth: None,
        pin_protocol: None,
    };
    pollster::block_on(authenticator.make_credential(input)).map_err(|s| from_status(&s))?;
    let Some(made) = authenticator.store().saved.clone() else {
        return Err(failed(HelperError::Device, "no throwaway credential"));
    };
    let mut store = Store::default();
    store.state.credentials.push(made.clone());
    Ok((store, made.id))
}

fn new_authenticator(
    aaguid: [u8; 16],
    store: Store,
    user: SoftUser,
    config: &Config,
) -> Result<Authenticator<Store, SoftUser, RustCryptoBackend>, Response> {
    let mut authenticator =
        Authenticator::new(Aaguid::from(aaguid), store, user, RustCryptoBackend);
    authenticator.set_make_credentials_with_signature_counter(true);
    let algorithms: Vec<iana::Algorithm> = config
        .algorithms
        .iter()
        .filter_map(|id| iana::Algorithm::from_i64(*id))
        .collect();
    authenticator
        .set_algorithms(&algorithms)
        .map_err(|_| failed(HelperError::Device, "no supported algorithm configured"))?;
    Ok(authenticator)
}

fn descriptor(id: &[u8]) -> PublicKeyCredentialDescriptor {
    PublicKeyCredentialDescriptor {
        ty: PublicKeyCredentialType::PublicKey,
        id: id.to_vec().into(),
        transports: None,
    }
}

fn descriptors(ids: &[Bytes]) -> Option<Vec<PublicKeyCredentialDescriptor>> {
    if ids.is_empty() {
        None
    } else {
        Some(ids.iter().map(|id| descriptor(&id.0)).collect())
    }
}

fn from_status(status: &StatusCode) -> Response {
    match status {
        StatusCode::Known(Ctap2Error::NoCredentials) => failed(
            HelperError::NoCredentials,
            "this key holds none of the allowed credentials",
        ),
        StatusCode::Known(Ctap2Error::CredentialExcluded) => {
            failed(HelperError::AlreadyEnrolled, "this key is already enrolled")
        }
        StatusCode::Known(Ctap2Error::OperationDenied) => {
            failed(HelperError::NotConfirmed, "the user did not confirm")
        }
        StatusCode::Known(Ctap2Error::UnsupportedAlgorithm) => failed(
            HelperError::Device,
            "the key supports none of the requested algorithms",
        ),
        other => failed(
            HelperError::Device,
            format!("authenticator error {other:?}"),
        ),
    }
}

fn cbor(value: &ciborium::Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = ciborium::into_writer(value, &mut out);
    out
}

fn secret_key(cbor_key: &[u8]) -> Result<RustCryptoSecretKey, Response> {
    let key = CoseKey::from_slice(cbor_key)
        .map_err(|_| failed(HelperError::Device, "stored key is not a COSE key"))?;
    RustCryptoSecretKey::from_cose_key(&key)
        .map_err(|_| failed(HelperError::Device, "stored key cannot sign"))
}

/// Flip one bit of the signature counter's top byte: the counter still
/// goes up, the flags and rp id hash stay valid, only the signature breaks.
fn tamper(auth_data: &mut [u8]) {
    if let Some(byte) = auth_data.get_mut(33) {
        *byte ^= 0x40;
    }
}

fn flip_last_bit(bytes: &mut [u8]) {
    if let Some(byte) = bytes.last_mut() {
        *byte ^= 0x01;
    }
}

/// The state as a passkey-authenticator credential store.
#[derive(Default)]
struct Store {
    state: State,
    /// `--wrong-rp-id`: find credentials whatever rp they belong to.
    ignore_rp: bool,
    /// `--counter-regress`: hand out counters that go backwards, and keep
    /// the real one.
    counter_regress: bool,
    /// Store new credentials under this rp id (the requested one, even when
    /// signing for a wrong one).
    save_as_rp: Option<String>,
    /// The credential made by this run.
    saved: Option<Credential>,
}

fn to_passkey(credential: &Credential, counter: Option<u32>) -> Result<Passkey, StatusCode> {
    let key = CoseKey::from_slice(&credential.key).map_err(|_| Ctap2Error::InvalidCredential)?;
    Ok(Passkey {
        key,
        credential_id: PkBytes::from(credential.id.clone()),
        rp_id: credential.rp_id.clone(),
        user_handle: None,
        username: None,
        user_display_name: None,
        counter,
        extensions: Default::default(),
    })
}

#[async_trait::async_trait]
impl CredentialStore for Store {
    type PasskeyItem = Passkey;

    async fn find_credentials(
        &self,
        ids: Option<&[PublicKeyCredentialDescriptor]>,
        rp_id: &str,
        _user_handle: Option<&[u8]>,
    ) -> Result<Vec<Passkey>, StatusCode> {
        let mut found = Vec::new();
        for credential in &self.state.credentials {
            let rp_matches = self.ignore_rp || credential.rp_id == rp_id;
            let id_matches = ids.is_none_or(|ids| ids.iter().any(|d| *d.id == *credential.id));
            if rp_matches && id_matches {
                let counter = if self.counter_regress {
                    // The authenticator adds one before signing: stored - 1.
                    credential.counter.checked_sub(2)
                } else {
                    Some(credential.counter)
                };
                found.push(to_passkey(credential, counter)?);
            }
        }
        if found.is_empty() {
            Err(Ctap2Error::NoCredentials.into())
        } else {
            Ok(found)
        }
    }

    async fn save_credential(
        &mut self,
        cred: Passkey,
        user: make_credential::PublicKeyCredentialUserEntity,
        rp: make_credential::PublicKeyCredentialRpEntity,
        _options: make_credential::Options,
    ) -> Result<(), StatusCode> {
        let key = cred
            .key
            .clone()
            .to_vec()
            .map_err(|_| Ctap2Error::InvalidCredential)?;
        let alg = match &cred.key.alg {
            Some(passkey_crypto::coset::Algorithm::Assigned(alg)) => alg.to_i64(),
            _ => 0,
        };
        let credential = Credential {
            id: cred.credential_id.clone().into(),
            rp_id: self.save_as_rp.clone().unwrap_or(rp.id),
            user_id: user.id.into(),
            user_name: user.name.unwrap_or_default(),
            alg,
            key,
            counter: cred.counter.unwrap_or(0),
        };
        self.saved = Some(credential);
        Ok(())
    }

    async fn update_credential(&mut self, cred: &Passkey) -> Result<(), StatusCode> {
        if self.counter_regress {
            return Ok(());
        }
        let id: &[u8] = &cred.credential_id;
        if let Some(stored) = self.state.credentials.iter_mut().find(|c| c.id == id) {
            stored.counter = cred.counter.unwrap_or(stored.counter);
        }
        Ok(())
    }

    async fn get_info(&self) -> StoreInfo {
        StoreInfo {
            discoverability: DiscoverabilitySupport::OnlyNonDiscoverable,
        }
    }
}

/// The person at the key: always present (unless `--no-up`), verified when
/// this module decided so.
struct SoftUser {
    can_verify: bool,
    presence: bool,
    verified: bool,
}

#[async_trait::async_trait]
impl UserValidationMethod for SoftUser {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        // passkey-authenticator reports an excluded credential through the
        // UI hint and leaves the error to us (CTAP: after a touch).
        if let UiHint::InformExcludedCredentialFound(_) = hint {
            return Err(Ctap2Error::CredentialExcluded);
        }
        Ok(UserCheck {
            presence: presence && self.presence,
            verification: verification && self.verified,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(self.can_verify)
    }
}
