//! From a helper request to CTAP2 commands and back: what to send, how the
//! user is verified, and what each authenticator status means for the
//! caller. Device access is behind [`Device`], so all of this is tested
//! without hardware.

use ciborium::Value;
use tap_core::keys::protocol::{
    AssertRequest, Bytes, HelperError, RegisterRequest, Request, Response, UserVerification,
};

use crate::ctaphid::TransportError;

pub const CMD_MAKE_CREDENTIAL: u8 = 0x01;
pub const CMD_GET_ASSERTION: u8 = 0x02;
pub const CMD_GET_INFO: u8 = 0x04;

/// What the operations need from an authenticator.
pub trait Device {
    /// Send a CTAP2 command; the response's CBOR or the failure.
    fn command(&mut self, command: u8, cbor: &[u8]) -> Result<Vec<u8>, TransportError>;
    /// pinUvAuthParam over `client_data_hash` with a PIN token, and the
    /// PIN/UV auth protocol it belongs to.
    fn pin_auth(
        &mut self,
        pin: &str,
        client_data_hash: &[u8],
        protocols: &[u64],
    ) -> Result<PinAuth, TransportError>;
}

/// The parts of authenticatorGetInfo that matter here.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Info {
    /// options.clientPin: None = no PIN support, Some(false) = not set.
    pub client_pin: Option<bool>,
    /// options.uv: built-in user verification configured.
    pub built_in_uv: bool,
    /// pinUvAuthProtocols, in the authenticator's order of preference.
    pub pin_protocols: Vec<u64>,
}

impl Info {
    pub fn pin_set(&self) -> bool {
        self.client_pin == Some(true)
    }
}

pub fn failed(error: HelperError, message: impl Into<String>) -> Response {
    Response::Failed {
        error,
        message: message.into(),
    }
}

pub fn handle(device: &mut dyn Device, request: &Request) -> Response {
    let result = match request {
        Request::Probe => get_info(device).map(|info| Response::Present {
            pin_set: info.pin_set(),
        }),
        Request::Register(register) => self::register(device, register),
        Request::Assert(assert) => self::assert(device, assert),
    };
    result.unwrap_or_else(|response| response)
}

fn get_info(device: &mut dyn Device) -> Result<Info, Response> {
    let cbor = device
        .command(CMD_GET_INFO, &[])
        .map_err(|e| from_transport(&e))?;
    parse_info(&cbor).map_err(|why| failed(HelperError::Device, why.to_string()))
}

pub fn parse_info(cbor: &[u8]) -> Result<Info, AnswerError> {
    const WHAT: &str = "getInfo";
    let value: Value = ciborium::from_reader(cbor)
        .map_err(|source| AnswerError::NotCbor { what: WHAT, source })?;
    let map = value.as_map().ok_or(AnswerError::NotAMap(WHAT))?;
    let mut info = Info::default();
    for (key, value) in map {
        match key.as_integer().and_then(|k| i64::try_from(k).ok()) {
            Some(0x04) => {
                for (name, on) in value.as_map().into_iter().flatten() {
                    match (name.as_text(), on.as_bool()) {
                        (Some("clientPin"), Some(on)) => info.client_pin = Some(on),
                        (Some("uv"), Some(on)) => info.built_in_uv = on,
                        _ => {}
                    }
                }
            }
            Some(0x06) => {
                info.pin_protocols = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p.as_integer().and_then(|p| u64::try_from(p).ok()))
                    .collect();
            }
            _ => {}
        }
    }
    Ok(info)
}

/// How this operation verifies the user.
#[derive(Debug, PartialEq, Eq)]
pub enum Verification<'a> {
    /// No UV asked of the authenticator: presence only (a key with a PIN
    /// may still insist; its answer is mapped then).
    None,
    /// The "uv" option: built-in verification (fingerprint).
    BuiltIn,
    /// pinUvAuthParam from the client PIN.
    Pin(&'a str),
}

/// Decide how to verify the user, before touching the authenticator for
/// the operation itself.
pub fn plan<'a>(
    info: &Info,
    wanted: UserVerification,
    pin: Option<&'a str>,
) -> Result<Verification<'a>, Response> {
    if let Some(pin) = pin {
        if info.pin_set() {
            return Ok(Verification::Pin(pin));
        }
        // A PIN for a key without one: fall through to what it can do.
    }
    match wanted {
        UserVerification::Discouraged => Ok(Verification::None),
        UserVerification::Preferred if info.built_in_uv => Ok(Verification::BuiltIn),
        UserVerification::Preferred => Ok(Verification::None),
        UserVerification::Required if info.built_in_uv => Ok(Verification::BuiltIn),
        UserVerification::Required if info.pin_set() => Err(failed(
            HelperError::PinRequired,
            "this security key has a PIN",
        )),
        UserVerification::Required => Err(failed(
            HelperError::Device,
            "this security key cannot verify you: it has no PIN and no built-in verification \
             (set a PIN on it first)",
        )),
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn int(i: i64) -> Value {
    Value::Integer(i.into())
}

fn descriptor(id: &Bytes) -> Value {
    // Canonical CTAP2 order: shorter keys first ("id" < "type").
    Value::Map(vec![
        (text("id"), Value::Bytes(id.0.clone())),
        (text("type"), text("public-key")),
    ])
}

fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = ciborium::into_writer(value, &mut out);
    out
}

/// pinUvAuthParam and the PIN/UV auth protocol it was made with.
pub type PinAuth = (Vec<u8>, u64);

/// Options map and PIN parameters for a command.
fn verification_params(
    device: &mut dyn Device,
    info: &Info,
    verification: &Verification<'_>,
    client_data_hash: &[u8],
) -> Result<(Option<Value>, Option<PinAuth>), Response> {
    match verification {
        Verification::None => Ok((None, None)),
        Verification::BuiltIn => Ok((
            Some(Value::Map(vec![(text("uv"), Value::Bool(true))])),
            None,
        )),
        Verification::Pin(pin) => {
            let auth = device
                .pin_auth(pin, client_data_hash, &info.pin_protocols)
                .map_err(|e| from_transport(&e))?;
            Ok((None, Some(auth)))
        }
    }
}

/// The authenticatorMakeCredential parameters (CTAP 2.x §6.1), canonical.
pub fn make_credential_cbor(
    request: &RegisterRequest,
    options: Option<Value>,
    pin_auth: Option<PinAuth>,
) -> Vec<u8> {
    let mut map = vec![
        (int(1), Value::Bytes(request.client_data_hash.0.clone())),
        (
            int(2),
            Value::Map(vec![
                (text("id"), text(&request.rp_id)),
                (text("name"), text(&request.rp_id)),
            ]),
        ),
        (
            int(3),
            Value::Map(vec![
                (text("id"), Value::Bytes(request.user_id.0.clone())),
                (text("name"), text(&request.user_name)),
                (text("displayName"), text(&request.user_name)),
            ]),
        ),
        (
            int(4),
            Value::Array(
                request
                    .algorithms
                    .iter()
                    .map(|alg| {
                        Value::Map(vec![
                            (text("alg"), int(*alg)),
                            (text("type"), text("public-key")),
                        ])
                    })
                    .collect(),
            ),
        ),
    ];
    if !request.exclude.is_empty() {
        map.push((
            int(5),
            Value::Array(request.exclude.iter().map(descriptor).collect()),
        ));
    }
    if let Some(options) = options {
        map.push((int(7), options));
    }
    if let Some((param, protocol)) = pin_auth {
        map.push((int(8), Value::Bytes(param)));
        map.push((int(9), Value::Integer(protocol.into())));
    }
    encode(&Value::Map(map))
}

/// The authenticatorGetAssertion parameters (CTAP 2.x §6.2), canonical.
pub fn get_assertion_cbor(
    request: &AssertRequest,
    options: Option<Value>,
    pin_auth: Option<PinAuth>,
) -> Vec<u8> {
    let mut map = vec![
        (int(1), text(&request.rp_id)),
        (int(2), Value::Bytes(request.client_data_hash.0.clone())),
        (
            int(3),
            Value::Array(request.allow.iter().map(descriptor).collect()),
        ),
    ];
    if let Some(options) = options {
        map.push((int(5), options));
    }
    if let Some((param, protocol)) = pin_auth {
        map.push((int(6), Value::Bytes(param)));
        map.push((int(7), Value::Integer(protocol.into())));
    }
    encode(&Value::Map(map))
}

fn register(device: &mut dyn Device, request: &RegisterRequest) -> Result<Response, Response> {
    if request.client_data_hash.0.len() != 32 {
        return Err(failed(
            HelperError::BadRequest,
            "client_data_hash must be 32 bytes",
        ));
    }
    let info = get_info(device)?;
    let pin = request.pin.as_ref().map(|p| p.0.as_str());
    let verification = plan(&info, request.user_verification, pin)?;
    let (options, pin_auth) =
        verification_params(device, &info, &verification, &request.client_data_hash.0)?;
    let cbor = make_credential_cbor(request, options, pin_auth);
    let answer = device
        .command(CMD_MAKE_CREDENTIAL, &cbor)
        .map_err(|e| from_transport(&e))?;
    parse_attestation(&answer).map_err(|why| failed(HelperError::Device, why.to_string()))
}

fn assert(device: &mut dyn Device, request: &AssertRequest) -> Result<Response, Response> {
    if request.client_data_hash.0.len() != 32 {
        return Err(failed(
            HelperError::BadRequest,
            "client_data_hash must be 32 bytes",
        ));
    }
    if request.allow.is_empty() {
        // Non-resident credentials only: without ids there is nothing to find.
        return Err(failed(
            HelperError::NoCredentials,
            "no credential ids to look for",
        ));
    }
    let info = get_info(device)?;
    let pin = request.pin.as_ref().map(|p| p.0.as_str());
    let verification = plan(&info, request.user_verification, pin)?;
    let (options, pin_auth) =
        verification_params(device, &info, &verification, &request.client_data_hash.0)?;
    let cbor = get_assertion_cbor(request, options, pin_auth);
    let answer = device
        .command(CMD_GET_ASSERTION, &cbor)
        .map_err(|e| from_transport(&e))?;
    parse_assertion(&answer, &request.allow)
        .map_err(|why| failed(HelperError::Device, why.to_string()))
}

/// An authenticator's answer that cannot be passed on. `what` names it.
#[derive(Debug)]
pub enum AnswerError {
    NotCbor {
        what: &'static str,
        source: ciborium::de::Error<std::io::Error>,
    },
    NotAMap(&'static str),
    /// Members it must have are missing.
    Lacks {
        what: &'static str,
        members: &'static str,
    },
    /// A getAssertion answer without a credential, for several allowed ids.
    NoCredential,
}

impl std::fmt::Display for AnswerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnswerError::NotCbor { what, source } => write!(f, "{what} is not CBOR: {source}"),
            AnswerError::NotAMap(what) => write!(f, "{what} is not a map"),
            AnswerError::Lacks { what, members } => write!(f, "{what} lacks {members}"),
            AnswerError::NoCredential => f.write_str("getAssertion response names no credential"),
        }
    }
}

impl std::error::Error for AnswerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AnswerError::NotCbor { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn entries(cbor: &[u8], what: &'static str) -> Result<Vec<(i64, Value)>, AnswerError> {
    let value: Value =
        ciborium::from_reader(cbor).map_err(|source| AnswerError::NotCbor { what, source })?;
    let Value::Map(map) = value else {
        return Err(AnswerError::NotAMap(what));
    };
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| Some((k.as_integer().and_then(|k| i64::try_from(k).ok())?, v)))
        .collect())
}

/// makeCredential response: fmt (1), authData (2), attStmt (3), passed on
/// as they came (attStmt re-encoded; CTAP2 CBOR is canonical, so the bytes
/// are the authenticator's).
pub fn parse_attestation(cbor: &[u8]) -> Result<Response, AnswerError> {
    let mut format = None;
    let mut auth_data = None;
    let mut statement = None;
    for (key, value) in entries(cbor, "makeCredential response")? {
        match (key, value) {
            (1, Value::Text(fmt)) => format = Some(fmt),
            (2, Value::Bytes(data)) => auth_data = Some(data),
            (3, value @ Value::Map(_)) => statement = Some(encode(&value)),
            _ => {}
        }
    }
    match (format, auth_data, statement) {
        (Some(format), Some(auth_data), Some(statement)) => Ok(Response::Registered {
            authenticator_data: Bytes(auth_data),
            attestation_format: format,
            attestation_statement: Bytes(statement),
        }),
        _ => Err(AnswerError::Lacks {
            what: "makeCredential response",
            members: "fmt, authData or attStmt",
        }),
    }
}

/// getAssertion response: credential (1; may be left out when the allow
/// list had one id), authData (2), signature (3).
pub fn parse_assertion(cbor: &[u8], allow: &[Bytes]) -> Result<Response, AnswerError> {
    let mut credential = None;
    let mut auth_data = None;
    let mut signature = None;
    for (key, value) in entries(cbor, "getAssertion response")? {
        match (key, value) {
            (1, Value::Map(descriptor)) => {
                for (name, id) in descriptor {
                    if let (Some("id"), Value::Bytes(id)) = (name.as_text(), id) {
                        credential = Some(id);
                    }
                }
            }
            (2, Value::Bytes(data)) => auth_data = Some(data),
            (3, Value::Bytes(sig)) => signature = Some(sig),
            _ => {}
        }
    }
    let credential = match (credential, allow) {
        (Some(id), _) => id,
        (None, [only]) => only.0.clone(),
        (None, _) => return Err(AnswerError::NoCredential),
    };
    match (auth_data, signature) {
        (Some(auth_data), Some(signature)) => Ok(Response::Asserted {
            credential_id: Bytes(credential),
            authenticator_data: Bytes(auth_data),
            signature: Bytes(signature),
        }),
        _ => Err(AnswerError::Lacks {
            what: "getAssertion response",
            members: "authData or signature",
        }),
    }
}

/// CTAP2 status codes (CTAP 2.1 §8.2) as the caller needs them.
pub fn from_status(status: u8) -> Response {
    use HelperError::*;
    let (error, message) = match status {
        0x19 => (AlreadyEnrolled, "this security key is already enrolled"),
        0x2e => (
            NoCredentials,
            "this security key holds none of your credentials",
        ),
        0x36 => (PinRequired, "this security key wants its PIN"),
        0x31 => (PinInvalid, "wrong PIN"),
        0x33 => (PinInvalid, "the PIN was not accepted"),
        0x32 => (
            PinBlocked,
            "the PIN is blocked: too many wrong PINs (reset the key)",
        ),
        0x34 => (
            PinBlocked,
            "too many wrong PINs: unplug the key and plug it in again",
        ),
        0x3c => (PinRequired, "built-in verification is blocked; use the PIN"),
        0x27 => (NotConfirmed, "the security key refused the operation"),
        0x2f | 0x3a => (NotConfirmed, "the security key was not touched in time"),
        0x2d => (NotConfirmed, "the operation was cancelled"),
        0x3f => (NotConfirmed, "built-in verification failed; try again"),
        0x35 => (Device, "this security key has no PIN set"),
        0x26 => (
            Device,
            "this security key supports none of the requested algorithms",
        ),
        0x2b | 0x2c => (
            Device,
            "this security key does not support the requested option",
        ),
        0x15 => (
            Device,
            "too many credentials in the list for this security key",
        ),
        0x28 => (Device, "this security key's storage is full"),
        _ => {
            return failed(
                Device,
                format!("the security key answered CTAP2 error 0x{status:02x}"),
            );
        }
    };
    failed(error, message)
}

pub fn from_transport(error: &TransportError) -> Response {
    match error {
        TransportError::Status(status) => from_status(*status),
        TransportError::Hid(code) => failed(
            HelperError::Device,
            format!("the security key answered CTAPHID error 0x{code:02x}"),
        ),
        TransportError::Timeout => {
            failed(HelperError::NotConfirmed, "the security key did not answer")
        }
        TransportError::Io(why) => failed(HelperError::Device, format!("security key I/O: {why}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tap_core::keys::protocol::Pin;
    use zeroize::Zeroizing;

    type Answer = dyn FnMut(u8, &[u8]) -> Result<Vec<u8>, TransportError>;

    /// A scripted authenticator: getInfo from `info`, other commands
    /// answered by `answer`, everything sent recorded.
    struct Scripted {
        info: Value,
        answer: Box<Answer>,
        sent: Vec<(u8, Vec<u8>)>,
        pins: Vec<String>,
        /// The PIN token step's answer, or the CTAP2 status it fails with.
        pin_result: Result<PinAuth, u8>,
    }

    impl Device for Scripted {
        fn command(&mut self, command: u8, cbor: &[u8]) -> Result<Vec<u8>, TransportError> {
            self.sent.push((command, cbor.to_vec()));
            if command == CMD_GET_INFO {
                return Ok(encode(&self.info));
            }
            (self.answer)(command, cbor)
        }
        fn pin_auth(
            &mut self,
            pin: &str,
            client_data_hash: &[u8],
            protocols: &[u64],
        ) -> Result<PinAuth, TransportError> {
            assert_eq!(client_data_hash, [0xcd; 32]);
            assert!(!protocols.is_empty());
            self.pins.push(pin.into());
            self.pin_result.clone().map_err(TransportError::Status)
        }
    }

    fn info(client_pin: Option<bool>, uv: Option<bool>) -> Value {
        let mut options = vec![
            (text("rk"), Value::Bool(true)),
            (text("up"), Value::Bool(true)),
        ];
        if let Some(on) = client_pin {
            options.push((text("clientPin"), Value::Bool(on)));
        }
        if let Some(on) = uv {
            options.push((text("uv"), Value::Bool(on)));
        }
        Value::Map(vec![
            (
                int(1),
                Value::Array(vec![text("FIDO_2_0"), text("FIDO_2_1")]),
            ),
            (int(3), Value::Bytes(vec![0xee; 16])),
            (int(4), Value::Map(options)),
            (int(6), Value::Array(vec![int(2), int(1)])),
            (int(0x42), text("unknown member")),
        ])
    }

    fn scripted(
        info: Value,
        answer: impl FnMut(u8, &[u8]) -> Result<Vec<u8>, TransportError> + 'static,
    ) -> Scripted {
        Scripted {
            info,
            answer: Box::new(answer),
            sent: Vec::new(),
            pins: Vec::new(),
            pin_result: Ok((vec![0x9a; 32], 2)),
        }
    }

    fn register_request(uv: UserVerification, pin: Option<&str>) -> RegisterRequest {
        RegisterRequest {
            rp_id: "pam://host".into(),
            client_data_hash: Bytes(vec![0xcd; 32]),
            user_id: Bytes(b"uid".to_vec()),
            user_name: "alice".into(),
            exclude: vec![Bytes(vec![1; 16]), Bytes(vec![2; 16])],
            algorithms: vec![-7, -8],
            user_verification: uv,
            pin: pin.map(|p| Pin(Zeroizing::new(p.into()))),
        }
    }

    fn assert_request(uv: UserVerification, pin: Option<&str>, allow: usize) -> AssertRequest {
        AssertRequest {
            rp_id: "pam://host".into(),
            client_data_hash: Bytes(vec![0xcd; 32]),
            allow: (0..allow).map(|i| Bytes(vec![i as u8; 16])).collect(),
            user_verification: uv,
            pin: pin.map(|p| Pin(Zeroizing::new(p.into()))),
        }
    }

    fn attestation_answer() -> Vec<u8> {
        encode(&Value::Map(vec![
            (int(1), text("packed")),
            (int(2), Value::Bytes(vec![0xad; 77])),
            (
                int(3),
                Value::Map(vec![
                    (text("alg"), int(-7)),
                    (text("sig"), Value::Bytes(vec![0x30, 1, 2])),
                    (
                        text("x5c"),
                        Value::Array(vec![Value::Bytes(vec![0xce; 10])]),
                    ),
                ]),
            ),
        ]))
    }

    fn decode(cbor: &[u8]) -> Value {
        let value: Value = ciborium::from_reader(cbor).unwrap();
        // The encoding is canonical: decoding and re-encoding is identity.
        assert_eq!(encode(&value), cbor);
        value
    }

    fn get(map: &Value, key: i64) -> Option<&Value> {
        map.as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.as_integer() == Some(key.into()))
            .map(|(_, v)| v)
    }

    #[test]
    fn info_parsing() {
        let parsed = parse_info(&encode(&info(Some(true), Some(false)))).unwrap();
        assert_eq!(
            parsed,
            Info {
                client_pin: Some(true),
                built_in_uv: false,
                pin_protocols: vec![2, 1]
            }
        );
        assert!(parse_info(&encode(&info(None, None)))
            .unwrap()
            .client_pin
            .is_none());
        assert!(matches!(
            parse_info(b"\xff"),
            Err(AnswerError::NotCbor {
                what: "getInfo",
                ..
            })
        ));
        assert!(matches!(
            parse_info(&encode(&int(3))),
            Err(AnswerError::NotAMap("getInfo"))
        ));
    }

    #[test]
    fn probe() {
        let mut device = scripted(info(Some(true), None), |_, _| unreachable!());
        assert_eq!(
            handle(&mut device, &Request::Probe),
            Response::Present { pin_set: true }
        );
        let mut device = scripted(info(Some(false), None), |_, _| unreachable!());
        assert_eq!(
            handle(&mut device, &Request::Probe),
            Response::Present { pin_set: false }
        );
    }

    #[test]
    fn verification_plan() {
        let pin_key = Info {
            client_pin: Some(true),
            built_in_uv: false,
            pin_protocols: vec![1],
        };
        let bio_key = Info {
            client_pin: Some(true),
            built_in_uv: true,
            pin_protocols: vec![1],
        };
        let bare_key = Info {
            client_pin: Some(false),
            ..Info::default()
        };
        use UserVerification::*;
        assert_eq!(
            plan(&pin_key, Required, Some("1")),
            Ok(Verification::Pin("1"))
        );
        assert_eq!(
            plan(&pin_key, Discouraged, Some("1")),
            Ok(Verification::Pin("1"))
        );
        assert!(matches!(
            plan(&pin_key, Required, None),
            Err(Response::Failed {
                error: HelperError::PinRequired,
                ..
            })
        ));
        assert_eq!(plan(&pin_key, Preferred, None), Ok(Verification::None));
        assert_eq!(plan(&bio_key, Required, None), Ok(Verification::BuiltIn));
        assert_eq!(plan(&bio_key, Preferred, None), Ok(Verification::BuiltIn));
        assert_eq!(plan(&bio_key, Discouraged, None), Ok(Verification::None));
        // A PIN for a key without one is not sent.
        assert_eq!(
            plan(&bare_key, Preferred, Some("1")),
            Ok(Verification::None)
        );
        assert!(matches!(
            plan(&bare_key, Required, None),
            Err(Response::Failed {
                error: HelperError::Device,
                ..
            })
        ));
    }

    #[test]
    fn register_with_pin_sends_the_right_make_credential() {
        let mut device = scripted(info(Some(true), None), |command, _| {
            assert_eq!(command, CMD_MAKE_CREDENTIAL);
            Ok(attestation_answer())
        });
        let request = register_request(UserVerification::Required, Some("4321"));
        let response = handle(&mut device, &Request::Register(request));
        let Response::Registered {
            authenticator_data,
            attestation_format,
            attestation_statement,
        } = response
        else {
            panic!("{response:?}");
        };
        assert_eq!(authenticator_data.0, vec![0xad; 77]);
        assert_eq!(attestation_format, "packed");
        let statement = decode(&attestation_statement.0);
        assert_eq!(statement.as_map().unwrap().len(), 3);
        assert_eq!(device.pins, vec!["4321".to_string()]);

        let (command, cbor) = &device.sent[1];
        assert_eq!(*command, CMD_MAKE_CREDENTIAL);
        let sent = decode(cbor);
        // The clientDataHash goes to the key as given, not hashed again.
        assert_eq!(get(&sent, 1), Some(&Value::Bytes(vec![0xcd; 32])));
        let rp = get(&sent, 2).unwrap().as_map().unwrap();
        assert_eq!(rp[0], (text("id"), text("pam://host")));
        let user = get(&sent, 3).unwrap().as_map().unwrap();
        assert_eq!(user[0], (text("id"), Value::Bytes(b"uid".to_vec())));
        assert_eq!(user[1], (text("name"), text("alice")));
        let algs = get(&sent, 4).unwrap().as_array().unwrap();
        assert_eq!(algs.len(), 2);
        assert_eq!(algs[1].as_map().unwrap()[0], (text("alg"), int(-8)));
        assert_eq!(
            algs[1].as_map().unwrap()[1],
            (text("type"), text("public-key"))
        );
        let exclude = get(&sent, 5).unwrap().as_array().unwrap();
        assert_eq!(
            exclude[1].as_map().unwrap()[0],
            (text("id"), Value::Bytes(vec![2; 16]))
        );
        // Non-resident: no rk option; PIN path: no uv option.
        assert_eq!(get(&sent, 7), None);
        assert_eq!(get(&sent, 8), Some(&Value::Bytes(vec![0x9a; 32])));
        assert_eq!(get(&sent, 9), Some(&int(2)));
    }

    #[test]
    fn register_with_built_in_uv_and_without_exclusions() {
        let mut device = scripted(info(Some(false), Some(true)), |_, _| {
            Ok(attestation_answer())
        });
        let mut request = register_request(UserVerification::Preferred, None);
        request.exclude.clear();
        assert!(matches!(
            handle(&mut device, &Request::Register(request)),
            Response::Registered { .. }
        ));
        let sent = decode(&device.sent[1].1);
        assert_eq!(get(&sent, 5), None);
        assert_eq!(
            get(&sent, 7),
            Some(&Value::Map(vec![(text("uv"), Value::Bool(true))]))
        );
        assert_eq!(get(&sent, 8), None);
        assert!(device.pins.is_empty());
    }

    #[test]
    fn assert_sends_the_allow_list_and_maps_the_answer() {
        let mut device = scripted(info(Some(true), None), |command, _| {
            assert_eq!(command, CMD_GET_ASSERTION);
            Ok(encode(&Value::Map(vec![
                (int(1), descriptor(&Bytes(vec![1; 16]))),
                (int(2), Value::Bytes(vec![0xad; 37])),
                (int(3), Value::Bytes(vec![0x30, 0x44])),
            ])))
        });
        let request = assert_request(UserVerification::Preferred, None, 2);
        assert_eq!(
            handle(&mut device, &Request::Assert(request)),
            Response::Asserted {
                credential_id: Bytes(vec![1; 16]),
                authenticator_data: Bytes(vec![0xad; 37]),
                signature: Bytes(vec![0x30, 0x44]),
            }
        );
        let sent = decode(&device.sent[1].1);
        assert_eq!(get(&sent, 1), Some(&text("pam://host")));
        assert_eq!(get(&sent, 2), Some(&Value::Bytes(vec![0xcd; 32])));
        assert_eq!(get(&sent, 3).unwrap().as_array().unwrap().len(), 2);
        // Preferred on a PIN key without a PIN: presence only.
        assert_eq!(get(&sent, 5), None);
        assert_eq!(get(&sent, 6), None);
    }

    #[test]
    fn assert_with_pin_and_a_single_allowed_id() {
        let mut device = scripted(info(Some(true), None), |_, _| {
            Ok(encode(&Value::Map(vec![
                (int(2), Value::Bytes(vec![0xad; 37])),
                (int(3), Value::Bytes(vec![0x30])),
            ])))
        });
        device.pin_result = Ok((vec![0x16; 16], 1));
        let request = assert_request(UserVerification::Required, Some("0000"), 1);
        let response = handle(&mut device, &Request::Assert(request));
        // The credential may be left out when one id was allowed.
        assert!(
            matches!(response, Response::Asserted { ref credential_id, .. } if credential_id.0 == vec![0; 16])
        );
        let sent = decode(&device.sent[1].1);
        assert_eq!(get(&sent, 6), Some(&Value::Bytes(vec![0x16; 16])));
        assert_eq!(get(&sent, 7), Some(&int(1)));
    }

    #[test]
    fn bad_and_empty_requests() {
        let mut device = scripted(info(None, None), |_, _| unreachable!());
        let mut request = assert_request(UserVerification::Preferred, None, 0);
        assert!(matches!(
            handle(&mut device, &Request::Assert(request.clone())),
            Response::Failed {
                error: HelperError::NoCredentials,
                ..
            }
        ));
        request.allow.push(Bytes(vec![1]));
        request.client_data_hash = Bytes(vec![0; 20]);
        assert!(matches!(
            handle(&mut device, &Request::Assert(request)),
            Response::Failed {
                error: HelperError::BadRequest,
                ..
            }
        ));
        assert!(device.sent.is_empty());
    }

    #[test]
    fn errors_are_mapped() {
        let cases = [
            (0x19, HelperError::AlreadyEnrolled),
            (0x2e, HelperError::NoCredentials),
            (0x36, HelperError::PinRequired),
            (0x31, HelperError::PinInvalid),
            (0x32, HelperError::PinBlocked),
            (0x34, HelperError::PinBlocked),
            (0x2f, HelperError::NotConfirmed),
            (0x27, HelperError::NotConfirmed),
            (0x26, HelperError::Device),
            (0x7f, HelperError::Device),
        ];
        for (status, expected) in cases {
            let mut device = scripted(info(Some(false), None), move |_, _| {
                Err(TransportError::Status(status))
            });
            let response = handle(
                &mut device,
                &Request::Register(register_request(UserVerification::Preferred, None)),
            );
            assert!(
                matches!(response, Response::Failed { error, .. } if error == expected),
                "0x{status:02x}: {response:?}"
            );
        }
        // A wrong PIN surfaces from the PIN token step.
        let mut device = scripted(info(Some(true), None), |_, _| unreachable!());
        device.pin_result = Err(0x31);
        let response = handle(
            &mut device,
            &Request::Assert(assert_request(UserVerification::Required, Some("9"), 1)),
        );
        assert!(matches!(
            response,
            Response::Failed {
                error: HelperError::PinInvalid,
                ..
            }
        ));
        // Transport trouble.
        assert!(matches!(
            from_transport(&TransportError::Timeout),
            Response::Failed {
                error: HelperError::NotConfirmed,
                ..
            }
        ));
        assert!(matches!(
            from_transport(&TransportError::Hid(0x06)),
            Response::Failed {
                error: HelperError::Device,
                ..
            }
        ));
    }

    #[test]
    fn malformed_answers_are_device_errors() {
        for answer in [vec![0xff], encode(&int(1)), encode(&Value::Map(vec![]))] {
            let reply = answer.clone();
            let mut device = scripted(info(Some(false), None), move |_, _| Ok(reply.clone()));
            let response = handle(
                &mut device,
                &Request::Register(register_request(UserVerification::Preferred, None)),
            );
            assert!(matches!(
                response,
                Response::Failed {
                    error: HelperError::Device,
                    ..
                }
            ));
            let reply = answer.clone();
            let mut device = scripted(info(Some(false), None), move |_, _| Ok(reply.clone()));
            let response = handle(
                &mut device,
                &Request::Assert(assert_request(UserVerification::Preferred, None, 2)),
            );
            assert!(matches!(
                response,
                Response::Failed {
                    error: HelperError::Device,
                    ..
                }
            ));
        }
    }
}
