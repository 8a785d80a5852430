//! OpenSSH public keys: one `.pub` / authorized_keys line, `TYPE BASE64
//! [COMMENT]`, and the binary blob inside it, parsed strictly.
//!
//! Blob layouts (OpenSSH PROTOCOL.u2f, RFC 4253 §6.6, RFC 5656 §3.1,
//! RFC 8709 §4), all in the SSH wire encoding:
//!
//! ```text
//! ssh-ed25519                          string type | string pk(32)
//! ecdsa-sha2-nistpN                    string type | string curve | string Q
//! ssh-rsa                              string type | mpint e | mpint n
//! sk-ssh-ed25519@openssh.com           string type | string pk(32) | string application
//! sk-ecdsa-sha2-nistp256@openssh.com   string type | string "nistp256" | string Q | string application
//! ```
//!
//! Stricter than OpenSSH where that costs honest keys nothing: the blob
//! must be canonical (no trailing bytes, minimal mpints, uncompressed
//! points as OpenSSH itself writes them), so [`SshPublicKey::fingerprint`]
//! hashes exactly what `ssh-keygen -lf` hashes. A line never carries
//! authorized_keys options: whatever this module returns is printed back
//! as `TYPE BASE64` alone, so nothing a user submits can reach sshd as
//! `command="…"` or any other option.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};

use super::wire::{Reader, Truncated};

/// A longer line is refused unread (an RSA-16384 line is about 2.8 KiB).
pub const MAX_LINE_LEN: usize = 8 * 1024;
/// A longer decoded blob is refused (RSA-16384 is about 2.1 KiB).
pub const MAX_BLOB_LEN: usize = 4 * 1024;
pub const MAX_COMMENT_LEN: usize = 128;
/// The sk application (FIDO rp id); OpenSSH's own are "ssh:" and "ssh:NAME".
pub const MAX_APPLICATION_LEN: usize = 255;
pub const MIN_RSA_BITS: usize = 2048;
/// OpenSSH's own limit (SSHBUF_MAX_BIGNUM).
pub const MAX_RSA_BITS: usize = 16384;
const ED25519_LEN: usize = 32;

/// The key types we understand. Certificates, DSA and webauthn types are
/// not among them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SshKeyType {
    SkEd25519,
    SkEcdsaP256,
    Ed25519,
    EcdsaP256,
    EcdsaP384,
    EcdsaP521,
    Rsa,
}

impl SshKeyType {
    pub const ALL: [SshKeyType; 7] = [
        Self::SkEd25519,
        Self::SkEcdsaP256,
        Self::Ed25519,
        Self::EcdsaP256,
        Self::EcdsaP384,
        Self::EcdsaP521,
        Self::Rsa,
    ];
    /// What policy allows unless told otherwise: the two security-key types.
    pub const DEFAULT_ALLOWED: [SshKeyType; 2] = [Self::SkEd25519, Self::SkEcdsaP256];

    /// The name OpenSSH writes first on the line and inside the blob.
    pub fn name(self) -> &'static str {
        match self {
            Self::SkEd25519 => "sk-ssh-ed25519@openssh.com",
            Self::SkEcdsaP256 => "sk-ecdsa-sha2-nistp256@openssh.com",
            Self::Ed25519 => "ssh-ed25519",
            Self::EcdsaP256 => "ecdsa-sha2-nistp256",
            Self::EcdsaP384 => "ecdsa-sha2-nistp384",
            Self::EcdsaP521 => "ecdsa-sha2-nistp521",
            Self::Rsa => "ssh-rsa",
        }
    }

    /// Exact and case-sensitive, as OpenSSH matches them.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether the private key lives in a FIDO authenticator.
    pub fn is_security_key(self) -> bool {
        matches!(self, Self::SkEd25519 | Self::SkEcdsaP256)
    }

    /// ECDSA types: the curve name inside the blob and the encoded point's
    /// length (0x04 || x || y).
    fn curve(self) -> Option<(&'static str, usize)> {
        match self {
            Self::EcdsaP256 | Self::SkEcdsaP256 => Some(("nistp256", 65)),
            Self::EcdsaP384 => Some(("nistp384", 97)),
            Self::EcdsaP521 => Some(("nistp521", 133)),
            _ => None,
        }
    }
}

impl std::fmt::Display for SshKeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key line or blob was refused. Text from the input is quoted
/// escaped and cut short, so a message is always one safe line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyLineError {
    /// Longer than [`MAX_LINE_LEN`].
    LineTooLong,
    /// Nothing but whitespace.
    Empty,
    /// A newline other than one at the very end.
    MultipleLines,
    /// NUL, CR, DEL or any other control character (tabs only between fields).
    ControlCharacter,
    /// authorized_keys options (`command="…"`, `restrict`, …) before the type.
    OptionsNotAllowed,
    /// The first field is not a key type we accept.
    UnknownType(String),
    /// No base64 field after the type.
    MissingBlob,
    /// The base64 field does not decode (canonically, with padding).
    Base64,
    /// The decoded blob is longer than [`MAX_BLOB_LEN`].
    BlobTooLong,
    /// The blob names another type than the line.
    TypeMismatch {
        line: SshKeyType,
        blob: String,
    },
    /// A field runs past the end of the blob.
    Truncated,
    /// Bytes after the key's last field.
    TrailingBytes,
    /// An Ed25519 key that is not 32 bytes, or an EC point of the wrong size.
    WrongLength,
    /// An ECDSA blob naming another curve than its type.
    CurveMismatch,
    /// Not a point on the curve, compressed, or an Ed25519 small-order point.
    InvalidPoint,
    /// RSA: an mpint that is negative or not minimally encoded, or an
    /// exponent that is even or below 3.
    MalformedRsa,
    RsaTooSmall {
        bits: usize,
    },
    RsaTooLarge {
        bits: usize,
    },
    /// The sk application is empty.
    ApplicationEmpty,
    /// The sk application is longer than [`MAX_APPLICATION_LEN`].
    ApplicationTooLong,
    /// The sk application is not UTF-8, or holds NUL or control characters.
    ApplicationInvalid,
    /// Longer than [`MAX_COMMENT_LEN`] bytes.
    CommentTooLong,
    /// Control or bidirectional-override characters in the comment.
    CommentInvalid,
}

impl std::fmt::Display for KeyLineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::LineTooLong => write!(f, "key line is longer than {MAX_LINE_LEN} bytes"),
            Self::Empty => f.write_str("no key given"),
            Self::MultipleLines => f.write_str("give exactly one key line"),
            Self::ControlCharacter => f.write_str("key line holds control characters"),
            Self::OptionsNotAllowed => f.write_str(
                "key line starts with authorized_keys options; give only \"TYPE BASE64 [COMMENT]\"",
            ),
            Self::UnknownType(name) => write!(f, "unsupported key type {name:?}"),
            Self::MissingBlob => f.write_str("key line has a type but no key"),
            Self::Base64 => f.write_str("key is not valid base64"),
            Self::BlobTooLong => write!(f, "key is longer than {MAX_BLOB_LEN} bytes"),
            Self::TypeMismatch { line, blob } => {
                write!(f, "key line says {line} but the key inside is {blob:?}")
            }
            Self::Truncated => f.write_str("key is cut short"),
            Self::TrailingBytes => f.write_str("key has unexplained trailing bytes"),
            Self::WrongLength => f.write_str("public key has the wrong length"),
            Self::CurveMismatch => f.write_str("ECDSA key names another curve than its type"),
            Self::InvalidPoint => f.write_str("public key is not a valid point on its curve"),
            Self::MalformedRsa => f.write_str("RSA key is malformed"),
            Self::RsaTooSmall { bits } => {
                write!(
                    f,
                    "RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"
                )
            }
            Self::RsaTooLarge { bits } => {
                write!(
                    f,
                    "RSA key has {bits} bits; at most {MAX_RSA_BITS} are supported"
                )
            }
            Self::ApplicationEmpty => f.write_str("security key application is empty"),
            Self::ApplicationTooLong => write!(
                f,
                "security key application is longer than {MAX_APPLICATION_LEN} bytes"
            ),
            Self::ApplicationInvalid => {
                f.write_str("security key application is not printable UTF-8")
            }
            Self::CommentTooLong => {
                write!(f, "key comment is longer than {MAX_COMMENT_LEN} bytes")
            }
            Self::CommentInvalid => f.write_str("key comment holds control characters"),
        }
    }
}

impl std::error::Error for KeyLineError {}

impl From<Truncated> for KeyLineError {
    fn from(_: Truncated) -> Self {
        Self::Truncated
    }
}

/// A checked OpenSSH public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshPublicKey {
    pub key_type: SshKeyType,
    /// The whole blob, canonical: what the fingerprint hashes.
    pub blob: Vec<u8>,
    /// The FIDO application (rp id) of a security key; `None` otherwise.
    pub application: Option<String>,
    /// The line's comment ("user@laptop"); empty when there was none.
    pub comment: String,
}

impl SshPublicKey {
    /// Parses one `.pub` / authorized_keys line, `TYPE BASE64 [COMMENT]`.
    /// Spaces and tabs around and between the fields and one final `\n`
    /// are accepted; options before the type never are.
    pub fn parse_line(line: &str) -> Result<Self, KeyLineError> {
        if line.len() > MAX_LINE_LEN {
            return Err(KeyLineError::LineTooLong);
        }
        let line = line.strip_suffix('\n').unwrap_or(line);
        if line.contains('\n') {
            return Err(KeyLineError::MultipleLines);
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(KeyLineError::ControlCharacter);
        }
        let line = line.trim_matches(is_blank);
        if line.is_empty() {
            return Err(KeyLineError::Empty);
        }
        let (type_name, rest) = split_field(line);
        let Some(line_type) = SshKeyType::from_name(type_name) else {
            return Err(if looks_like_options(line) {
                KeyLineError::OptionsNotAllowed
            } else {
                KeyLineError::UnknownType(quoted(type_name))
            });
        };
        let (base64, comment) = split_field(rest);
        if base64.is_empty() {
            return Err(KeyLineError::MissingBlob);
        }
        // Cheap bound before decoding: 4 characters per 3 bytes.
        if base64.len() / 4 * 3 > MAX_BLOB_LEN + 3 {
            return Err(KeyLineError::BlobTooLong);
        }
        let blob = STANDARD.decode(base64).map_err(|_| KeyLineError::Base64)?;

        let blob_type = Reader::new(&blob).string()?;
        if blob_type != line_type.name().as_bytes() {
            return Err(KeyLineError::TypeMismatch {
                line: line_type,
                blob: quoted(&String::from_utf8_lossy(blob_type)),
            });
        }
        let mut key = Self::from_blob(&blob)?;
        key.comment = check_comment(comment)?.to_owned();
        Ok(key)
    }

    /// Parses a key blob (the decoded base64 field); the comment is empty.
    pub fn from_blob(blob: &[u8]) -> Result<Self, KeyLineError> {
        if blob.len() > MAX_BLOB_LEN {
            return Err(KeyLineError::BlobTooLong);
        }
        let parsed = Fields::read(blob)?;
        Ok(Self {
            key_type: parsed.key_type,
            blob: blob.to_vec(),
            application: parsed.application.map(str::to_owned),
            comment: String::new(),
        })
    }

    /// Exactly what `ssh-keygen -lf` prints: SHA-256 of the blob, in
    /// base64 without padding.
    pub fn fingerprint(&self) -> String {
        format!(
            "SHA256:{}",
            STANDARD_NO_PAD.encode(Sha256::digest(&self.blob))
        )
    }

    /// `TYPE BASE64`: never the comment, never options.
    pub fn to_line(&self) -> String {
        format!("{} {}", self.key_type.name(), STANDARD.encode(&self.blob))
    }

    /// A security key's public key as FIDO reports it: Ed25519's 32 bytes,
    /// or P-256's uncompressed SEC1 point (65 bytes). `None` for other
    /// types (or a blob altered after parsing).
    pub fn sk_public_key(&self) -> Option<&[u8]> {
        if !self.key_type.is_security_key() {
            return None;
        }
        Fields::read(&self.blob)
            .ok()
            .map(|fields| fields.public_key)
    }
}

/// A blob's fields, checked.
struct Fields<'a> {
    key_type: SshKeyType,
    /// Ed25519: 32 bytes; ECDSA: the SEC1 point; RSA: the modulus.
    public_key: &'a [u8],
    application: Option<&'a str>,
}

impl<'a> Fields<'a> {
    fn read(blob: &'a [u8]) -> Result<Self, KeyLineError> {
        let mut reader = Reader::new(blob);
        let name = reader.string()?;
        let key_type = std::str::from_utf8(name)
            .ok()
            .and_then(SshKeyType::from_name)
            .ok_or_else(|| KeyLineError::UnknownType(quoted(&String::from_utf8_lossy(name))))?;
        let public_key = match key_type {
            SshKeyType::Ed25519 | SshKeyType::SkEd25519 => ed25519_key(reader.string()?)?,
            SshKeyType::Rsa => rsa_modulus(&mut reader)?,
            SshKeyType::EcdsaP256
            | SshKeyType::EcdsaP384
            | SshKeyType::EcdsaP521
            | SshKeyType::SkEcdsaP256 => ecdsa_point(key_type, &mut reader)?,
        };
        let application = if key_type.is_security_key() {
            Some(application(reader.string()?)?)
        } else {
            None
        };
        if !reader.is_empty() {
            return Err(KeyLineError::TrailingBytes);
        }
        Ok(Self {
            key_type,
            public_key,
            application,
        })
    }
}

fn ed25519_key(bytes: &[u8]) -> Result<&[u8], KeyLineError> {
    let array: &[u8; ED25519_LEN] = bytes.try_into().map_err(|_| KeyLineError::WrongLength)?;
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(array).map_err(|_| KeyLineError::InvalidPoint)?;
    // Small-order points would let one signature verify for many messages.
    if key.is_weak() {
        return Err(KeyLineError::InvalidPoint);
    }
    Ok(bytes)
}

fn ecdsa_point<'a>(
    key_type: SshKeyType,
    reader: &mut Reader<'a>,
) -> Result<&'a [u8], KeyLineError> {
    let Some((curve, point_len)) = key_type.curve() else {
        return Err(KeyLineError::CurveMismatch);
    };
    if reader.string()? != curve.as_bytes() {
        return Err(KeyLineError::CurveMismatch);
    }
    let point = reader.string()?;
    if point.len() != point_len {
        return Err(KeyLineError::WrongLength);
    }
    // OpenSSH reads and writes only uncompressed points.
    if point.first() != Some(&0x04) {
        return Err(KeyLineError::InvalidPoint);
    }
    // Each refuses the identity and points off the curve.
    let valid = match key_type {
        SshKeyType::EcdsaP384 => p384::PublicKey::from_sec1_bytes(point).is_ok(),
        SshKeyType::EcdsaP521 => p521::PublicKey::from_sec1_bytes(point).is_ok(),
        _ => p256::PublicKey::from_sec1_bytes(point).is_ok(),
    };
    if !valid {
        return Err(KeyLineError::InvalidPoint);
    }
    Ok(point)
}

/// `mpint e | mpint n`; returns n's magnitude.
fn rsa_modulus<'a>(reader: &mut Reader<'a>) -> Result<&'a [u8], KeyLineError> {
    let e = mpint(reader.string()?)?;
    let n = mpint(reader.string()?)?;
    let odd = |m: &[u8]| m.last().is_some_and(|b| b & 1 == 1);
    if !odd(e) || e == [1] || !odd(n) {
        return Err(KeyLineError::MalformedRsa);
    }
    // n is non-empty and without leading zeros here.
    let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
    if bits < MIN_RSA_BITS {
        return Err(KeyLineError::RsaTooSmall { bits });
    }
    if bits > MAX_RSA_BITS {
        return Err(KeyLineError::RsaTooLarge { bits });
    }
    Ok(n)
}

/// A non-negative mpint in its one minimal encoding (RFC 4251 §5);
/// returns the magnitude without the sign byte.
fn mpint(bytes: &[u8]) -> Result<&[u8], KeyLineError> {
    match bytes {
        [] => Ok(bytes),
        [first, ..] if first & 0x80 != 0 => Err(KeyLineError::MalformedRsa),
        [0, rest @ ..] if rest.first().is_some_and(|b| b & 0x80 != 0) => Ok(rest),
        [0, ..] => Err(KeyLineError::MalformedRsa),
        _ => Ok(bytes),
    }
}

fn application(bytes: &[u8]) -> Result<&str, KeyLineError> {
    if bytes.is_empty() {
        return Err(KeyLineError::ApplicationEmpty);
    }
    if bytes.len() > MAX_APPLICATION_LEN {
        return Err(KeyLineError::ApplicationTooLong);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| KeyLineError::ApplicationInvalid)?;
    if text.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err(KeyLineError::ApplicationInvalid);
    }
    Ok(text)
}

fn check_comment(comment: &str) -> Result<&str, KeyLineError> {
    if comment.len() > MAX_COMMENT_LEN {
        return Err(KeyLineError::CommentTooLong);
    }
    if comment
        .chars()
        .any(|c| c.is_control() || is_bidi_control(c))
    {
        return Err(KeyLineError::CommentInvalid);
    }
    Ok(comment)
}

/// Characters that reorder the text shown around them, so a comment
/// could display as something it is not.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// OpenSSH separates fields with spaces and tabs.
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// The first field and the rest with its leading blanks removed.
fn split_field(text: &str) -> (&str, &str) {
    match text.find(is_blank) {
        Some(at) => (&text[..at], text[at..].trim_start_matches(is_blank)),
        None => (text, ""),
    }
}

/// Whether a line that does not start with a key type looks like an
/// authorized_keys line with options (auth-options.c's names).
fn looks_like_options(line: &str) -> bool {
    const FLAGS: [&str; 9] = [
        "agent-forwarding",
        "cert-authority",
        "port-forwarding",
        "pty",
        "restrict",
        "touch-required",
        "user-rc",
        "verify-required",
        "x11-forwarding",
    ];
    const VALUED: [&str; 8] = [
        "command=",
        "environment=",
        "expiry-time=",
        "from=",
        "permitlisten=",
        "permitopen=",
        "principals=",
        "tunnel=",
    ];
    let (first, _) = split_field(line);
    let lower = first.to_ascii_lowercase();
    let flag = lower.strip_prefix("no-").unwrap_or(&lower);
    first.contains(['=', '"', ','])
        || FLAGS.contains(&flag)
        || VALUED.iter().any(|v| lower.starts_with(v))
        || line
            .split(is_blank)
            .skip(1)
            .any(|field| SshKeyType::from_name(field).is_some())
}

/// Input text fit for an error message: at most 64 characters.
fn quoted(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests;
