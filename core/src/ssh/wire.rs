//! The SSH wire encoding (RFC 4251 §5) that key blobs and OpenSSH's
//! attestation files use: big-endian `uint32`, and `string` as a uint32
//! length followed by that many bytes.

/// A read ran past the end of the input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Truncated;

/// The unread rest of an input.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Truncated> {
        let (head, rest) = self.0.split_first_chunk::<4>().ok_or(Truncated)?;
        self.0 = rest;
        Ok(u32::from_be_bytes(*head))
    }

    /// A `string`: its length is checked against what is left before
    /// anything is taken, so a huge length field costs nothing.
    pub(crate) fn string(&mut self) -> Result<&'a [u8], Truncated> {
        let len = usize::try_from(self.u32()?).map_err(|_| Truncated)?;
        let (head, rest) = self.0.split_at_checked(len).ok_or(Truncated)?;
        self.0 = rest;
        Ok(head)
    }
}

#[cfg(any(test, feature = "testkit"))]
/// Appends `bytes` as a `string`. Callers keep their inputs far below
/// 4 GiB (every blob here is bounded to a few KiB).
pub(crate) fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_strings_and_integers() {
        let mut bytes = Vec::new();
        put_string(&mut bytes, b"abc");
        bytes.extend_from_slice(&7u32.to_be_bytes());
        put_string(&mut bytes, b"");
        let mut reader = Reader::new(&bytes);
        assert_eq!(reader.string(), Ok(&b"abc"[..]));
        assert_eq!(reader.u32(), Ok(7));
        assert_eq!(reader.string(), Ok(&b""[..]));
        assert!(reader.is_empty());
        assert_eq!(reader.u32(), Err(Truncated));
    }

    #[test]
    fn refuses_lengths_past_the_end() {
        let mut reader = Reader::new(&[0xff, 0xff, 0xff, 0xff, 1, 2]);
        assert_eq!(reader.string(), Err(Truncated));
        let mut reader = Reader::new(&[0, 0, 0, 3, 1, 2]);
        assert_eq!(reader.string(), Err(Truncated));
        let mut reader = Reader::new(&[0, 0, 0]);
        assert_eq!(reader.u32(), Err(Truncated));
    }
}
