//! authenticatorData (WebAuthn §6.1), parsed strictly and without copying:
//!
//! ```text
//! rpIdHash 32 | flags 1 | signCount 4 (BE)
//! [ AAGUID 16 | credIdLen 2 (BE) | credId | COSE_Key ]   when flags has AT
//! [ extensions: a CBOR map ]                             when flags has ED
//! ```
//!
//! Every byte must belong to a field the flags announce: trailing bytes,
//! fields the flags promise but do not deliver, and oversize credential ids
//! are all refused. The COSE_Key is located but not interpreted here (see
//! `cose`), so its exact bytes can be stored as the authenticator sent them.

use super::cbor::{self, CborError};

pub const RP_ID_HASH_LEN: usize = 32;
pub const AAGUID_LEN: usize = 16;
/// WebAuthn §6.5.1: credential ids are at most 1023 bytes.
pub const MAX_CREDENTIAL_ID_LEN: usize = 1023;
/// rpIdHash, flags and signCount: what every authenticatorData holds.
pub const HEADER_LEN: usize = RP_ID_HASH_LEN + 1 + 4;

/// The flags byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags(pub u8);

impl Flags {
    pub const USER_PRESENT: u8 = 0x01;
    pub const USER_VERIFIED: u8 = 0x04;
    pub const BACKUP_ELIGIBLE: u8 = 0x08;
    pub const BACKED_UP: u8 = 0x10;
    pub const ATTESTED_CREDENTIAL: u8 = 0x40;
    pub const EXTENSIONS: u8 = 0x80;

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
    pub fn user_present(self) -> bool {
        self.has(Self::USER_PRESENT)
    }
    pub fn user_verified(self) -> bool {
        self.has(Self::USER_VERIFIED)
    }
    pub fn backup_eligible(self) -> bool {
        self.has(Self::BACKUP_ELIGIBLE)
    }
    pub fn backed_up(self) -> bool {
        self.has(Self::BACKED_UP)
    }
    pub fn attested_credential(self) -> bool {
        self.has(Self::ATTESTED_CREDENTIAL)
    }
    pub fn extensions(self) -> bool {
        self.has(Self::EXTENSIONS)
    }
}

/// The credential an authenticator reports when it makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttestedCredential<'a> {
    pub aaguid: [u8; AAGUID_LEN],
    pub credential_id: &'a [u8],
    /// The COSE_Key exactly as encoded: one well-formed CBOR map, not yet
    /// checked to be a key we accept.
    pub public_key: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthenticatorData<'a> {
    pub rp_id_hash: [u8; RP_ID_HASH_LEN],
    pub flags: Flags,
    pub sign_count: u32,
    pub attested_credential: Option<AttestedCredential<'a>>,
    /// The extensions map exactly as encoded; we request none, so it is
    /// only delimited, not read.
    pub extensions: Option<&'a [u8]>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthDataError {
    /// Shorter than its fixed fields.
    Truncated,
    /// The AT flag is set but no attested credential data follows.
    MissingAttestedCredential,
    /// The ED flag is set but no extensions follow.
    MissingExtensions,
    /// The credential id is longer than 1023 bytes.
    CredentialIdTooLong,
    /// The credential public key is not one well-formed CBOR map.
    MalformedPublicKey(CborError),
    /// The extensions are not one well-formed CBOR map.
    MalformedExtensions(CborError),
    /// Bytes left over that no flag accounts for.
    TrailingBytes,
}

impl std::fmt::Display for AuthDataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Truncated => f.write_str("authenticator data is cut short"),
            Self::MissingAttestedCredential => {
                f.write_str("authenticator data announces a credential but has none")
            }
            Self::MissingExtensions => {
                f.write_str("authenticator data announces extensions but has none")
            }
            Self::CredentialIdTooLong => f.write_str("credential id is longer than 1023 bytes"),
            Self::MalformedPublicKey(e) => write!(f, "credential public key: {e}"),
            Self::MalformedExtensions(e) => write!(f, "authenticator extensions: {e}"),
            Self::TrailingBytes => f.write_str("authenticator data has unexplained trailing bytes"),
        }
    }
}

impl std::error::Error for AuthDataError {}

impl<'a> AuthenticatorData<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, AuthDataError> {
        let mut input = Input(bytes);
        let rp_id_hash = input.array::<RP_ID_HASH_LEN>()?;
        let [flags] = input.array::<1>()?;
        let flags = Flags(flags);
        let sign_count = u32::from_be_bytes(input.array::<4>()?);

        let attested_credential = if flags.attested_credential() {
            if input.0.is_empty() {
                return Err(AuthDataError::MissingAttestedCredential);
            }
            Some(parse_attested_credential(&mut input)?)
        } else {
            None
        };

        let extensions = if flags.extensions() {
            if input.0.is_empty() {
                return Err(AuthDataError::MissingExtensions);
            }
            let len = cbor::map_len(input.0).map_err(AuthDataError::MalformedExtensions)?;
            Some(input.take(len)?)
        } else {
            None
        };

        if !input.0.is_empty() {
            return Err(AuthDataError::TrailingBytes);
        }
        Ok(Self {
            rp_id_hash,
            flags,
            sign_count,
            attested_credential,
            extensions,
        })
    }
}

fn parse_attested_credential<'a>(
    input: &mut Input<'a>,
) -> Result<AttestedCredential<'a>, AuthDataError> {
    let aaguid = input.array::<AAGUID_LEN>()?;
    let id_len = usize::from(u16::from_be_bytes(input.array::<2>()?));
    if id_len > MAX_CREDENTIAL_ID_LEN {
        return Err(AuthDataError::CredentialIdTooLong);
    }
    let credential_id = input.take(id_len)?;
    let key_len = cbor::map_len(input.0).map_err(AuthDataError::MalformedPublicKey)?;
    let public_key = input.take(key_len)?;
    Ok(AttestedCredential {
        aaguid,
        credential_id,
        public_key,
    })
}

/// The unread rest of the input.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], AuthDataError> {
        let (head, rest) = self
            .0
            .split_at_checked(len)
            .ok_or(AuthDataError::Truncated)?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], AuthDataError> {
        self.take(N)?
            .try_into()
            .map_err(|_| AuthDataError::Truncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::testkit::{auth_data, AuthDataSpec, TestKey};

    fn registration_bytes(extensions: Option<&[u8]>) -> (Vec<u8>, Vec<u8>) {
        let key = TestKey::es256();
        let cose = key.cose();
        let mut spec = AuthDataSpec::registration("pam://host", &[7; 20], &cose);
        spec.extensions = extensions;
        if extensions.is_some() {
            spec.flags |= Flags::EXTENSIONS;
        }
        (auth_data(&spec), cose)
    }

    #[test]
    fn parses_an_assertion() {
        let bytes = auth_data(&AuthDataSpec::assertion("pam://host", 0x0102_0304));
        let parsed = AuthenticatorData::parse(&bytes).unwrap();
        assert_eq!(parsed.sign_count, 0x0102_0304);
        assert!(parsed.flags.user_present());
        assert!(!parsed.flags.user_verified());
        assert_eq!(parsed.attested_credential, None);
        assert_eq!(parsed.extensions, None);
        assert_eq!(
            parsed.rp_id_hash,
            crate::keys::verify::rp_id_hash("pam://host")
        );
    }

    #[test]
    fn parses_attested_credential_and_finds_the_key_end() {
        let ext = [
            0xa1, 0x6b, b'c', b'r', b'e', b'd', b'P', b'r', b'o', b't', b'e', b'c', b't', 0x02,
        ];
        let (bytes, cose) = registration_bytes(Some(&ext));
        let parsed = AuthenticatorData::parse(&bytes).unwrap();
        let credential = parsed.attested_credential.unwrap();
        assert_eq!(credential.credential_id, &[7; 20]);
        assert_eq!(credential.public_key, &cose[..]);
        assert_eq!(credential.aaguid, crate::keys::testkit::AAGUID);
        assert_eq!(parsed.extensions, Some(&ext[..]));
    }

    #[test]
    fn every_truncation_is_refused() {
        for bytes in [
            registration_bytes(None).0,
            registration_bytes(Some(&[0xa0])).0,
            auth_data(&AuthDataSpec::assertion("pam://host", 1)),
        ] {
            assert!(AuthenticatorData::parse(&bytes).is_ok());
            for len in 0..bytes.len() {
                assert!(
                    AuthenticatorData::parse(&bytes[..len]).is_err(),
                    "accepted {len} of {} bytes",
                    bytes.len()
                );
            }
        }
    }

    #[test]
    fn trailing_bytes_are_refused() {
        for mut bytes in [
            registration_bytes(None).0,
            registration_bytes(Some(&[0xa0])).0,
            auth_data(&AuthDataSpec::assertion("pam://host", 1)),
        ] {
            bytes.push(0);
            let error = AuthenticatorData::parse(&bytes).unwrap_err();
            assert_eq!(error, AuthDataError::TrailingBytes);
        }
    }

    #[test]
    fn flags_must_match_what_follows() {
        // AT without data.
        let mut bytes = auth_data(&AuthDataSpec::assertion("pam://host", 1));
        bytes[32] |= Flags::ATTESTED_CREDENTIAL;
        assert_eq!(
            AuthenticatorData::parse(&bytes),
            Err(AuthDataError::MissingAttestedCredential)
        );
        // ED without data.
        bytes[32] = Flags::USER_PRESENT | Flags::EXTENSIONS;
        assert_eq!(
            AuthenticatorData::parse(&bytes),
            Err(AuthDataError::MissingExtensions)
        );
        // Attested data without AT.
        let (mut bytes, _) = registration_bytes(None);
        bytes[32] &= !Flags::ATTESTED_CREDENTIAL;
        assert_eq!(
            AuthenticatorData::parse(&bytes),
            Err(AuthDataError::TrailingBytes)
        );
        // ... and with ED instead: the credential is not an extensions map.
        bytes[32] |= Flags::EXTENSIONS;
        assert!(matches!(
            AuthenticatorData::parse(&bytes),
            Err(AuthDataError::MalformedExtensions(_))
        ));
        // Extensions without ED.
        let (mut bytes, _) = registration_bytes(Some(&[0xa0]));
        bytes[32] &= !Flags::EXTENSIONS;
        assert_eq!(
            AuthenticatorData::parse(&bytes),
            Err(AuthDataError::TrailingBytes)
        );
    }

    #[test]
    fn credential_id_length_is_bounded() {
        let key = TestKey::eddsa();
        let cose = key.cose();
        let longest = vec![1; MAX_CREDENTIAL_ID_LEN];
        let bytes = auth_data(&AuthDataSpec::registration("pam://host", &longest, &cose));
        let parsed = AuthenticatorData::parse(&bytes).unwrap();
        assert_eq!(
            parsed.attested_credential.unwrap().credential_id.len(),
            1023
        );

        let too_long = vec![1; MAX_CREDENTIAL_ID_LEN + 1];
        let bytes = auth_data(&AuthDataSpec::registration("pam://host", &too_long, &cose));
        assert_eq!(
            AuthenticatorData::parse(&bytes),
            Err(AuthDataError::CredentialIdTooLong)
        );
        // A length field of 0xffff with almost nothing behind it.
        let mut bytes = auth_data(&AuthDataSpec::assertion("pam://host", 1));
        bytes[32] |= Flags::ATTESTED_CREDENTIAL;
        bytes.extend_from_slice(&[0; 16]);
        bytes.extend_from_slice(&[0xff, 0xff, 0]);
        assert_eq!(
            AuthenticatorData::parse(&bytes),
            Err(AuthDataError::CredentialIdTooLong)
        );
    }

    #[test]
    fn credential_key_must_be_a_well_formed_map() {
        for (key, error) in [
            (&[0x80][..], CborError::NotAMap),
            (&[0xa1, 0x01][..], CborError::Truncated),
            (&[0xbf, 0xff][..], CborError::IndefiniteLength),
            (&[0xa1, 0x01, 0xc1, 0x00][..], CborError::Tagged),
        ] {
            let bytes = auth_data(&AuthDataSpec::registration("pam://host", &[1; 16], key));
            assert_eq!(
                AuthenticatorData::parse(&bytes),
                Err(AuthDataError::MalformedPublicKey(error)),
                "{key:02x?}"
            );
        }
    }

    #[test]
    fn errors_have_messages() {
        let text = AuthDataError::MalformedPublicKey(CborError::Truncated).to_string();
        assert_eq!(text, "credential public key: CBOR item is cut short");
    }
}
