//! The input layout of the `keys_verify` target, shared with the seed
//! maker so seeds and target always agree.
//!
//! ```text
//! options 1 | stored sign count 4 (BE) | then five fields, each u16 BE length + bytes:
//! stored COSE key | credential id | authenticatorData | signature | attestation statement
//! ```
//!
//! options: bit 0 = user verification required; bits 1..=2 pick the
//! attestation format (none, packed, fido-u2f, tpm). Missing fields are
//! empty, so every input means something.

pub const RP_ID: &str = "pam://fuzz.example";
pub const CLIENT_DATA_HASH: [u8; 32] = [0x42; 32];
pub const FORMATS: [&str; 4] = ["none", "packed", "fido-u2f", "tpm"];

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Case<'a> {
    pub uv_required: bool,
    pub format: &'static str,
    pub stored_sign_count: u32,
    pub stored_key: &'a [u8],
    pub credential_id: &'a [u8],
    pub authenticator_data: &'a [u8],
    pub signature: &'a [u8],
    pub attestation_statement: &'a [u8],
}

impl<'a> Case<'a> {
    pub fn decode(data: &'a [u8]) -> Self {
        let (options, rest) = data.split_first().map_or((0, &[][..]), |(o, r)| (*o, r));
        let (count, mut rest) = rest.split_at(rest.len().min(4));
        let mut count_bytes = [0u8; 4];
        count_bytes[..count.len()].copy_from_slice(count);
        let mut field = || {
            let (len, tail) = rest.split_at(rest.len().min(2));
            let len = match len {
                [hi, lo] => usize::from(u16::from_be_bytes([*hi, *lo])),
                _ => 0,
            };
            let (value, tail) = tail.split_at(tail.len().min(len));
            rest = tail;
            value
        };
        Case {
            uv_required: options & 1 != 0,
            format: FORMATS[usize::from((options >> 1) & 3)],
            stored_sign_count: u32::from_be_bytes(count_bytes),
            stored_key: field(),
            credential_id: field(),
            authenticator_data: field(),
            signature: field(),
            attestation_statement: field(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let format = FORMATS.iter().position(|f| *f == self.format).unwrap_or(0) as u8;
        let mut out = vec![u8::from(self.uv_required) | (format << 1)];
        out.extend_from_slice(&self.stored_sign_count.to_be_bytes());
        for field in [
            self.stored_key,
            self.credential_id,
            self.authenticator_data,
            self.signature,
            self.attestation_statement,
        ] {
            let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&field[..usize::from(len)]);
        }
        out
    }
}
