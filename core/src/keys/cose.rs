//! A credential's COSE_Key (RFC 9052/9053) turned into a key we can verify
//! with. Exactly two kinds are accepted, each in its one consistent shape:
//!
//! * ES256: kty EC2 (2), crv P-256 (1), alg -7, x and y of 32 bytes each;
//! * EdDSA: kty OKP (1), crv Ed25519 (6), alg -8, x of 32 bytes.
//!
//! WebAuthn requires `alg` in a credential key, so a key without it is
//! refused, as is any mix of the two shapes, a compressed point, a point
//! off the curve, a small-order Ed25519 point, or a key carrying its
//! private part.

use coset::cbor::value::Value;
use coset::iana::{self, EnumI64};
use coset::{CborSerializable, CoseKey, KeyType, Label, RegisteredLabelWithPrivate};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};

use super::cbor::{self, CborError};

/// A stored COSE key longer than this is refused unread; real ones are
/// under 100 bytes.
pub const MAX_COSE_KEY_LEN: usize = 1024;

/// The signature algorithms we accept, by their COSE names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA over P-256 with SHA-256; signatures are ASN.1 DER.
    Es256,
    /// Ed25519; signatures are 64 raw bytes.
    EdDsa,
}

impl Algorithm {
    pub const ES256_ID: i64 = -7;
    pub const EDDSA_ID: i64 = -8;

    pub fn cose_id(self) -> i64 {
        match self {
            Self::Es256 => Self::ES256_ID,
            Self::EdDsa => Self::EDDSA_ID,
        }
    }

    pub fn from_cose_id(id: i64) -> Option<Self> {
        match id {
            Self::ES256_ID => Some(Self::Es256),
            Self::EDDSA_ID => Some(Self::EdDsa),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// Longer than [`MAX_COSE_KEY_LEN`].
    TooLong,
    /// Not one well-formed CBOR map, or bytes after it.
    NotCbor(CborError),
    /// CBOR, but not a COSE_Key (wrong value types, duplicate labels, ...).
    NotCoseKey,
    /// The key does not name its algorithm.
    MissingAlgorithm,
    /// An algorithm other than ES256 (-7) or EdDSA (-8).
    UnsupportedAlgorithm,
    /// kty, crv and alg do not describe one of the two accepted shapes.
    InconsistentParameters,
    /// A coordinate is missing, of the wrong type or length.
    BadCoordinate,
    /// The key includes a private part (`d`).
    PrivateKeyIncluded,
    /// The point is not a valid public key on the curve.
    InvalidPoint,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLong => write!(f, "key is longer than {MAX_COSE_KEY_LEN} bytes"),
            Self::NotCbor(e) => write!(f, "key is not CBOR: {e}"),
            Self::NotCoseKey => f.write_str("key is not a COSE key"),
            Self::MissingAlgorithm => f.write_str("key does not name its algorithm"),
            Self::UnsupportedAlgorithm => f.write_str("key algorithm is not ES256 or EdDSA"),
            Self::InconsistentParameters => {
                f.write_str("key type, curve and algorithm do not match")
            }
            Self::BadCoordinate => f.write_str("key coordinates are missing or malformed"),
            Self::PrivateKeyIncluded => f.write_str("key includes private key material"),
            Self::InvalidPoint => f.write_str("key is not a valid point on its curve"),
        }
    }
}

impl std::error::Error for KeyError {}

/// Why a signature was not accepted. Deliberately uninformative beyond
/// "malformed" versus "does not verify".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureError {
    Malformed,
    Mismatch,
}

/// A public key ready to verify signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialKey {
    Es256(p256::ecdsa::VerifyingKey),
    EdDsa(ed25519_dalek::VerifyingKey),
}

impl CredentialKey {
    /// Parses a COSE_Key; the whole input must be that one key.
    pub fn from_cose(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() > MAX_COSE_KEY_LEN {
            return Err(KeyError::TooLong);
        }
        // Our own walk first: it bounds every length coset will see.
        let len = cbor::map_len(bytes).map_err(KeyError::NotCbor)?;
        if len != bytes.len() {
            return Err(KeyError::NotCbor(CborError::NotWellFormed));
        }
        let key = CoseKey::from_slice(bytes).map_err(|_| KeyError::NotCoseKey)?;

        let algorithm = match &key.alg {
            None => return Err(KeyError::MissingAlgorithm),
            Some(RegisteredLabelWithPrivate::Assigned(alg)) => {
                Algorithm::from_cose_id(alg.to_i64()).ok_or(KeyError::UnsupportedAlgorithm)?
            }
            Some(_) => return Err(KeyError::UnsupportedAlgorithm),
        };
        if param(&key, iana::OkpKeyParameter::D.to_i64()).is_some() {
            return Err(KeyError::PrivateKeyIncluded);
        }
        match algorithm {
            Algorithm::Es256 => es256_key(&key).map(Self::Es256),
            Algorithm::EdDsa => eddsa_key(&key).map(Self::EdDsa),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Es256(_) => Algorithm::Es256,
            Self::EdDsa(_) => Algorithm::EdDsa,
        }
    }

    /// Verifies `signature` over `message` (ES256: DER, hashed with
    /// SHA-256 here; EdDSA: 64 bytes, strict RFC 8032 checks).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        match self {
            Self::Es256(key) => {
                // The DER is checked here (r and s in range), so that a
                // malformed signature is told apart from a wrong one.
                p256::ecdsa::Signature::from_der(signature)
                    .map_err(|_| SignatureError::Malformed)?;
                // ring's P-256 arithmetic is assembly: ~8x faster than the
                // p256 crate's at every key sign-in, on the same point
                // (checked on the curve when the key was read) and DER.
                let point = key.to_encoded_point(false);
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point.as_bytes())
                    .verify(message, signature)
                    .map_err(|_| SignatureError::Mismatch)
            }
            Self::EdDsa(key) => {
                let signature = ed25519_dalek::Signature::from_slice(signature)
                    .map_err(|_| SignatureError::Malformed)?;
                key.verify_strict(message, &signature)
                    .map_err(|_| SignatureError::Mismatch)
            }
        }
    }

    /// The uncompressed SEC1 point (0x04 || x || y) of an ES256 key, as
    /// FIDO U2F signs it.
    pub fn sec1_uncompressed(&self) -> Option<[u8; 65]> {
        match self {
            Self::Es256(key) => key.to_encoded_point(false).as_bytes().try_into().ok(),
            Self::EdDsa(_) => None,
        }
    }
}

fn es256_key(key: &CoseKey) -> Result<p256::ecdsa::VerifyingKey, KeyError> {
    if key.kty != KeyType::Assigned(iana::KeyType::EC2)
        || curve(key) != Some(iana::EllipticCurve::P_256.to_i64())
    {
        return Err(KeyError::InconsistentParameters);
    }
    let x = coordinate(key, iana::Ec2KeyParameter::X.to_i64())?;
    // A boolean y would be a compressed point; CTAP2 always sends both.
    let y = coordinate(key, iana::Ec2KeyParameter::Y.to_i64())?;
    let mut sec1 = [0u8; 65];
    sec1[0] = 0x04;
    sec1[1..33].copy_from_slice(&x);
    sec1[33..].copy_from_slice(&y);
    // Refuses the identity and points off the curve.
    p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| KeyError::InvalidPoint)
}

fn eddsa_key(key: &CoseKey) -> Result<ed25519_dalek::VerifyingKey, KeyError> {
    if key.kty != KeyType::Assigned(iana::KeyType::OKP)
        || curve(key) != Some(iana::EllipticCurve::Ed25519.to_i64())
    {
        return Err(KeyError::InconsistentParameters);
    }
    // OKP keys have no y; one that claims one is not an Ed25519 key.
    if param(key, iana::Ec2KeyParameter::Y.to_i64()).is_some() {
        return Err(KeyError::InconsistentParameters);
    }
    let x = coordinate(key, iana::OkpKeyParameter::X.to_i64())?;
    let verifying_key =
        ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| KeyError::InvalidPoint)?;
    // Small-order points would let one signature verify for many messages.
    if verifying_key.is_weak() {
        return Err(KeyError::InvalidPoint);
    }
    Ok(verifying_key)
}

fn param(key: &CoseKey, label: i64) -> Option<&Value> {
    key.params
        .iter()
        .find(|(l, _)| *l == Label::Int(label))
        .map(|(_, value)| value)
}

fn curve(key: &CoseKey) -> Option<i64> {
    let crv = param(key, iana::Ec2KeyParameter::Crv.to_i64())?;
    crv.as_integer().and_then(|i| i64::try_from(i).ok())
}

fn coordinate(key: &CoseKey, label: i64) -> Result<[u8; 32], KeyError> {
    param(key, label)
        .and_then(Value::as_bytes)
        .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        .ok_or(KeyError::BadCoordinate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::testkit::{cose_ec2, cose_okp, TestKey};

    #[test]
    fn accepts_es256_and_eddsa_keys() {
        for key in [TestKey::es256(), TestKey::eddsa()] {
            let parsed = CredentialKey::from_cose(&key.cose()).unwrap();
            assert_eq!(parsed.algorithm(), key.algorithm());
            let signature = key.sign(b"message");
            assert_eq!(parsed.verify(b"message", &signature), Ok(()));
            assert_eq!(
                parsed.verify(b"messagf", &signature),
                Err(SignatureError::Mismatch)
            );
        }
    }

    #[test]
    fn signatures_of_the_wrong_shape_are_malformed() {
        let es256 = CredentialKey::from_cose(&TestKey::es256().cose()).unwrap();
        let eddsa = CredentialKey::from_cose(&TestKey::eddsa().cose()).unwrap();
        assert_eq!(es256.verify(b"m", &[]), Err(SignatureError::Malformed));
        assert_eq!(es256.verify(b"m", &[0; 64]), Err(SignatureError::Malformed));
        assert_eq!(eddsa.verify(b"m", &[0; 63]), Err(SignatureError::Malformed));
        assert_eq!(eddsa.verify(b"m", &[0; 65]), Err(SignatureError::Malformed));
        // An ES256 signature handed to an Ed25519 key and the reverse.
        let der = TestKey::es256().sign(b"m");
        assert!(eddsa.verify(b"m", &der).is_err());
        assert!(es256.verify(b"m", &TestKey::eddsa().sign(b"m")).is_err());
    }

    /// ring (sign-in) and the p256 crate (which verified before) agree on
    /// right signatures, wrong ones, and the high-S twin of a right one
    /// (ECDSA's malleability: both accept it, as WebAuthn does).
    #[test]
    fn es256_verification_agrees_with_the_p256_crate() {
        use p256::ecdsa::signature::Verifier as _;
        for round in 0..40u8 {
            let key = TestKey::es256();
            let parsed = CredentialKey::from_cose(&key.cose()).unwrap();
            let CredentialKey::Es256(p256_key) = &parsed else {
                panic!("not ES256")
            };
            let message = [round; 37];
            let der = key.sign(&message);
            let signature = p256::ecdsa::Signature::from_der(&der).unwrap();
            let (r, s) = signature.split_scalars();
            let high_s = p256::ecdsa::Signature::from_scalars(r, -*s).unwrap();
            let mut other = message;
            other[round as usize % 37] ^= 1;
            for (message, der, sig) in [
                (&message, der.clone(), signature),
                (&message, high_s.to_der().as_bytes().to_vec(), high_s),
                (&other, der.clone(), signature),
            ] {
                let old = p256_key.verify(message, &sig).is_ok();
                assert_eq!(parsed.verify(message, &der).is_ok(), old, "round {round}");
            }
            assert_eq!(parsed.verify(&message, &der), Ok(()));
            assert_eq!(parsed.verify(&other, &der), Err(SignatureError::Mismatch));
        }
    }

    #[test]
    fn algorithm_ids_round_trip() {
        for alg in [Algorithm::Es256, Algorithm::EdDsa] {
            assert_eq!(Algorithm::from_cose_id(alg.cose_id()), Some(alg));
        }
        assert_eq!(Algorithm::from_cose_id(-257), None);
        assert_eq!(Algorithm::EdDsa.to_string(), "EdDSA");
    }

    fn refused(bytes: &[u8]) -> KeyError {
        CredentialKey::from_cose(bytes).unwrap_err()
    }

    #[test]
    fn refuses_wrong_and_mismatched_algorithms() {
        let ec = TestKey::es256();
        let (x, y) = ec.ec_coordinates();
        let okp = TestKey::eddsa().ed_public();
        // ES384, RS256, no alg, a text alg.
        assert_eq!(
            refused(&cose_ec2(2, Some(-35), 1, &x, &y)),
            KeyError::UnsupportedAlgorithm
        );
        assert_eq!(
            refused(&cose_ec2(2, Some(-257), 1, &x, &y)),
            KeyError::UnsupportedAlgorithm
        );
        assert_eq!(
            refused(&cose_ec2(2, None, 1, &x, &y)),
            KeyError::MissingAlgorithm
        );
        // EC2 key claiming EdDSA, OKP key claiming ES256, wrong curves.
        assert_eq!(
            refused(&cose_ec2(2, Some(-8), 1, &x, &y)),
            KeyError::InconsistentParameters
        );
        assert_eq!(
            refused(&cose_okp(1, Some(-7), 6, &okp)),
            KeyError::InconsistentParameters
        );
        assert_eq!(
            refused(&cose_ec2(2, Some(-7), 2, &x, &y)),
            KeyError::InconsistentParameters
        );
        assert_eq!(
            refused(&cose_ec2(2, Some(-7), 8, &x, &y)),
            KeyError::InconsistentParameters
        );
        assert_eq!(
            refused(&cose_okp(1, Some(-8), 4, &okp)),
            KeyError::InconsistentParameters
        );
        assert_eq!(
            refused(&cose_okp(2, Some(-8), 6, &okp)),
            KeyError::InconsistentParameters
        );
        assert_eq!(
            refused(&cose_ec2(1, Some(-7), 1, &x, &y)),
            KeyError::InconsistentParameters
        );
        // OKP key with a y coordinate.
        assert_eq!(
            refused(&cose_ec2(1, Some(-8), 6, &okp, &y)),
            KeyError::InconsistentParameters
        );
    }

    #[test]
    fn refuses_points_off_the_curve_and_weak_points() {
        let (x, mut y) = TestKey::es256().ec_coordinates();
        y[31] ^= 1;
        assert_eq!(
            refused(&cose_ec2(2, Some(-7), 1, &x, &y)),
            KeyError::InvalidPoint
        );
        assert_eq!(
            refused(&cose_ec2(2, Some(-7), 1, &[0; 32], &[0; 32])),
            KeyError::InvalidPoint
        );
        // The Ed25519 identity (small order) and a y with no point.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            refused(&cose_okp(1, Some(-8), 6, &identity)),
            KeyError::InvalidPoint
        );
        let mut no_point = [0u8; 32];
        no_point[0] = 2;
        assert_eq!(
            refused(&cose_okp(1, Some(-8), 6, &no_point)),
            KeyError::InvalidPoint
        );
    }

    #[test]
    fn refuses_malformed_keys() {
        let key = TestKey::es256().cose();
        assert_eq!(refused(&[]), KeyError::NotCbor(CborError::Truncated));
        assert_eq!(refused(&[0x80]), KeyError::NotCbor(CborError::NotAMap));
        for len in 0..key.len() {
            assert!(CredentialKey::from_cose(&key[..len]).is_err(), "{len}");
        }
        let mut trailing = key.clone();
        trailing.push(0);
        assert!(matches!(refused(&trailing), KeyError::NotCbor(_)));
        assert_eq!(refused(&vec![0; MAX_COSE_KEY_LEN + 1]), KeyError::TooLong);
        // A short coordinate, a coordinate of the wrong type, a compressed y.
        let (x, y) = TestKey::es256().ec_coordinates();
        assert_eq!(
            refused(&cose_ec2(2, Some(-7), 1, &x[..31], &y)),
            KeyError::BadCoordinate
        );
        let mut text_x = cose_ec2(2, Some(-7), 1, &x, &y);
        let at = text_x.iter().position(|b| *b == 0x58).unwrap();
        text_x[at] = 0x78; // byte string → text string of the same length
        assert!(CredentialKey::from_cose(&text_x).is_err());
        let mut compressed = cose_ec2(2, Some(-7), 1, &x, &[]);
        compressed.pop(); // the empty byte string's header
        compressed.push(0xf5); // y: true, a compressed point
        assert_eq!(refused(&compressed), KeyError::BadCoordinate);
        // Duplicate labels (kty twice).
        let mut duplicate = cose_okp(1, Some(-8), 6, &TestKey::eddsa().ed_public());
        duplicate[0] += 1;
        duplicate.extend_from_slice(&[0x01, 0x01]);
        assert_eq!(refused(&duplicate), KeyError::NotCoseKey);
    }

    #[test]
    fn refuses_a_key_with_its_private_part() {
        let mut key = cose_okp(1, Some(-8), 6, &TestKey::eddsa().ed_public());
        key[0] += 1;
        key.extend_from_slice(&[0x23, 0x58, 0x20]);
        key.extend_from_slice(&[9; 32]);
        assert_eq!(refused(&key), KeyError::PrivateKeyIncluded);
    }

    #[test]
    fn u2f_point_is_the_uncompressed_sec1_encoding() {
        let key = TestKey::es256();
        let (x, y) = key.ec_coordinates();
        let parsed = CredentialKey::from_cose(&key.cose()).unwrap();
        let point = parsed.sec1_uncompressed().unwrap();
        assert_eq!(point[0], 4);
        assert_eq!(&point[1..33], &x);
        assert_eq!(&point[33..], &y);
        let eddsa = CredentialKey::from_cose(&TestKey::eddsa().cose()).unwrap();
        assert_eq!(eddsa.sec1_uncompressed(), None);
    }
}
