//! The software authenticator behind `sk_enroll` and `sk_sign`: what a FIDO2
//! key does for OpenSSH's sk-usbhid middleware, and what that middleware
//! hands back to OpenSSH.
//!
//! Keys are not stored. A key handle is `1 ‖ alg ‖ credProtect ‖ nonce(32)
//! ‖ mac(32)` with `mac = HMAC-SHA256(device secret, "pam_tap-sk handle" ‖
//! alg ‖ credProtect ‖ nonce ‖ SHA256(application))`; the private key is
//! the same HMAC under the label "pam_tap-sk key". A handle made by another
//! device or for another application fails the MAC, and the device answers
//! as a real one that does not know the credential: "device not found".

use ed25519_dalek::Signer as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::api::{self, Alg, SkError};
use crate::attestation;
use crate::authdata::{self, FLAG_UP, FLAG_UV};
use crate::config::{self, Switches};
use crate::state::{random, State, StateFile};

const HANDLE_VERSION: u8 = 1;
const HANDLE_LEN: usize = 3 + 32 + 32;
/// CTAP2.1 credProtect "userVerificationRequired": the credential is
/// invisible to an assertion without UV.
const CRED_PROTECT_UV_REQUIRED: u8 = 3;

/// One `sk_option` as OpenSSH passes it.
#[derive(Debug, Clone)]
pub struct SkOption {
    pub name: String,
    pub value: String,
    pub required: bool,
}

#[derive(Debug)]
pub struct EnrollRequest<'a> {
    pub alg: u32,
    pub challenge: &'a [u8],
    pub application: &'a str,
    pub flags: u8,
    pub pin: Option<&'a str>,
    pub options: Vec<SkOption>,
}

/// The fields of `struct sk_enroll_response`.
#[derive(Debug, Default)]
pub struct EnrollResponse {
    pub flags: u8,
    pub public_key: Vec<u8>,
    pub key_handle: Vec<u8>,
    pub signature: Vec<u8>,
    pub attestation_cert: Vec<u8>,
    pub authdata: Vec<u8>,
}

#[derive(Debug)]
pub struct SignRequest<'a> {
    pub alg: u32,
    pub data: &'a [u8],
    pub application: &'a str,
    pub key_handle: &'a [u8],
    pub flags: u8,
    pub pin: Option<&'a str>,
    pub options: Vec<SkOption>,
}

/// The fields of `struct sk_sign_response`.
#[derive(Debug, Default)]
pub struct SignResponse {
    pub flags: u8,
    pub counter: u32,
    pub sig_r: Vec<u8>,
    pub sig_s: Vec<u8>,
}

/// `sk_enroll`: makes a credential and attests it.
pub fn enroll(req: &EnrollRequest) -> Result<EnrollResponse, SkError> {
    let alg = Alg::from_api(req.alg)?;
    check_options(&req.options, true)?;
    if req.flags & api::RESIDENT_KEY != 0 {
        // sk-usbhid answers so for a key that cannot protect resident keys.
        return Err(SkError::Unsupported(
            "this software key makes no resident (discoverable) keys".into(),
        ));
    }
    let uv_required = req.flags & api::USER_VERIFICATION_REQD != 0;
    let switches = Switches::from_env();
    let (mut file, mut state) = StateFile::open(&config::state_path()?)?;
    let verified = user_verification(&state, &switches, req.pin, uv_required, true)?;
    // sk-usbhid asks for credProtect only with verify-required (or resident).
    let cred_protect = if uv_required {
        CRED_PROTECT_UV_REQUIRED
    } else {
        0
    };

    let app_hash: [u8; 32] = Sha256::digest(req.application.as_bytes()).into();
    let (key_handle, key) = loop {
        let mut nonce = [0u8; 32];
        random(&mut nonce)?;
        let header = [HANDLE_VERSION, alg.byte(), cred_protect];
        let (mac, seed) = derive(&state.device_secret, &header, &nonce, &app_hash)?;
        // A P-256 seed at or above the group order (odds 2^-32): new nonce.
        if let Some(key) = CredentialKey::from_seed(alg, &seed) {
            let mut handle = Vec::with_capacity(HANDLE_LEN);
            handle.extend_from_slice(&header);
            handle.extend_from_slice(&nonce);
            handle.extend_from_slice(&mac);
            break (handle, key);
        }
    };

    let counter = next_counter(&mut state);
    let mut flags = 0;
    if !switches.no_up {
        flags |= FLAG_UP; // makeCredential always tests presence
    }
    if verified {
        flags |= FLAG_UV;
    }
    let auth_data = authdata::registration(
        req.application,
        flags,
        counter,
        &state.aaguid,
        &key_handle,
        &key.cose(),
        (cred_protect != 0).then_some(cred_protect),
    );
    // sk-usbhid gives the challenge to fido_cred_set_clientdata(), which
    // hashes it: the client data hash is SHA-256(challenge).
    let client_data_hash = Sha256::digest(req.challenge);
    let signed = [&auth_data[..], &client_data_hash[..]].concat();
    let (signature, attestation_cert) = if switches.self_attestation {
        (key.sign_attestation(&signed), Vec::new())
    } else {
        let attestation_key = p256::ecdsa::SigningKey::from_slice(&state.attestation_key)
            .map_err(|_| SkError::General("state: bad attestation_key".into()))?;
        let signature: p256::ecdsa::Signature = attestation_key.sign(&signed);
        (
            signature.to_der().as_bytes().to_vec(),
            attestation::certificate(&attestation_key, &state.aaguid)?,
        )
    };
    file.save(&state)?;
    Ok(EnrollResponse {
        // As sk-usbhid: the requested flags, which become the key's sk_flags.
        flags: req.flags,
        public_key: key.public_key(),
        key_handle,
        signature,
        attestation_cert,
        authdata: authdata::cbor_byte_string(&auth_data),
    })
}

/// `sk_sign`: an assertion over `data`, as OpenSSH verifies it.
pub fn sign(req: &SignRequest) -> Result<SignResponse, SkError> {
    let alg = Alg::from_api(req.alg)?;
    check_options(&req.options, false)?;
    let not_ours = || {
        SkError::DeviceNotFound(format!(
            "no credential with this key handle for application {:?} on this device",
            req.application
        ))
    };
    let handle = req.key_handle;
    if handle.len() != HANDLE_LEN || handle[0] != HANDLE_VERSION || handle[1] != alg.byte() {
        return Err(not_ours());
    }
    let (header, rest) = handle.split_at(3);
    let (nonce, mac) = rest.split_at(32);
    let cred_protect = header[2];

    let switches = Switches::from_env();
    let (mut file, mut state) = StateFile::open(&config::state_path()?)?;
    let app_hash: [u8; 32] = Sha256::digest(req.application.as_bytes()).into();
    if !mac_matches(&state.device_secret, header, nonce, &app_hash, mac)? {
        return Err(not_ours());
    }
    let (_, seed) = derive(&state.device_secret, header, nonce, &app_hash)?;
    let key = CredentialKey::from_seed(alg, &seed).ok_or_else(not_ours)?;

    let uv_required = req.flags & api::USER_VERIFICATION_REQD != 0;
    let verified = user_verification(&state, &switches, req.pin, uv_required, false)?;
    if cred_protect == CRED_PROTECT_UV_REQUIRED && !verified {
        // credProtect 3 hides the credential from assertions without UV.
        return Err(SkError::DeviceNotFound(
            "this credential requires user verification".into(),
        ));
    }

    let counter = next_counter(&mut state);
    let mut flags = 0;
    // sk-usbhid asks for presence only when the key requires it.
    if req.flags & api::USER_PRESENCE_REQD != 0 && !switches.no_up {
        flags |= FLAG_UP;
    }
    if verified {
        flags |= FLAG_UV;
    }
    // sk-usbhid hands the message to fido_assert_set_clientdata(), which
    // hashes it; OpenSSH verifies over SHA256(app) ‖ flags ‖ counter ‖
    // SHA256(message), the same bytes.
    let signed = [
        &authdata::head(req.application, flags, counter)[..],
        &Sha256::digest(req.data)[..],
    ]
    .concat();
    let (sig_r, sig_s) = key.sign_assertion(&signed);
    file.save(&state)?;
    Ok(SignResponse {
        flags,
        counter,
        sig_r,
        sig_s,
    })
}

/// Whether the user is verified for this operation, as a key with the
/// state's PIN and built-in UV (both gone under `PAM_TAP_SK_NO_UV`) and
/// sk-usbhid would decide it.
fn user_verification(
    state: &State,
    switches: &Switches,
    pin: Option<&str>,
    required: bool,
    enrolling: bool,
) -> Result<bool, SkError> {
    let device_pin = state.pin.as_deref().filter(|_| !switches.no_uv);
    let built_in = state.uv && !switches.no_uv;
    match (pin, device_pin) {
        (Some(given), Some(set)) => {
            if constant_time_eq(given.as_bytes(), set.as_bytes()) {
                Ok(true)
            } else {
                Err(SkError::PinRequired("wrong PIN".into()))
            }
        }
        (Some(_), None) => Err(SkError::General(
            "a PIN was given but this device has no PIN set".into(),
        )),
        (None, _) if !required => Ok(false),
        (None, Some(_)) => Err(SkError::PinRequired(
            "user verification needs this device's PIN".into(),
        )),
        (None, None) if built_in => Ok(true),
        (None, None) if enrolling => Err(SkError::Unsupported(
            "this device cannot verify the user (no PIN, no built-in UV): no verify-required key"
                .into(),
        )),
        (None, None) => Err(SkError::PinRequired(
            "this device cannot verify the user (no PIN, no built-in UV)".into(),
        )),
    }
}

/// sk-usbhid's option check: "device" and "user" are known (this device
/// ignores both); an unknown option fails only if marked required.
fn check_options(options: &[SkOption], enrolling: bool) -> Result<(), SkError> {
    for option in options {
        let known = option.name == "device" || (enrolling && option.name == "user");
        if !known && option.required {
            return Err(SkError::General(format!(
                "unknown required option {:?}",
                option.name
            )));
        }
    }
    Ok(())
}

fn next_counter(state: &mut State) -> u32 {
    state.counter = state.counter.saturating_add(1);
    state.counter
}

type HmacSha256 = Hmac<Sha256>;

fn keyed(
    secret: &[u8; 32],
    label: &[u8],
    header: &[u8],
    nonce: &[u8],
    app_hash: &[u8; 32],
) -> Result<HmacSha256, SkError> {
    let mut mac = HmacSha256::new_from_slice(secret)
        .map_err(|_| SkError::General("HMAC key length".into()))?;
    mac.update(label);
    mac.update(header);
    mac.update(nonce);
    mac.update(app_hash);
    Ok(mac)
}

/// The handle's MAC and the private key seed.
fn derive(
    secret: &[u8; 32],
    header: &[u8],
    nonce: &[u8],
    app_hash: &[u8; 32],
) -> Result<([u8; 32], Zeroizing<[u8; 32]>), SkError> {
    let mac = keyed(secret, b"pam_tap-sk handle", header, nonce, app_hash)?;
    let seed = keyed(secret, b"pam_tap-sk key", header, nonce, app_hash)?;
    Ok((
        mac.finalize().into_bytes().into(),
        Zeroizing::new(seed.finalize().into_bytes().into()),
    ))
}

fn mac_matches(
    secret: &[u8; 32],
    header: &[u8],
    nonce: &[u8],
    app_hash: &[u8; 32],
    mac: &[u8],
) -> Result<bool, SkError> {
    let expected = keyed(secret, b"pam_tap-sk handle", header, nonce, app_hash)?;
    Ok(expected.verify_slice(mac).is_ok())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

enum CredentialKey {
    Es256(p256::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

impl CredentialKey {
    fn from_seed(alg: Alg, seed: &[u8; 32]) -> Option<CredentialKey> {
        match alg {
            Alg::Es256 => p256::ecdsa::SigningKey::from_slice(seed)
                .ok()
                .map(CredentialKey::Es256),
            Alg::Ed25519 => Some(CredentialKey::Ed25519(
                ed25519_dalek::SigningKey::from_bytes(seed),
            )),
        }
    }

    /// As sk-usbhid packs it: SEC1 uncompressed for P-256, 32 bytes for
    /// Ed25519.
    fn public_key(&self) -> Vec<u8> {
        match self {
            CredentialKey::Es256(key) => key
                .verifying_key()
                .to_encoded_point(false)
                .as_bytes()
                .to_vec(),
            CredentialKey::Ed25519(key) => key.verifying_key().to_bytes().to_vec(),
        }
    }

    fn cose(&self) -> Vec<u8> {
        match self {
            CredentialKey::Es256(key) => {
                let point = key.verifying_key().to_encoded_point(false);
                let (x, y) = (point.x(), point.y());
                match (x, y) {
                    (Some(x), Some(y)) => authdata::cose_es256(x, y),
                    _ => Vec::new(), // never: an uncompressed point has both
                }
            }
            CredentialKey::Ed25519(key) => authdata::cose_ed25519(key.verifying_key().as_bytes()),
        }
    }

    /// A `packed` self-attestation signature: DER ECDSA or raw Ed25519.
    fn sign_attestation(&self, message: &[u8]) -> Vec<u8> {
        match self {
            CredentialKey::Es256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                signature.to_der().as_bytes().to_vec()
            }
            CredentialKey::Ed25519(key) => key.sign(message).to_bytes().to_vec(),
        }
    }

    /// `(sig_r, sig_s)` as sk-usbhid fills them: ECDSA r and s big-endian
    /// without leading zeros (BN_bn2bin); Ed25519's 64 bytes in sig_r.
    fn sign_assertion(&self, message: &[u8]) -> (Vec<u8>, Vec<u8>) {
        match self {
            CredentialKey::Es256(key) => {
                let signature: p256::ecdsa::Signature = key.sign(message);
                let (r, s) = signature.split_bytes();
                (strip_zeros(&r), strip_zeros(&s))
            }
            CredentialKey::Ed25519(key) => (key.sign(message).to_bytes().to_vec(), Vec::new()),
        }
    }
}

fn strip_zeros(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes[start..].to_vec()
}
