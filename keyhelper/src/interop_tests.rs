//! The helper's CTAP2 path against an independent authenticator: the CBOR
//! this helper sends goes, framed in CTAPHID packets, to 1Password's
//! passkey-authenticator (decoded with passkey-types' own serde model),
//! and its CBOR answers come back the same way. A real key is the only
//! better test; this one runs everywhere.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use passkey_authenticator::{Authenticator, MemoryStore, UiHint, UserCheck, UserValidationMethod};
use passkey_crypto::coset::{iana, CborSerializable, CoseKey};
use passkey_crypto::hash::Sha256Backend;
use passkey_crypto::rust_crypto::{RustCryptoBackend, RustCryptoSecretKey, RustCryptoSha2};
use passkey_crypto::{PublicKeyT, SecretKeyT};
use passkey_types::ctap2::{get_assertion, make_credential, Aaguid, Ctap2Error, StatusCode};
use passkey_types::Passkey;
use tap_core::keys::protocol::{
    AssertRequest, Bytes, HelperError, RegisterRequest, Request, Response, UserVerification,
};

use crate::ctaphid::tests::FakeDevice;
use crate::ctaphid::{Channel, HidIo, TransportError};
use crate::ops::{self, Device, PinAuth, CMD_GET_ASSERTION, CMD_GET_INFO, CMD_MAKE_CREDENTIAL};

struct Person;

#[async_trait::async_trait]
impl UserValidationMethod for Person {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        if let UiHint::InformExcludedCredentialFound(_) = hint {
            return Err(Ctap2Error::CredentialExcluded);
        }
        Ok(UserCheck {
            presence,
            verification,
        })
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }
}

type Soft = Authenticator<MemoryStore, Person, RustCryptoBackend>;

fn status(code: StatusCode) -> Vec<u8> {
    vec![u8::from(code)]
}

fn ok(value: &impl serde::Serialize) -> Vec<u8> {
    let mut out = vec![0u8];
    ciborium::into_writer(value, &mut out).unwrap();
    out
}

/// CTAP2 over the fake HID device, answered by passkey-authenticator.
fn answer(authenticator: &Rc<RefCell<Soft>>, command: u8, cbor: &[u8]) -> Vec<u8> {
    let mut authenticator = authenticator.borrow_mut();
    match command {
        CMD_GET_INFO => {
            // Built-in UV, no client PIN (passkey-authenticator has none).
            let info = ciborium::Value::Map(vec![
                (
                    ciborium::Value::Integer(1.into()),
                    ciborium::Value::Array(vec![ciborium::Value::Text("FIDO_2_0".into())]),
                ),
                (
                    ciborium::Value::Integer(4.into()),
                    ciborium::Value::Map(vec![(
                        ciborium::Value::Text("uv".into()),
                        ciborium::Value::Bool(true),
                    )]),
                ),
            ]);
            ok(&info)
        }
        CMD_MAKE_CREDENTIAL => {
            let request: make_credential::Request = ciborium::from_reader(cbor).unwrap();
            match pollster::block_on(authenticator.make_credential(request)) {
                Ok(response) => ok(&response),
                Err(code) => status(code),
            }
        }
        CMD_GET_ASSERTION => {
            let request: get_assertion::Request = ciborium::from_reader(cbor).unwrap();
            match pollster::block_on(authenticator.get_assertion(request)) {
                Ok(response) => ok(&response),
                Err(code) => status(code),
            }
        }
        _ => status(Ctap2Error::InvalidCommand.into()),
    }
}

struct Simulated<H: HidIo>(Channel<H>);

impl<H: HidIo> Device for Simulated<H> {
    fn command(&mut self, command: u8, cbor: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.0.cbor(command, cbor)
    }
    fn pin_auth(&mut self, _: &str, _: &[u8], _: &[u64]) -> Result<PinAuth, TransportError> {
        unreachable!("this authenticator has no PIN")
    }
}

fn simulated() -> (Simulated<impl HidIo>, Rc<RefCell<Soft>>) {
    let mut soft = Authenticator::new(
        Aaguid::from(*b"interop-test-key"),
        MemoryStore::new(),
        Person,
        RustCryptoBackend,
    );
    soft.set_make_credentials_with_signature_counter(true);
    soft.set_algorithms(&[iana::Algorithm::ES256, iana::Algorithm::EdDSA])
        .unwrap();
    let soft = Rc::new(RefCell::new(soft));
    let inner = soft.clone();
    let device = FakeDevice::new(move |command, cbor| answer(&inner, command, cbor));
    (Simulated(Channel::open(device).unwrap()), soft)
}

fn private_key(soft: &Rc<RefCell<Soft>>, id: &[u8]) -> RustCryptoSecretKey {
    let soft = soft.borrow();
    let store: &HashMap<Vec<u8>, Passkey> = soft.store();
    let passkey = store.get(id).expect("credential stored");
    let key = CoseKey::from_slice(&passkey.key.clone().to_vec().unwrap()).unwrap();
    RustCryptoSecretKey::from_cose_key(&key).unwrap()
}

fn register(algorithms: Vec<i64>, exclude: Vec<Bytes>) -> Request {
    Request::Register(RegisterRequest {
        rp_id: "pam://interop".into(),
        client_data_hash: Bytes(vec![0x77; 32]),
        user_id: Bytes(b"user-1".to_vec()),
        user_name: "alice".into(),
        exclude,
        algorithms,
        user_verification: UserVerification::Required,
        pin: None,
    })
}

fn assert(allow: Vec<Bytes>) -> Request {
    Request::Assert(AssertRequest {
        rp_id: "pam://interop".into(),
        client_data_hash: Bytes(vec![0x99; 32]),
        allow,
        user_verification: UserVerification::Required,
        pin: None,
    })
}

#[test]
fn register_and_assert_against_passkey_authenticator() {
    for (algorithm, signature_check) in [(-7, 0x30u8), (-8, 0)] {
        let (mut device, soft) = simulated();
        let response = ops::handle(&mut device, &register(vec![algorithm], vec![]));
        let Response::Registered {
            authenticator_data,
            attestation_format,
            attestation_statement,
        } = response
        else {
            panic!("{response:?}");
        };
        assert_eq!(attestation_format, "none");
        assert_eq!(attestation_statement.0, vec![0xa0]);
        let auth_data = authenticator_data.0;
        assert_eq!(
            auth_data[..32],
            RustCryptoSha2::sha256(b"pam://interop")[..]
        );
        // UP, UV (built-in, asked for), AT.
        assert_eq!(auth_data[32] & 0x45, 0x45);
        assert_eq!(&auth_data[37..53], b"interop-test-key");
        let len = usize::from(u16::from_be_bytes([auth_data[53], auth_data[54]]));
        let id = auth_data[55..55 + len].to_vec();
        let key = private_key(&soft, &id);
        assert_eq!(
            auth_data[55 + len..].to_vec(),
            key.public_key().to_cose_key().to_vec().unwrap()
        );

        let response = ops::handle(
            &mut device,
            &assert(vec![Bytes(vec![1; 16]), Bytes(id.clone())]),
        );
        let Response::Asserted {
            credential_id,
            authenticator_data,
            signature,
        } = response
        else {
            panic!("{response:?}");
        };
        assert_eq!(credential_id.0, id);
        assert_eq!(authenticator_data.0[32] & 0x05, 0x05);
        assert_eq!(
            u32::from_be_bytes(authenticator_data.0[33..37].try_into().unwrap()),
            1
        );
        // Signed over authData ‖ the clientDataHash exactly as the caller
        // gave it (ctap-hid-fido2's own calls would hash it once more).
        let mut signed = authenticator_data.0.clone();
        signed.extend_from_slice(&[0x99; 32]);
        key.public_key().verify(&signed, &signature.0).unwrap();
        if signature_check != 0 {
            assert_eq!(signature.0[0], signature_check);
        } else {
            assert_eq!(signature.0.len(), 64);
        }

        // The exclude list and an unknown credential.
        let response = ops::handle(&mut device, &register(vec![-7], vec![Bytes(id.clone())]));
        assert!(
            matches!(
                response,
                Response::Failed {
                    error: HelperError::AlreadyEnrolled,
                    ..
                }
            ),
            "{response:?}"
        );
        let response = ops::handle(&mut device, &assert(vec![Bytes(vec![2; 16])]));
        assert!(
            matches!(
                response,
                Response::Failed {
                    error: HelperError::NoCredentials,
                    ..
                }
            ),
            "{response:?}"
        );
    }
}

#[test]
fn unsupported_algorithm_is_a_device_error() {
    let (mut device, _soft) = simulated();
    let response = ops::handle(&mut device, &register(vec![-257], vec![]));
    assert!(
        matches!(
            response,
            Response::Failed {
                error: HelperError::Device,
                ..
            }
        ),
        "{response:?}"
    );
}
