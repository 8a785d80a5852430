//! Just enough CBOR to find where one item ends, without building it.
//!
//! authenticatorData carries the credential's COSE_Key in the middle of a
//! byte string, with only an optional extensions map after it, so the key's
//! end is known only by walking its structure. Walking first also bounds
//! what the full decoders (ciborium, coset) see later: every length here has
//! been checked against the bytes actually present, so no header can make
//! them allocate more than the input holds.
//!
//! CTAP2's canonical CBOR has no indefinite lengths and no tags, so both are
//! refused here rather than handled.

/// Deeper nesting than this is refused; a COSE_Key is one map deep and an
/// attestation statement two.
pub(crate) const MAX_DEPTH: usize = 8;

/// Why bytes are not one well-formed CBOR item of the kind we accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CborError {
    /// The item claims more bytes than there are.
    Truncated,
    /// An indefinite-length item (CTAP2 canonical CBOR has none).
    IndefiniteLength,
    /// A tagged item (CTAP2 canonical CBOR has none).
    Tagged,
    /// Reserved additional information, a stray break, or a simple value
    /// encoded in two bytes that fits in one.
    NotWellFormed,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// The item is not a map where a map is required.
    NotAMap,
}

impl std::fmt::Display for CborError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Truncated => "CBOR item is cut short",
            Self::IndefiniteLength => "CBOR indefinite lengths are not allowed",
            Self::Tagged => "CBOR tags are not allowed",
            Self::NotWellFormed => "CBOR is not well-formed",
            Self::TooDeep => "CBOR is nested too deeply",
            Self::NotAMap => "CBOR item is not a map",
        })
    }
}

const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
const MAJOR_MAP: u8 = 5;
const MAJOR_TAG: u8 = 6;
const MAJOR_SIMPLE: u8 = 7;

/// The length in bytes of the CBOR map that starts at `bytes[0]`; what
/// follows it is not looked at.
pub(crate) fn map_len(bytes: &[u8]) -> Result<usize, CborError> {
    match bytes.first() {
        Some(initial) if initial >> 5 == MAJOR_MAP => item_len(bytes),
        Some(_) => Err(CborError::NotAMap),
        None => Err(CborError::Truncated),
    }
}

/// The length in bytes of the CBOR item that starts at `bytes[0]`.
pub(crate) fn item_len(bytes: &[u8]) -> Result<usize, CborError> {
    let mut pos = 0;
    skip_item(bytes, &mut pos, 0)?;
    Ok(pos)
}

fn skip_item(bytes: &[u8], pos: &mut usize, depth: usize) -> Result<(), CborError> {
    if depth > MAX_DEPTH {
        return Err(CborError::TooDeep);
    }
    let (major, argument) = read_head(bytes, pos)?;
    match major {
        MAJOR_BYTES | MAJOR_TEXT => {
            let len = usize::try_from(argument).map_err(|_| CborError::Truncated)?;
            skip_bytes(bytes, pos, len)
        }
        // Each element is at least one byte, so a count larger than what is
        // left fails at the first missing element: the loops stay bounded
        // by the input, whatever the header claims.
        MAJOR_ARRAY => {
            for _ in 0..argument {
                skip_item(bytes, pos, depth + 1)?;
            }
            Ok(())
        }
        MAJOR_MAP => {
            for _ in 0..argument {
                skip_item(bytes, pos, depth + 1)?;
                skip_item(bytes, pos, depth + 1)?;
            }
            Ok(())
        }
        MAJOR_TAG => Err(CborError::Tagged),
        // Integers and simple values/floats: the head was everything.
        _ => Ok(()),
    }
}

/// Reads an item's initial byte and argument; returns (major type, argument).
fn read_head(bytes: &[u8], pos: &mut usize) -> Result<(u8, u64), CborError> {
    let initial = *bytes.get(*pos).ok_or(CborError::Truncated)?;
    *pos += 1;
    let major = initial >> 5;
    let info = initial & 0x1f;
    let argument = match info {
        0..=23 => u64::from(info),
        24 => read_uint(bytes, pos, 1)?,
        25 => read_uint(bytes, pos, 2)?,
        26 => read_uint(bytes, pos, 4)?,
        27 => read_uint(bytes, pos, 8)?,
        31 if major == MAJOR_SIMPLE => return Err(CborError::NotWellFormed),
        31 => return Err(CborError::IndefiniteLength),
        _ => return Err(CborError::NotWellFormed),
    };
    // RFC 8949 §3.3: a one-byte simple value below 32 is not well-formed.
    if major == MAJOR_SIMPLE && info == 24 && argument < 32 {
        return Err(CborError::NotWellFormed);
    }
    Ok((major, argument))
}

fn read_uint(bytes: &[u8], pos: &mut usize, width: usize) -> Result<u64, CborError> {
    let start = *pos;
    skip_bytes(bytes, pos, width)?;
    let value = bytes
        .get(start..*pos)
        .ok_or(CborError::Truncated)?
        .iter()
        .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
    Ok(value)
}

fn skip_bytes(bytes: &[u8], pos: &mut usize, len: usize) -> Result<(), CborError> {
    let end = pos.checked_add(len).ok_or(CborError::Truncated)?;
    if end > bytes.len() {
        return Err(CborError::Truncated);
    }
    *pos = end;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_end_of_each_kind_of_item() {
        let cases: &[(&[u8], usize)] = &[
            (&[0x00, 0xff], 1),
            (&[0x18, 0x20], 2),
            (&[0x39, 0x01, 0x00], 3),
            (&[0x1b, 0, 0, 0, 0, 0, 0, 0, 1], 9),
            (&[0x43, 1, 2, 3, 9], 4),
            (&[0x62, b'h', b'i'], 3),
            (&[0x82, 0x01, 0x41, 0x00, 0x00], 4),
            (&[0xa1, 0x01, 0xa1, 0x02, 0x03, 0xee], 5),
            (&[0xf5], 1),
            (&[0xf8, 0x20], 2),
            (&[0xf9, 0x3c, 0x00], 3),
            (&[0xfb, 0, 0, 0, 0, 0, 0, 0, 0], 9),
        ];
        for (bytes, len) in cases {
            assert_eq!(item_len(bytes), Ok(*len), "{bytes:02x?}");
        }
    }

    #[test]
    fn refuses_what_ctap2_canonical_cbor_never_sends() {
        assert_eq!(
            item_len(&[0x5f, 0x41, 0x00, 0xff]),
            Err(CborError::IndefiniteLength)
        );
        assert_eq!(item_len(&[0xbf, 0xff]), Err(CborError::IndefiniteLength));
        assert_eq!(item_len(&[0xc0, 0x00]), Err(CborError::Tagged));
        assert_eq!(item_len(&[0xff]), Err(CborError::NotWellFormed));
        assert_eq!(item_len(&[0x1c]), Err(CborError::NotWellFormed));
        assert_eq!(item_len(&[0xf8, 0x10]), Err(CborError::NotWellFormed));
    }

    #[test]
    fn refuses_lengths_beyond_the_input_without_allocating() {
        assert_eq!(item_len(&[]), Err(CborError::Truncated));
        assert_eq!(
            item_len(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Err(CborError::Truncated)
        );
        assert_eq!(
            item_len(&[0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00]),
            Err(CborError::Truncated)
        );
        assert_eq!(
            item_len(&[0xba, 0xff, 0xff, 0xff, 0xff]),
            Err(CborError::Truncated)
        );
        assert_eq!(item_len(&[0x19, 0x01]), Err(CborError::Truncated));
        assert_eq!(item_len(&[0xa1, 0x01]), Err(CborError::Truncated));
    }

    #[test]
    fn refuses_deep_nesting() {
        let deep = vec![0x81; MAX_DEPTH + 2];
        assert_eq!(item_len(&deep), Err(CborError::TooDeep));
        let mut ok = vec![0x81; MAX_DEPTH];
        ok.push(0x00);
        assert_eq!(item_len(&ok), Ok(MAX_DEPTH + 1));
    }

    #[test]
    fn map_len_wants_a_map() {
        assert_eq!(map_len(&[0xa0, 0x00]), Ok(1));
        assert_eq!(map_len(&[0x80]), Err(CborError::NotAMap));
        assert_eq!(map_len(&[]), Err(CborError::Truncated));
    }
}
