//! Authenticator data (WebAuthn §6.1, CTAP2 §6.1) as a FIDO2 key builds it,
//! and the few CBOR items it holds. The CBOR is written by hand: only
//! definite-length byte strings, small maps and small integers occur, in
//! CTAP2's canonical order.

use sha2::{Digest, Sha256};

pub const FLAG_UP: u8 = 0x01;
pub const FLAG_UV: u8 = 0x04;
pub const FLAG_AT: u8 = 0x40;
pub const FLAG_ED: u8 = 0x80;

/// `rpIdHash ‖ flags ‖ signCount`: the whole authenticator data of an
/// assertion (no extensions), and the head of a registration's.
pub fn head(application: &str, flags: u8, counter: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(37);
    out.extend_from_slice(&Sha256::digest(application.as_bytes()));
    out.push(flags);
    out.extend_from_slice(&counter.to_be_bytes());
    out
}

/// A registration's authenticator data: the head, attested credential data
/// (AAGUID, credential id, COSE key) and, with `cred_protect`, the
/// extensions map `{"credProtect": level}` (flag ED).
pub fn registration(
    application: &str,
    flags: u8,
    counter: u32,
    aaguid: &[u8; 16],
    credential_id: &[u8],
    cose_key: &[u8],
    cred_protect: Option<u8>,
) -> Vec<u8> {
    let mut flags = flags | FLAG_AT;
    if cred_protect.is_some() {
        flags |= FLAG_ED;
    }
    let mut out = head(application, flags, counter);
    out.extend_from_slice(aaguid);
    // Key handles are 67 bytes: the length always fits.
    out.extend_from_slice(&(credential_id.len() as u16).to_be_bytes());
    out.extend_from_slice(credential_id);
    out.extend_from_slice(cose_key);
    if let Some(level) = cred_protect {
        out.push(0xa1); // map(1)
        text(&mut out, "credProtect");
        uint(&mut out, u64::from(level));
    }
    out
}

/// COSE_Key of a P-256 key (kty EC2, alg ES256, crv P-256, x, y).
pub fn cose_es256(x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut out = vec![0xa5]; // map(5)
    int(&mut out, 1);
    int(&mut out, 2); // kty: EC2
    int(&mut out, 3);
    int(&mut out, -7); // alg: ES256
    int(&mut out, -1);
    int(&mut out, 1); // crv: P-256
    int(&mut out, -2);
    bytes(&mut out, x);
    int(&mut out, -3);
    bytes(&mut out, y);
    out
}

/// COSE_Key of an Ed25519 key (kty OKP, alg EdDSA, crv Ed25519, x).
pub fn cose_ed25519(public: &[u8]) -> Vec<u8> {
    let mut out = vec![0xa4]; // map(4)
    int(&mut out, 1);
    int(&mut out, 1); // kty: OKP
    int(&mut out, 3);
    int(&mut out, -8); // alg: EdDSA
    int(&mut out, -1);
    int(&mut out, 6); // crv: Ed25519
    int(&mut out, -2);
    bytes(&mut out, public);
    out
}

/// `data` as one CBOR byte string: what libfido2's
/// `fido_cred_authdata_ptr()` returns, and so what sk-usbhid hands OpenSSH.
pub fn cbor_byte_string(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 9);
    bytes(&mut out, data);
    out
}

fn header(out: &mut Vec<u8>, major: u8, value: u64) {
    let major = major << 5;
    match value {
        0..=23 => out.push(major | value as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, value as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(value as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(value as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&value.to_be_bytes());
        }
    }
}

fn uint(out: &mut Vec<u8>, value: u64) {
    header(out, 0, value);
}

fn int(out: &mut Vec<u8>, value: i64) {
    if value >= 0 {
        header(out, 0, value as u64);
    } else {
        header(out, 1, (-1 - value) as u64);
    }
}

fn bytes(out: &mut Vec<u8>, data: &[u8]) {
    header(out, 2, data.len() as u64);
    out.extend_from_slice(data);
}

fn text(out: &mut Vec<u8>, data: &str) {
    header(out, 3, data.len() as u64);
    out.extend_from_slice(data.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cbor_heads_at_the_length_boundaries() {
        assert_eq!(cbor_byte_string(&[7; 23])[..1], [0x57]);
        assert_eq!(cbor_byte_string(&[7; 24])[..2], [0x58, 24]);
        assert_eq!(cbor_byte_string(&[7; 256])[..3], [0x59, 1, 0]);
        let mut out = Vec::new();
        int(&mut out, -7);
        int(&mut out, -25);
        assert_eq!(out, [0x26, 0x38, 24]);
    }

    #[test]
    fn registration_layout() {
        let data = registration("ssh:", FLAG_UP, 5, &[9; 16], &[1, 2, 3], &[0xa0], Some(3));
        assert_eq!(data[32], FLAG_UP | FLAG_AT | FLAG_ED);
        assert_eq!(data[33..37], [0, 0, 0, 5]);
        assert_eq!(data[37..53], [9; 16]);
        assert_eq!(data[53..55], [0, 3]);
        assert_eq!(data[55..58], [1, 2, 3]);
        assert_eq!(data[58], 0xa0);
        assert_eq!(&data[59..], b"\xa1\x6bcredProtect\x03");
    }
}
