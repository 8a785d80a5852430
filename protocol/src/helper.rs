//! The key-helper protocol. FIDO2 device I/O never runs in the PAM host
//! process: the caller starts a short-lived helper, writes one JSON request
//! on its stdin (then closes it), reads one JSON response from its stdout,
//! and kills it at the touch timeout. Byte strings are base64url without
//! padding. The caller verifies every answer itself; the helper is trusted
//! for nothing but carrying bytes to and from the authenticator.
//!
//! ```text
//! → {"op":"assert","rp_id":"pam://host","client_data_hash":"…","allow":["…"],"user_verification":"preferred"}
//! ← {"status":"asserted","credential_id":"…","authenticator_data":"…","signature":"…"}
//! ← {"status":"failed","error":"pin_required","message":"this key has a PIN"}
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// A request or response larger than this is refused unread.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Bytes on the wire as base64url.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({})", URL_SAFE_NO_PAD.encode(&self.0))
    }
}

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(&URL_SAFE_NO_PAD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let text = String::deserialize(de)?;
        URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .map(Bytes)
            .map_err(serde::de::Error::custom)
    }
}

/// A PIN on its way to the authenticator; zeroed on drop, never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pin(pub Zeroizing<String>);

impl Pin {
    /// What a person typed at a PIN prompt, if it can be a PIN at all:
    /// nothing typed, or bytes that are not text, are never sent to the key
    /// (a wrong PIN spends one of its few retries).
    pub fn from_typed(typed: &[u8]) -> Option<Pin> {
        match std::str::from_utf8(typed) {
            Ok(text) if !text.is_empty() => Some(Pin(Zeroizing::new(text.to_string()))),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(…)")
    }
}

/// Policy `[keys] user_verification`, as WebAuthn names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UserVerification {
    Discouraged,
    #[default]
    Preferred,
    Required,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Is an authenticator present, and does it have a PIN set?
    Probe,
    /// CTAP2 authenticatorMakeCredential, non-resident.
    Register(RegisterRequest),
    /// CTAP2 authenticatorGetAssertion.
    Assert(AssertRequest),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub rp_id: String,
    /// 32 bytes: the challenge the caller will find signed.
    pub client_data_hash: Bytes,
    pub user_id: Bytes,
    pub user_name: String,
    /// Credentials already enrolled; the authenticator refuses to make a second.
    pub exclude: Vec<Bytes>,
    /// COSE algorithm ids in order of preference: -7 ES256, -8 EdDSA.
    pub algorithms: Vec<i64>,
    pub user_verification: UserVerification,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<Pin>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertRequest {
    pub rp_id: String,
    /// 32 bytes of fresh randomness, signed with the authenticator data.
    pub client_data_hash: Bytes,
    /// Enrolled credential ids for this user.
    pub allow: Vec<Bytes>,
    pub user_verification: UserVerification,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<Pin>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case", deny_unknown_fields)]
pub enum Response {
    Present {
        pin_set: bool,
    },
    Registered {
        /// Authenticator data with attested credential data.
        authenticator_data: Bytes,
        /// Attestation statement format: "packed", "fido-u2f", "none", ...
        attestation_format: String,
        /// The attestation statement, CBOR-encoded as the authenticator sent it.
        attestation_statement: Bytes,
    },
    Asserted {
        credential_id: Bytes,
        authenticator_data: Bytes,
        signature: Bytes,
    },
    Failed {
        error: HelperError,
        message: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HelperError {
    /// No authenticator plugged in.
    NoDevice,
    /// The authenticator holds none of the allowed credentials.
    NoCredentials,
    /// A credential in the exclude list is on this authenticator.
    AlreadyEnrolled,
    /// The operation needs a PIN; ask the person and send it again.
    PinRequired,
    PinInvalid,
    PinBlocked,
    /// The person did not touch the key in time, or refused.
    NotConfirmed,
    /// Anything else the device or its stack reported.
    Device,
    /// The request itself was not understood.
    BadRequest,
}

/// A helper request or response that cannot be read. `what` names which.
#[derive(Debug)]
pub enum MessageError {
    TooLarge {
        what: &'static str,
        size: usize,
    },
    /// Not JSON of the message's shape; serde's text may quote a value.
    Invalid {
        what: &'static str,
        source: serde_json::Error,
    },
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageError::TooLarge { what, size } => {
                write!(
                    f,
                    "{what} is {size} bytes; at most {MAX_MESSAGE_BYTES} are read"
                )
            }
            MessageError::Invalid { what, source } => write!(f, "{what} is not valid: {source}"),
        }
    }
}

impl std::error::Error for MessageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MessageError::TooLarge { .. } => None,
            MessageError::Invalid { source, .. } => Some(source),
        }
    }
}

fn parse<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &'static str) -> Result<T, MessageError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLarge {
            what,
            size: bytes.len(),
        });
    }
    serde_json::from_slice(bytes).map_err(|source| MessageError::Invalid { what, source })
}

/// One message as one line of JSON.
fn line<T: Serialize>(message: &T) -> Vec<u8> {
    let mut line = serde_json::to_vec(message).unwrap_or_default();
    line.push(b'\n');
    line
}

impl Request {
    pub fn from_json(bytes: &[u8]) -> Result<Self, MessageError> {
        parse(bytes, "helper request")
    }

    pub fn to_json(&self) -> Vec<u8> {
        line(self)
    }
}

impl Response {
    pub fn from_json(bytes: &[u8]) -> Result<Self, MessageError> {
        parse(bytes, "helper response")
    }

    pub fn to_json(&self) -> Vec<u8> {
        line(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_wire_form() {
        let request = Request::Assert(AssertRequest {
            rp_id: "pam://host".into(),
            client_data_hash: Bytes(vec![1; 32]),
            allow: vec![Bytes(vec![0xfb, 0xff])],
            user_verification: UserVerification::Required,
            pin: None,
        });
        let wire = request.to_json();
        assert!(String::from_utf8_lossy(&wire).contains(r#""op":"assert""#));
        assert!(String::from_utf8_lossy(&wire).contains(r#""allow":["-_8"]"#));
        assert_eq!(Request::from_json(&wire).ok(), Some(request));

        let failed = Response::Failed {
            error: HelperError::PinRequired,
            message: "PIN".into(),
        };
        assert_eq!(Response::from_json(&failed.to_json()).ok(), Some(failed));
    }

    #[test]
    fn refuses_garbage_unknown_fields_and_oversize() {
        assert!(Response::from_json(b"hello").is_err());
        assert!(Response::from_json(br#"{"status":"present","pin_set":false,"extra":1}"#).is_err());
        assert!(Response::from_json(
            br#"{"status":"asserted","credential_id":"!!","authenticator_data":"","signature":""}"#
        )
        .is_err());
        assert!(matches!(
            Response::from_json(&vec![b' '; MAX_MESSAGE_BYTES + 1]),
            Err(MessageError::TooLarge { what: "helper response", size }) if size == MAX_MESSAGE_BYTES + 1
        ));
        assert!(matches!(
            Response::from_json(b"hello"),
            Err(MessageError::Invalid {
                what: "helper response",
                ..
            })
        ));
    }

    #[test]
    fn only_text_can_be_a_pin() {
        assert_eq!(
            Pin::from_typed(b"1234").map(|p| p.0.to_string()),
            Some("1234".into())
        );
        assert!(Pin::from_typed(b"").is_none());
        assert!(Pin::from_typed(&[0xff, 0x31]).is_none());
    }

    #[test]
    fn pin_never_shows_in_debug() {
        let pin = Pin(Zeroizing::new("123456".into()));
        assert!(!format!("{pin:?}").contains("123456"));
    }
}
