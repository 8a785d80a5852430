//! Framing: a 4-byte big-endian length, then that many bytes of JSON
//! `{"v": VERSION, "body": …}`. A reader knows the size before it reads,
//! refuses anything larger than its limit unread, and never parses a
//! message of another version.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::{self, Read, Write};

/// The protocol version; both sides must speak the same.
pub const VERSION: u16 = 1;
/// Largest request the daemon reads (a key helper's registration answer,
/// with an attestation certificate chain, is a few KiB).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Largest response a client reads (a long audit listing).
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug)]
pub enum FrameError {
    /// The stream ended before a whole message (or before any byte: `closed`).
    Truncated {
        closed: bool,
    },
    TooLarge {
        size: usize,
        limit: usize,
    },
    /// Parsed, but of another version.
    Version(u16),
    /// Not JSON of the expected shape (or, writing, not serializable).
    Malformed(serde_json::Error),
    Io(io::Error),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Truncated { closed: true } => f.write_str("connection closed"),
            FrameError::Truncated { closed: false } => f.write_str("message cut short"),
            FrameError::TooLarge { size, limit } => {
                write!(f, "message of {size} bytes; at most {limit} are read")
            }
            FrameError::Version(v) => write!(
                f,
                "protocol version {v}, but this side speaks version {VERSION}"
            ),
            FrameError::Malformed(why) => write!(f, "malformed message: {why}"),
            FrameError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for FrameError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FrameError::Malformed(e) => Some(e),
            FrameError::Io(e) => Some(e),
            FrameError::Truncated { .. } | FrameError::TooLarge { .. } | FrameError::Version(_) => {
                None
            }
        }
    }
}

#[derive(Serialize)]
struct OutEnvelope<'a, T> {
    v: u16,
    body: &'a T,
}

#[derive(Deserialize)]
struct VersionOnly {
    v: u16,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InEnvelope<T> {
    #[allow(dead_code)]
    v: u16,
    body: T,
}

/// The framed bytes of one message.
pub fn encode<T: Serialize>(body: &T) -> Result<Vec<u8>, FrameError> {
    let json =
        serde_json::to_vec(&OutEnvelope { v: VERSION, body }).map_err(FrameError::Malformed)?;
    let len = u32::try_from(json.len()).map_err(|_| FrameError::TooLarge {
        size: json.len(),
        limit: u32::MAX as usize,
    })?;
    let mut framed = Vec::with_capacity(4 + json.len());
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(&json);
    Ok(framed)
}

/// Writes one message in one `write_all` (one syscall on a socket).
pub fn write_message<T: Serialize>(w: &mut impl Write, body: &T) -> Result<(), FrameError> {
    let framed = encode(body)?;
    w.write_all(&framed).map_err(FrameError::Io)?;
    w.flush().map_err(FrameError::Io)
}

/// Reads one whole message of at most `limit` bytes.
pub fn read_message<T: DeserializeOwned>(r: &mut impl Read, limit: usize) -> Result<T, FrameError> {
    let mut len = [0u8; 4];
    read_full(r, &mut len)?;
    let size = u32::from_be_bytes(len) as usize;
    if size > limit {
        return Err(FrameError::TooLarge { size, limit });
    }
    let mut json = vec![0u8; size];
    read_full(r, &mut json).map_err(|e| match e {
        FrameError::Truncated { .. } => FrameError::Truncated { closed: false },
        other => other,
    })?;
    decode(&json)
}

/// Parses the JSON of one message (without its length prefix).
pub fn decode<T: DeserializeOwned>(json: &[u8]) -> Result<T, FrameError> {
    // The version is read first, so a message of another version is
    // refused as such rather than as "malformed".
    let version: VersionOnly = serde_json::from_slice(json).map_err(FrameError::Malformed)?;
    if version.v != VERSION {
        return Err(FrameError::Version(version.v));
    }
    let envelope: InEnvelope<T> = serde_json::from_slice(json).map_err(FrameError::Malformed)?;
    Ok(envelope.body)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<(), FrameError> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => {
                return Err(FrameError::Truncated {
                    closed: filled == 0,
                })
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let framed = encode(&vec![1u32, 2, 3]).unwrap();
        assert_eq!(&framed[..4], &((framed.len() - 4) as u32).to_be_bytes());
        let back: Vec<u32> = read_message(&mut &framed[..], 1024).unwrap();
        assert_eq!(back, vec![1, 2, 3]);
    }

    #[test]
    fn refuses_oversize_unread_truncated_and_other_versions() {
        let mut big = (1_000_000u32).to_be_bytes().to_vec();
        big.extend_from_slice(b"{}");
        assert!(matches!(
            read_message::<u32>(&mut &big[..], 1024),
            Err(FrameError::TooLarge {
                size: 1_000_000,
                limit: 1024
            })
        ));
        let framed = encode(&7u32).unwrap();
        assert!(matches!(
            read_message::<u32>(&mut &framed[..framed.len() - 1], 1024),
            Err(FrameError::Truncated { closed: false })
        ));
        assert!(matches!(
            read_message::<u32>(&mut &b""[..], 1024),
            Err(FrameError::Truncated { closed: true })
        ));
        assert!(matches!(
            decode::<u32>(br#"{"v":2,"body":7}"#),
            Err(FrameError::Version(2))
        ));
        assert!(matches!(
            decode::<u32>(br#"{"v":1,"body":"seven"}"#),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            decode::<u32>(br#"{"v":1,"body":7,"extra":1}"#),
            Err(FrameError::Malformed(_))
        ));
    }
}
