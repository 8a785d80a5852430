//! A test CA and server certificates made with OpenSSL: a good one (for
//! 127.0.0.1 and localhost) and an expired one.

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509NameBuilder, X509};
use std::path::Path;

/// A certificate and its key, as PEM.
pub struct Pem {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

impl Pem {
    /// Writes NAME.crt and NAME.key into `dir`.
    pub fn write(&self, dir: &Path, name: &str) {
        std::fs::write(dir.join(format!("{name}.crt")), &self.cert)
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(dir.join(format!("{name}.key")), &self.key)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

pub struct Certs {
    ca_key: PKey<Private>,
    ca: X509,
    pub server: Pem,
}

fn key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap_or_else(|e| panic!("{e}"));
    EcKey::generate(&group)
        .and_then(PKey::from_ec_key)
        .unwrap_or_else(|e| panic!("{e}"))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(0))
        .unwrap_or(0)
}

const DAY: i64 = 86_400;

fn build(
    cn: &str,
    serial: u32,
    key: &PKey<Private>,
    issuer: Option<(&X509, &PKey<Private>)>,
    valid: (i64, i64),
) -> X509 {
    let run = || -> Result<X509, openssl::error::ErrorStack> {
        let mut name = X509NameBuilder::new()?;
        name.append_entry_by_text("CN", cn)?;
        let name = name.build();
        let mut b = X509::builder()?;
        b.set_version(2)?;
        let serial = BigNum::from_u32(serial)?.to_asn1_integer()?;
        b.set_serial_number(&serial)?;
        b.set_subject_name(&name)?;
        b.set_pubkey(key)?;
        let (from, until) = (Asn1Time::from_unix(valid.0)?, Asn1Time::from_unix(valid.1)?);
        b.set_not_before(&from)?;
        b.set_not_after(&until)?;
        match issuer {
            None => {
                b.set_issuer_name(&name)?;
                b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
                b.append_extension(KeyUsage::new().critical().key_cert_sign().build()?)?;
                b.sign(key, MessageDigest::sha256())?;
            }
            Some((ca, ca_key)) => {
                b.set_issuer_name(ca.subject_name())?;
                let san = SubjectAlternativeName::new()
                    .dns("localhost")
                    .ip("127.0.0.1")
                    .build(&b.x509v3_context(Some(ca), None))?;
                b.append_extension(san)?;
                b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
                b.sign(ca_key, MessageDigest::sha256())?;
            }
        }
        Ok(b.build())
    };
    run().unwrap_or_else(|e| panic!("certificate {cn}: {e}"))
}

fn pem(cert: &X509, key: &PKey<Private>) -> Pem {
    Pem {
        cert: cert.to_pem().unwrap_or_else(|e| panic!("{e}")),
        key: key
            .private_key_to_pem_pkcs8()
            .unwrap_or_else(|e| panic!("{e}")),
    }
}

impl Default for Certs {
    fn default() -> Certs {
        Certs::new()
    }
}

impl Certs {
    pub fn new() -> Certs {
        let ca_key = key();
        let ca = build(
            "pam_tap test CA",
            1,
            &ca_key,
            None,
            (now() - DAY, now() + 30 * DAY),
        );
        let server_key = key();
        let server = build(
            "pam_tap test db",
            2,
            &server_key,
            Some((&ca, &ca_key)),
            (now() - DAY, now() + 30 * DAY),
        );
        let server = pem(&server, &server_key);
        Certs { ca_key, ca, server }
    }

    pub fn ca_pem(&self, path: &Path) {
        std::fs::write(path, self.ca.to_pem().unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Signed by the test CA, for the right names, but past its end.
    pub fn expired(&self) -> Pem {
        let key = key();
        let cert = build(
            "pam_tap test db (expired)",
            3,
            &key,
            Some((&self.ca, &self.ca_key)),
            (now() - 10 * DAY, now() - DAY),
        );
        pem(&cert, &key)
    }
}
