use std::path::Path;
use std::process::Command;

use super::*;
use crate::keys::testkit::TestKey;
use crate::ssh::wire::put_string;

fn blob(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        put_string(&mut out, field);
    }
    out
}

fn line_of(blob: &[u8]) -> String {
    let name = Reader::new(blob).string().unwrap();
    format!(
        "{} {}",
        std::str::from_utf8(name).unwrap(),
        STANDARD.encode(blob)
    )
}

fn sk_ed25519(public: &[u8], application: &[u8]) -> Vec<u8> {
    blob(&[SshKeyType::SkEd25519.name().as_bytes(), public, application])
}

fn sk_ecdsa(point: &[u8], application: &[u8]) -> Vec<u8> {
    blob(&[
        SshKeyType::SkEcdsaP256.name().as_bytes(),
        b"nistp256",
        point,
        application,
    ])
}

fn ed25519(public: &[u8]) -> Vec<u8> {
    blob(&[b"ssh-ed25519", public])
}

/// An RSA blob with a modulus of exactly `bits` bits (not a real key:
/// only its shape matters here).
fn rsa(bits: usize) -> Vec<u8> {
    let mut n = vec![0xa5u8; bits.div_ceil(8)];
    let top_bits = bits - (n.len() - 1) * 8;
    n[0] = 0xff >> (8 - top_bits) | 1 << (top_bits - 1);
    *n.last_mut().unwrap() |= 1;
    if n[0] & 0x80 != 0 {
        n.insert(0, 0);
    }
    blob(&[b"ssh-rsa", &[1, 0, 1], &n])
}

fn refused(line: &str) -> KeyLineError {
    SshPublicKey::parse_line(line).unwrap_err()
}

fn refused_blob(blob: &[u8]) -> KeyLineError {
    let error = SshPublicKey::from_blob(blob).unwrap_err();
    // The same refusal through a line, unless the line check says it first.
    if let Ok(name) = Reader::new(blob).string() {
        if std::str::from_utf8(name).is_ok_and(|n| SshKeyType::from_name(n).is_some()) {
            assert_eq!(refused(&line_of(blob)), error, "{blob:02x?}");
        }
    }
    error
}

fn sample_lines() -> Vec<String> {
    let ed = TestKey::eddsa();
    let ec = TestKey::es256();
    vec![
        line_of(&sk_ed25519(&ed.ed_public(), b"ssh:")) + " alice@laptop",
        line_of(&sk_ecdsa(&ec.sec1(), b"ssh:pam_tap")),
        line_of(&ed25519(&ed.ed_public())) + " a comment with spaces",
        line_of(&rsa(2048)),
    ]
}

#[test]
fn type_names_round_trip() {
    for key_type in SshKeyType::ALL {
        assert_eq!(SshKeyType::from_name(key_type.name()), Some(key_type));
        assert_eq!(key_type.to_string(), key_type.name());
    }
    assert_eq!(
        SshKeyType::DEFAULT_ALLOWED.map(SshKeyType::is_security_key),
        [true, true]
    );
    assert_eq!(
        SshKeyType::ALL
            .iter()
            .filter(|t| t.is_security_key())
            .count(),
        2
    );
    for unknown in [
        "ssh-dss",
        "SSH-ED25519",
        "ssh-ed25519-cert-v01@openssh.com",
        "",
    ] {
        assert_eq!(SshKeyType::from_name(unknown), None);
    }
}

#[test]
fn parses_security_key_lines() {
    let ed = TestKey::eddsa();
    let blob = sk_ed25519(&ed.ed_public(), b"ssh:");
    let key = SshPublicKey::parse_line(&(line_of(&blob) + " alice@laptop\n")).unwrap();
    assert_eq!(key.key_type, SshKeyType::SkEd25519);
    assert_eq!(key.application.as_deref(), Some("ssh:"));
    assert_eq!(key.comment, "alice@laptop");
    assert_eq!(key.blob, blob);
    assert_eq!(key.sk_public_key(), Some(&ed.ed_public()[..]));
    assert_eq!(key.to_line(), line_of(&blob));

    let ec = TestKey::es256();
    let blob = sk_ecdsa(&ec.sec1(), b"ssh:work");
    let key = SshPublicKey::parse_line(&line_of(&blob)).unwrap();
    assert_eq!(key.key_type, SshKeyType::SkEcdsaP256);
    assert_eq!(key.application.as_deref(), Some("ssh:work"));
    assert_eq!(key.comment, "");
    assert_eq!(key.sk_public_key(), Some(&ec.sec1()[..]));
    assert_eq!(SshPublicKey::from_blob(&blob).unwrap(), key);
}

#[test]
fn plain_keys_have_no_application_or_sk_key() {
    let key = SshPublicKey::from_blob(&ed25519(&TestKey::eddsa().ed_public())).unwrap();
    assert_eq!(key.application, None);
    assert_eq!(key.sk_public_key(), None);
    let key = SshPublicKey::from_blob(&rsa(3072)).unwrap();
    assert_eq!(key.key_type, SshKeyType::Rsa);
    assert_eq!(key.sk_public_key(), None);
}

#[test]
fn blanks_around_and_between_fields_are_fine() {
    let blob = ed25519(&TestKey::eddsa().ed_public());
    let encoded = STANDARD.encode(&blob);
    for line in [
        format!("  ssh-ed25519 {encoded}\n"),
        format!("\tssh-ed25519\t\t{encoded} \t"),
        format!("ssh-ed25519  {encoded}   me@host  \n"),
    ] {
        let key = SshPublicKey::parse_line(&line).unwrap();
        assert_eq!(key.blob, blob, "{line:?}");
        assert_eq!(key.to_line(), format!("ssh-ed25519 {encoded}"));
    }
    let key = SshPublicKey::parse_line(&format!("ssh-ed25519 {encoded} one  two three")).unwrap();
    assert_eq!(key.comment, "one  two three");
    // Tabs separate fields but are not allowed inside the comment.
    assert_eq!(
        refused(&format!("ssh-ed25519 {encoded} a\tb")),
        KeyLineError::CommentInvalid
    );
}

#[test]
fn fingerprint_is_sha256_of_the_blob() {
    let key = SshPublicKey::from_blob(&ed25519(&TestKey::eddsa().ed_public())).unwrap();
    let expected = format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(Sha256::digest(&key.blob))
    );
    assert_eq!(key.fingerprint(), expected);
    assert_eq!(key.fingerprint().len(), "SHA256:".len() + 43);
}

#[test]
fn options_are_refused() {
    let line = line_of(&sk_ed25519(&TestKey::eddsa().ed_public(), b"ssh:"));
    for options in [
        "command=\"/bin/sh\"",
        "command=\"rm -rf /\",no-pty",
        "no-pty",
        "restrict",
        "verify-required",
        "no-touch-required",
        "from=\"10.0.0.1\"",
        "environment=\"A=b\"",
        "cert-authority",
        "RESTRICT",
        "tunnel=\"1\"",
        "unknown-option",
    ] {
        assert_eq!(
            refused(&format!("{options} {line}")),
            KeyLineError::OptionsNotAllowed,
            "{options}"
        );
    }
    // An option alone, or before a type we do not know, still reads as options.
    assert_eq!(refused("restrict"), KeyLineError::OptionsNotAllowed);
    assert_eq!(
        refused("command=\"x\" ssh-dss AAAA"),
        KeyLineError::OptionsNotAllowed
    );
}

#[test]
fn unknown_types_are_refused_with_their_name() {
    let blob = STANDARD.encode(ed25519(&TestKey::eddsa().ed_public()));
    for name in [
        "ssh-dss",
        "ssh-ed25519-cert-v01@openssh.com",
        "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
        "Ssh-ed25519",
        "#",
    ] {
        assert_eq!(
            refused(&format!("{name} {blob}")),
            KeyLineError::UnknownType(name.into())
        );
    }
    // Long names are cut, and shown escaped.
    let long = "x".repeat(500);
    let error = refused(&long);
    assert_eq!(error, KeyLineError::UnknownType("x".repeat(64)));
    assert_eq!(
        KeyLineError::UnknownType("a\"b".into()).to_string(),
        "unsupported key type \"a\\\"b\""
    );
}

#[test]
fn line_shape_is_enforced() {
    let line = sample_lines().remove(0);
    assert_eq!(refused(""), KeyLineError::Empty);
    assert_eq!(refused(" \t\n"), KeyLineError::Empty);
    assert_eq!(refused("\n\n"), KeyLineError::MultipleLines);
    assert_eq!(
        refused(&format!("{line}\n{line}")),
        KeyLineError::MultipleLines
    );
    assert_eq!(refused(&format!("{line}\n\n")), KeyLineError::MultipleLines);
    for control in ["\r", "\0", "\x1b", "\x7f", "\u{85}", "\x0b", "\x0c"] {
        assert_eq!(
            refused(&format!("{line}{control}")),
            KeyLineError::ControlCharacter,
            "{control:?}"
        );
        assert_eq!(
            refused(&format!("{control}{line}")),
            KeyLineError::ControlCharacter
        );
    }
    assert_eq!(
        refused(&format!("{line}\r\n")),
        KeyLineError::ControlCharacter
    );
    assert_eq!(
        refused("sk-ssh-ed25519@openssh.com"),
        KeyLineError::MissingBlob
    );
    assert_eq!(
        refused("sk-ssh-ed25519@openssh.com   \t"),
        KeyLineError::MissingBlob
    );
}

#[test]
fn huge_lines_are_refused_before_reading() {
    let line = sample_lines().remove(0);
    let padded = format!("{line} {}", "c".repeat(MAX_LINE_LEN - line.len()));
    assert_eq!(padded.len(), MAX_LINE_LEN + 1);
    assert_eq!(refused(&padded), KeyLineError::LineTooLong);
    assert_eq!(refused(&"A".repeat(10 << 20)), KeyLineError::LineTooLong);
    // A huge blob inside the limit is bounded on its own.
    let big = STANDARD.encode(vec![0u8; MAX_BLOB_LEN + 100]);
    assert_eq!(
        refused(&format!("ssh-rsa {big}")),
        KeyLineError::BlobTooLong
    );
    assert_eq!(
        SshPublicKey::from_blob(&vec![0; MAX_BLOB_LEN + 1]),
        Err(KeyLineError::BlobTooLong)
    );
    // Exactly the limit is fine.
    let exact = format!("{line} {}", "c".repeat(MAX_LINE_LEN - line.len() - 1));
    assert_eq!(refused(&exact), KeyLineError::CommentTooLong);
}

#[test]
fn base64_must_be_canonical() {
    let blob = sk_ed25519(&TestKey::eddsa().ed_public(), b"ssh:");
    let encoded = STANDARD.encode(&blob);
    let name = SshKeyType::SkEd25519.name();
    assert!(SshPublicKey::parse_line(&format!("{name} {encoded}")).is_ok());
    let unpadded = encoded.trim_end_matches('=');
    assert_ne!(unpadded, encoded, "test needs a padded encoding");
    // Set a padding bit: the last character before '=' carries unused low bits.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bad_bits = encoded.clone().into_bytes();
    let last = bad_bits.iter().rposition(|b| *b != b'=').unwrap();
    let value = ALPHABET.iter().position(|c| *c == bad_bits[last]).unwrap();
    bad_bits[last] = ALPHABET[value ^ 1];
    let bad_bits = String::from_utf8(bad_bits).unwrap();
    let url_safe = encoded.replace('+', "-").replace('/', "_");
    for bad in [
        unpadded.to_owned(),
        format!("{encoded}="),
        bad_bits,
        format!("{}*{}", &encoded[..8], &encoded[9..]),
        "====".to_owned(),
    ] {
        assert_eq!(
            refused(&format!("{name} {bad}")),
            KeyLineError::Base64,
            "{bad}"
        );
    }
    if url_safe != encoded {
        assert_eq!(refused(&format!("{name} {url_safe}")), KeyLineError::Base64);
    }
}

#[test]
fn blob_type_must_match_the_line() {
    let sk = sk_ed25519(&TestKey::eddsa().ed_public(), b"ssh:");
    let error = refused(&format!("ssh-ed25519 {}", STANDARD.encode(&sk)));
    assert_eq!(
        error,
        KeyLineError::TypeMismatch {
            line: SshKeyType::Ed25519,
            blob: SshKeyType::SkEd25519.name().into()
        }
    );
    assert!(error.to_string().contains("sk-ssh-ed25519@openssh.com"));
    // A blob whose type we do not know at all.
    let dss = blob(&[b"ssh-dss", b"p", b"q", b"g", b"y"]);
    assert!(matches!(
        refused(&format!("ssh-ed25519 {}", STANDARD.encode(&dss))),
        KeyLineError::TypeMismatch { .. }
    ));
    assert_eq!(
        SshPublicKey::from_blob(&dss),
        Err(KeyLineError::UnknownType("ssh-dss".into()))
    );
}

#[test]
fn every_truncation_and_trailing_byte_is_refused() {
    let ed = TestKey::eddsa();
    let ec = TestKey::es256();
    let p384 = p384::SecretKey::random(&mut p256::elliptic_curve::rand_core::OsRng);
    let p384_point = p384.public_key().to_sec1_bytes();
    for blob in [
        sk_ed25519(&ed.ed_public(), b"ssh:"),
        sk_ecdsa(&ec.sec1(), b"ssh:"),
        ed25519(&ed.ed_public()),
        blob(&[b"ecdsa-sha2-nistp256", b"nistp256", &ec.sec1()]),
        blob(&[b"ecdsa-sha2-nistp384", b"nistp384", &p384_point]),
        rsa(2048),
    ] {
        assert!(SshPublicKey::from_blob(&blob).is_ok());
        for len in 0..blob.len() {
            let error = SshPublicKey::from_blob(&blob[..len]).unwrap_err();
            // Cuts inside a length field or a string are truncations; a cut
            // inside a fixed-size value may first be a wrong length.
            assert!(
                matches!(
                    error,
                    KeyLineError::Truncated
                        | KeyLineError::WrongLength
                        | KeyLineError::UnknownType(_)
                        | KeyLineError::CurveMismatch
                        | KeyLineError::MalformedRsa
                        | KeyLineError::RsaTooSmall { .. }
                        | KeyLineError::ApplicationEmpty
                ),
                "{len}: {error:?}"
            );
            assert!(SshPublicKey::parse_line(&line_of_prefix(&blob, len)).is_err());
        }
        let mut trailing = blob.clone();
        trailing.push(0);
        assert_eq!(refused_blob(&trailing), KeyLineError::TrailingBytes);
        let mut extra_field = blob.clone();
        put_string(&mut extra_field, b"");
        assert_eq!(refused_blob(&extra_field), KeyLineError::TrailingBytes);
    }
}

/// A line with the type of `blob` and only `len` bytes of it.
fn line_of_prefix(blob: &[u8], len: usize) -> String {
    let name = Reader::new(blob).string().unwrap();
    format!(
        "{} {}",
        std::str::from_utf8(name).unwrap(),
        STANDARD.encode(&blob[..len])
    )
}

#[test]
fn ed25519_keys_must_be_valid_points() {
    let public = TestKey::eddsa().ed_public();
    assert_eq!(
        refused_blob(&ed25519(&public[..31])),
        KeyLineError::WrongLength
    );
    assert_eq!(
        refused_blob(&ed25519(&[&public[..], &[0]].concat())),
        KeyLineError::WrongLength
    );
    assert_eq!(
        refused_blob(&sk_ed25519(&[], b"ssh:")),
        KeyLineError::WrongLength
    );
    // The identity (small order), and a y with no point on the curve.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert_eq!(
        refused_blob(&ed25519(&identity)),
        KeyLineError::InvalidPoint
    );
    assert_eq!(
        refused_blob(&sk_ed25519(&identity, b"ssh:")),
        KeyLineError::InvalidPoint
    );
    let mut no_point = [0u8; 32];
    no_point[0] = 2;
    assert_eq!(
        refused_blob(&ed25519(&no_point)),
        KeyLineError::InvalidPoint
    );
}

#[test]
fn ecdsa_points_and_curves_are_checked() {
    let point = TestKey::es256().sec1();
    let mut off_curve = point.clone();
    off_curve[64] ^= 1;
    assert_eq!(
        refused_blob(&sk_ecdsa(&off_curve, b"ssh:")),
        KeyLineError::InvalidPoint
    );
    let mut not_uncompressed = point.clone();
    not_uncompressed[0] = 0x03;
    assert_eq!(
        refused_blob(&sk_ecdsa(&not_uncompressed, b"ssh:")),
        KeyLineError::InvalidPoint
    );
    // A compressed point, as 33 bytes.
    let mut compressed = point[..33].to_vec();
    compressed[0] = 0x02 | (point[64] & 1);
    assert_eq!(
        refused_blob(&sk_ecdsa(&compressed, b"ssh:")),
        KeyLineError::WrongLength
    );
    assert_eq!(
        refused_blob(&sk_ecdsa(&[4; 65], b"ssh:")),
        KeyLineError::InvalidPoint
    );
    let mut zero = vec![0u8; 65];
    zero[0] = 4;
    assert_eq!(
        refused_blob(&blob(&[b"ecdsa-sha2-nistp256", b"nistp256", &zero])),
        KeyLineError::InvalidPoint
    );
    // Curve names that disagree with the type.
    for curve in [&b"nistp384"[..], b"nistp521", b"", b"NISTP256"] {
        assert_eq!(
            refused_blob(&blob(&[
                SshKeyType::SkEcdsaP256.name().as_bytes(),
                curve,
                &point,
                b"ssh:"
            ])),
            KeyLineError::CurveMismatch
        );
    }
    assert_eq!(
        refused_blob(&blob(&[b"ecdsa-sha2-nistp384", b"nistp256", &point])),
        KeyLineError::CurveMismatch
    );
    // A P-256 point under the P-384 type: wrong length for the curve.
    assert_eq!(
        refused_blob(&blob(&[b"ecdsa-sha2-nistp384", b"nistp384", &point])),
        KeyLineError::WrongLength
    );
    let mut p521 = vec![4u8; 133];
    p521[1] = 0xff;
    assert_eq!(
        refused_blob(&blob(&[b"ecdsa-sha2-nistp521", b"nistp521", &p521])),
        KeyLineError::InvalidPoint
    );
}

#[test]
fn sk_applications_are_checked() {
    let public = TestKey::eddsa().ed_public();
    let point = TestKey::es256().sec1();
    let longest = vec![b'a'; MAX_APPLICATION_LEN];
    let key = SshPublicKey::from_blob(&sk_ed25519(&public, &longest)).unwrap();
    assert_eq!(key.application.unwrap().len(), 255);
    let too_long = vec![b'a'; MAX_APPLICATION_LEN + 1];
    for (application, error) in [
        (&b""[..], KeyLineError::ApplicationEmpty),
        (&too_long[..], KeyLineError::ApplicationTooLong),
        (b"ssh:\xff", KeyLineError::ApplicationInvalid),
        (b"ssh:\0x", KeyLineError::ApplicationInvalid),
        (b"ssh:\n", KeyLineError::ApplicationInvalid),
        ("ssh:\u{202e}".as_bytes(), KeyLineError::ApplicationInvalid),
    ] {
        assert_eq!(refused_blob(&sk_ed25519(&public, application)), error);
        assert_eq!(refused_blob(&sk_ecdsa(&point, application)), error);
    }
    // A missing application is a truncation.
    assert_eq!(
        refused_blob(&blob(&[SshKeyType::SkEd25519.name().as_bytes(), &public])),
        KeyLineError::Truncated
    );
}

#[test]
fn rsa_keys_are_checked() {
    for bits in [2048, 2049, 3072, 4096, MAX_RSA_BITS] {
        assert!(SshPublicKey::from_blob(&rsa(bits)).is_ok(), "{bits}");
    }
    assert_eq!(
        refused_blob(&rsa(2047)),
        KeyLineError::RsaTooSmall { bits: 2047 }
    );
    assert_eq!(
        refused_blob(&rsa(1024)),
        KeyLineError::RsaTooSmall { bits: 1024 }
    );
    assert_eq!(
        refused_blob(&rsa(MAX_RSA_BITS + 1)),
        KeyLineError::RsaTooLarge {
            bits: MAX_RSA_BITS + 1
        }
    );
    let good = rsa(2048);
    let mut reader = Reader::new(&good);
    reader.string().unwrap();
    reader.string().unwrap();
    let n = reader.string().unwrap().to_vec();
    let with = |e: &[u8], n: &[u8]| blob(&[b"ssh-rsa", e, n]);
    let negative_n = n[1..].to_vec(); // drops the sign byte: MSB set
    let padded_n = [&[0u8][..], &n].concat();
    let mut even_n = n.clone();
    *even_n.last_mut().unwrap() &= !1;
    for (e, n) in [
        (&[0x01, 0x00, 0x01][..], &negative_n[..]),
        (&[0x01, 0x00, 0x01][..], &padded_n[..]),
        (&[0x00, 0x01, 0x00, 0x01][..], &n[..]),
        (&[0x81][..], &n[..]),
        (&[0x01][..], &n[..]),
        (&[0x02][..], &n[..]),
        (&[][..], &n[..]),
        (&[0x01, 0x00, 0x01][..], &even_n[..]),
    ] {
        assert_eq!(
            refused_blob(&with(e, n)),
            KeyLineError::MalformedRsa,
            "{e:02x?}"
        );
    }
    assert!(SshPublicKey::from_blob(&with(&[3], &n)).is_ok());
    assert!(matches!(
        refused_blob(&with(&[3], &[])),
        KeyLineError::MalformedRsa
    ));
}

#[test]
fn comments_are_checked() {
    let line = sample_lines().remove(1);
    let longest = "c".repeat(MAX_COMMENT_LEN);
    let key = SshPublicKey::parse_line(&format!("{line} {longest}")).unwrap();
    assert_eq!(key.comment, longest);
    assert_eq!(
        refused(&format!("{line} {longest}c")),
        KeyLineError::CommentTooLong
    );
    let key = SshPublicKey::parse_line(&format!("{line} José's laptop ✓")).unwrap();
    assert_eq!(key.comment, "José's laptop ✓");
    for bad in ["a\tb", "evil\u{202e}gpj.exe", "x\u{2066}y"] {
        assert_eq!(
            refused(&format!("{line} {bad}")),
            KeyLineError::CommentInvalid,
            "{bad:?}"
        );
    }
    // The comment never comes back out.
    assert_eq!(key.to_line(), line);
}

#[test]
fn errors_have_messages() {
    let errors = [
        KeyLineError::LineTooLong,
        KeyLineError::OptionsNotAllowed,
        KeyLineError::RsaTooSmall { bits: 1024 },
        KeyLineError::ApplicationTooLong,
    ];
    let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(texts[0], "key line is longer than 8192 bytes");
    assert!(texts[1].contains("options"));
    assert_eq!(
        texts[2],
        "RSA key has 1024 bits; at least 2048 are required"
    );
    assert!(texts[3].contains("255"));
}

/// A small deterministic generator, so a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn mutate(rng: &mut XorShift, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(4) {
            0 if !out.is_empty() => {
                let at = rng.below(out.len());
                out[at] ^= 1 << rng.below(8);
            }
            1 if !out.is_empty() => {
                let at = rng.below(out.len());
                out[at] = rng.next() as u8;
            }
            2 => {
                let at = rng.below(out.len() + 1);
                out.insert(at, rng.next() as u8);
            }
            _ if !out.is_empty() => {
                let at = rng.below(out.len());
                out.truncate(at);
            }
            _ => {}
        }
    }
    out
}

#[test]
fn mutated_lines_and_blobs_never_panic() {
    let mut rng = XorShift(0x5eed_cafe_f00d_0001);
    let lines = sample_lines();
    let mut accepted = 0;
    for round in 0..20_000 {
        let line = &lines[round % lines.len()];
        let (_, rest) = split_field(line);
        let blob = STANDARD.decode(split_field(rest).0).unwrap();
        let mutated = mutate(&mut rng, &blob);
        if let Ok(key) = SshPublicKey::from_blob(&mutated) {
            accepted += 1;
            // Whatever is accepted prints and reads back as itself.
            assert_eq!(SshPublicKey::parse_line(&key.to_line()).unwrap(), key);
        }
        let mutated_line = String::from_utf8_lossy(&mutate(&mut rng, line.as_bytes())).into_owned();
        if let Ok(key) = SshPublicKey::parse_line(&mutated_line) {
            let again = SshPublicKey::parse_line(&key.to_line()).unwrap();
            assert_eq!(again.blob, key.blob);
            // Exactly "TYPE BASE64": nothing of the input's text besides.
            let printed = key.to_line();
            let fields: Vec<&str> = printed.split(' ').collect();
            assert_eq!(fields, [key.key_type.name(), &STANDARD.encode(&key.blob)]);
        }
        // Also the mutated blob under its line's own type name.
        let _ = SshPublicKey::parse_line(&line_of_prefix_or_raw(line, &mutated));
    }
    // Mutations that keep a key valid are rare but not absent (comments,
    // an RSA modulus' middle bytes).
    assert!(accepted > 0);
}

fn line_of_prefix_or_raw(line: &str, blob: &[u8]) -> String {
    let (name, _) = split_field(line);
    format!("{name} {}", STANDARD.encode(blob))
}

// Real OpenSSH: keys made and fingerprinted by the system's ssh-keygen.

fn ssh_keygen(args: &[&str]) -> String {
    let output = Command::new("ssh-keygen")
        .args(args)
        .output()
        .expect("ssh-keygen must be installed (openssh-client; tests/install-deps.sh)");
    assert!(
        output.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `ssh-keygen -lf FILE`: "BITS SHA256:... COMMENT (TYPE)" → the fingerprint.
fn keygen_fingerprint(path: &Path) -> String {
    let out = ssh_keygen(&["-E", "sha256", "-lf", path.to_str().unwrap()]);
    out.split_whitespace().nth(1).unwrap().to_owned()
}

#[test]
fn real_ssh_keygen_keys_parse_and_fingerprint_alike() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str], SshKeyType); 6] = [
        ("ed25519", &["-t", "ed25519"], SshKeyType::Ed25519),
        ("p256", &["-t", "ecdsa", "-b", "256"], SshKeyType::EcdsaP256),
        ("p384", &["-t", "ecdsa", "-b", "384"], SshKeyType::EcdsaP384),
        ("p521", &["-t", "ecdsa", "-b", "521"], SshKeyType::EcdsaP521),
        ("rsa2048", &["-t", "rsa", "-b", "2048"], SshKeyType::Rsa),
        ("rsa3072", &["-t", "rsa", "-b", "3072"], SshKeyType::Rsa),
    ];
    for (name, args, key_type) in cases {
        let path = dir.path().join(name);
        let comment = format!("{name}@pam_tap-test");
        let path_text = path.to_str().unwrap();
        let mut full = vec!["-q", "-N", "", "-C", &comment, "-f", path_text];
        full.extend_from_slice(args);
        ssh_keygen(&full);
        let pub_path = path.with_extension("pub");
        let text = std::fs::read_to_string(&pub_path).unwrap();
        let key = SshPublicKey::parse_line(&text).unwrap();
        assert_eq!(key.key_type, key_type, "{name}");
        assert_eq!(key.comment, comment);
        assert_eq!(format!("{} {comment}\n", key.to_line()), text);
        assert_eq!(key.fingerprint(), keygen_fingerprint(&pub_path), "{name}");
        assert_eq!(key.application, None);
    }
    // ssh-keygen still makes 1024-bit RSA keys; we do not take them.
    let path = dir.path().join("rsa1024");
    ssh_keygen(&[
        "-q",
        "-N",
        "",
        "-t",
        "rsa",
        "-b",
        "1024",
        "-f",
        path.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    assert_eq!(refused(&text), KeyLineError::RsaTooSmall { bits: 1024 });
}

#[test]
fn real_ssh_keygen_reads_our_security_key_lines() {
    // Made per PROTOCOL.u2f; OpenSSH parsing them and printing the same
    // fingerprint shows the layout is OpenSSH's.
    let dir = tempfile::tempdir().unwrap();
    let ed = TestKey::eddsa();
    let ec = TestKey::es256();
    for (name, blob, label) in [
        ("ed", sk_ed25519(&ed.ed_public(), b"ssh:"), "(ED25519-SK)"),
        ("ec", sk_ecdsa(&ec.sec1(), b"ssh:pam_tap"), "(ECDSA-SK)"),
    ] {
        let key = SshPublicKey::parse_line(&(line_of(&blob) + " me@laptop")).unwrap();
        let path = dir.path().join(format!("{name}.pub"));
        std::fs::write(&path, format!("{}\n", key.to_line())).unwrap();
        let out = ssh_keygen(&["-E", "sha256", "-lf", path.to_str().unwrap()]);
        assert!(out.contains(&key.fingerprint()), "{out}");
        assert!(out.trim_end().ends_with(label), "{out}");
        // And ssh-keygen writes the same line back (-e -m RFC4716 round trip).
        let rfc = ssh_keygen(&["-e", "-f", path.to_str().unwrap()]);
        let rfc_path = dir.path().join(format!("{name}.rfc"));
        std::fs::write(&rfc_path, rfc).unwrap();
        let back = ssh_keygen(&["-i", "-f", rfc_path.to_str().unwrap()]);
        assert_eq!(SshPublicKey::parse_line(&back).unwrap().blob, key.blob);
    }
}

#[test]
fn real_ssh_keygen_refuses_what_we_refuse() {
    // A few refusals checked against OpenSSH's own reading, so "strict"
    // is never "disagrees with sshd" for honest input.
    let dir = tempfile::tempdir().unwrap();
    let mut off_curve = TestKey::es256().sec1();
    off_curve[64] ^= 1;
    let bad = [
        sk_ecdsa(&off_curve, b"ssh:"),
        sk_ed25519(&TestKey::eddsa().ed_public()[..31], b"ssh:"),
        {
            let mut b = sk_ed25519(&TestKey::eddsa().ed_public(), b"ssh:");
            b.push(0);
            b
        },
    ];
    for (i, blob) in bad.iter().enumerate() {
        assert!(SshPublicKey::from_blob(blob).is_err());
        let path = dir.path().join(format!("{i}.pub"));
        std::fs::write(&path, line_of(blob) + "\n").unwrap();
        let status = Command::new("ssh-keygen")
            .args(["-lf", path.to_str().unwrap()])
            .output()
            .unwrap()
            .status;
        assert!(!status.success(), "ssh-keygen accepted case {i}");
    }
}
