//! Argon2id PHC strings: the only form in which a pass is stored.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use sha2::Digest;

/// Argon2id cost. The defaults are OWASP's minimum (m=19456 KiB, t=2, p=1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HashCost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashCost {
    fn default() -> Self {
        HashCost {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl HashCost {
    pub fn hasher(&self) -> Result<Argon2<'static>, String> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| format!("Argon2 parameters: {e}"))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Hashes a canonical pass with a fresh salt from the OS.
pub fn hash(pass: &str, cost: &HashCost) -> Result<String, String> {
    hash_in(pass, cost, &mut HashMemory::default())
}

/// `hash`, working in `memory`.
pub fn hash_in(pass: &str, cost: &HashCost, memory: &mut HashMemory) -> Result<String, String> {
    let mut salt_bytes = [0u8; 16];
    getrandom::getrandom(&mut salt_bytes).map_err(|e| format!("random source: {e}"))?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| format!("salt: {e}"))?;
    let params = Params::new(
        cost.memory_kib,
        cost.iterations,
        cost.parallelism,
        Some(Params::DEFAULT_OUTPUT_LEN),
    )
    .map_err(|e| format!("Argon2 parameters: {e}"))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            pass.as_bytes(),
            &salt_bytes,
            &mut out,
            memory.blocks(&params),
        )
        .map_err(|e| format!("Argon2: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| format!("Argon2: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| format!("Argon2: {e}"))?),
    };
    Ok(phc.to_string())
}

/// The memory one Argon2 hash works in, kept to be used again: a daemon
/// that hashes on several threads would otherwise leave each hash's
/// megabytes in whichever allocator arena served it, and grow far past
/// (concurrent hashes x memory cost) under a flood.
#[derive(Default)]
pub struct HashMemory(Vec<Block>);

impl HashMemory {
    /// The blocks a hash with `params` needs (grown, never shrunk).
    fn blocks(&mut self, params: &Params) -> &mut [Block] {
        let count = params.block_count();
        if self.0.len() < count {
            self.0.resize(count, Block::default());
        }
        &mut self.0[..count]
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.0.len() * Block::SIZE
    }
}

/// The stored form PostgreSQL shows the hosts' role: an Argon2id PHC string
/// whose hash field is replaced by the SHA-256 of that field's text. A host
/// checks a pass against it as against the hash, but cannot compute the hash
/// field itself (see [`PassProof`]).
pub const VERIFIER_IDENT: &str = "argon2id-sha256";

/// What a right pass proves: the hash field (unpadded Base64 text) of the
/// pass's Argon2id PHC string, which only someone who knew the pass can
/// compute from a verifier-form string. A store whose readers see only the
/// verifier (PostgreSQL's host role) checks it before it records a sign-in,
/// so a stolen host credential cannot consume a pass, or open its
/// enrollment window, without the pass.
#[derive(Clone, PartialEq, Eq)]
pub struct PassProof(zeroize::Zeroizing<String>);

impl PassProof {
    /// The proof a full Argon2id PHC string carries: its hash field. For
    /// whoever holds the hash (tests, a store migrating its own passes).
    pub fn from_phc(phc: &str) -> PassProof {
        let field = phc.rsplit_once('$').map_or("", |(_, field)| field);
        PassProof(zeroize::Zeroizing::new(field.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PassProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PassProof(..)")
    }
}

/// The verifier form of a full Argon2id PHC string (what the database's
/// view computes; here for tests and for checking the two agree).
pub fn verifier_form(phc: &str) -> Result<String, String> {
    let (head, field) = phc
        .rsplit_once('$')
        .filter(|(head, _)| head.starts_with("$argon2id$"))
        .ok_or_else(|| "not an argon2id PHC string".to_string())?;
    let digest =
        Output::new(&sha2::Sha256::digest(field.as_bytes())).map_err(|e| format!("digest: {e}"))?;
    Ok(format!(
        "${VERIFIER_IDENT}{}${digest}",
        &head["$argon2id".len()..]
    ))
}

/// Checks a canonical pass against a stored PHC string. The cost comes from
/// the PHC string itself, so passes issued under an older policy still verify.
/// Only Argon2id is accepted (as is, or in verifier form): a store row
/// rewritten to a weaker scheme fails.
pub fn verify(pass: &str, phc: &str) -> Result<bool, String> {
    Ok(verify_in(pass, phc, &mut HashMemory::default())?.is_some())
}

/// `verify`, working in `memory`; a right pass gives its proof.
pub fn verify_in(
    pass: &str,
    phc: &str,
    memory: &mut HashMemory,
) -> Result<Option<PassProof>, String> {
    let parsed = PasswordHash::new(phc).map_err(|e| format!("stored hash is malformed: {e}"))?;
    let verifier = parsed.algorithm.as_str() == VERIFIER_IDENT;
    if !verifier && parsed.algorithm != Algorithm::Argon2id.ident() {
        return Err(format!(
            "stored hash uses {}, only argon2id is accepted",
            parsed.algorithm
        ));
    }
    let unreadable = |e: &dyn std::fmt::Display| format!("stored hash cannot be checked: {e}");
    let params = Params::try_from(&parsed).map_err(|e| unreadable(&e))?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(|e| unreadable(&e))?,
        None => Version::default(),
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(unreadable(&"no salt or no hash"));
    };
    let mut salt_bytes = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| unreadable(&e))?;
    // A verifier hides the hash's length; pam_tap always issues the default.
    let length = if verifier {
        Params::DEFAULT_OUTPUT_LEN
    } else {
        expected.len()
    };
    let mut computed = zeroize::Zeroizing::new(vec![0u8; length]);
    Argon2::new(Algorithm::Argon2id, version, params.clone())
        .hash_password_into_with_memory(
            pass.as_bytes(),
            salt,
            &mut computed,
            memory.blocks(&params),
        )
        .map_err(|e| unreadable(&e))?;
    let computed = Output::new(&computed).map_err(|e| unreadable(&e))?;
    let field = zeroize::Zeroizing::new(computed.to_string());
    let compared = if verifier {
        Output::new(&sha2::Sha256::digest(field.as_bytes())).map_err(|e| unreadable(&e))?
    } else {
        computed
    };
    // Output's equality is constant-time.
    Ok((compared == expected).then(|| PassProof(field)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: HashCost = HashCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn verifies_right_and_refuses_wrong() {
        let phc = hash("K7QM9XRT4D", &CHEAP).unwrap_or_default();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert_eq!(verify("K7QM9XRT4D", &phc), Ok(true));
        assert_eq!(verify("K7QM9XRT4E", &phc), Ok(false));
    }

    #[test]
    fn memory_is_reused_and_verifies_the_same() {
        let phc = hash("K7QM9XRT4D", &CHEAP).unwrap_or_default();
        let mut memory = HashMemory::default();
        assert!(verify_in("K7QM9XRT4D", &phc, &mut memory)
            .unwrap()
            .is_some());
        let size = memory.size();
        assert_eq!(size, 64 * 1024);
        assert_eq!(verify_in("K7QM9XRT4E", &phc, &mut memory), Ok(None));
        assert_eq!(memory.size(), size);
        // The reference vector's pass checks through the same path.
        let default = hash("PASS", &HashCost::default()).unwrap_or_default();
        assert!(verify_in("PASS", &default, &mut memory).unwrap().is_some());
        assert_eq!(memory.size(), 19_456 * 1024);
    }

    #[test]
    fn verifier_form_checks_the_pass_and_gives_the_hash_field_as_proof() {
        let phc = hash("K7QM9XRT4D", &CHEAP).unwrap_or_default();
        let field = phc
            .rsplit_once('$')
            .map(|(_, f)| f.to_string())
            .unwrap_or_default();
        let verifier = verifier_form(&phc).unwrap_or_default();
        assert!(
            verifier.starts_with("$argon2id-sha256$v=19$m=64,t=1,p=1$"),
            "{verifier}"
        );
        assert!(
            !verifier.contains(&field),
            "the verifier must not show the hash field"
        );
        let mut memory = HashMemory::default();
        for stored in [&phc, &verifier] {
            let proof = verify_in("K7QM9XRT4D", stored, &mut memory).unwrap();
            assert_eq!(proof.map(|p| p.expose().to_string()), Some(field.clone()));
            assert_eq!(verify_in("K7QM9XRT4E", stored, &mut memory), Ok(None));
        }
        // the proof itself, put where the hash was, is no pass
        assert!(verify_in(&field, &verifier, &mut memory) == Ok(None));
        assert!(verifier_form("$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$aGFzaA").is_err());
    }

    #[test]
    fn salts_differ() {
        assert_ne!(hash("SAME", &CHEAP), hash("SAME", &CHEAP));
    }

    #[test]
    fn refuses_other_schemes_and_garbage() {
        assert!(verify("X", "not a hash").is_err());
        let argon2i =
            "$argon2i$v=19$m=64,t=1,p=1$c29tZXNhbHQ$iWh06vD8Fy27wf9npn6FXWiCX4K6pW6Ue1Bnzz07Z8A";
        assert!(verify("X", argon2i).is_err());
    }

    #[test]
    fn default_cost_is_owasp_minimum() {
        assert_eq!(
            HashCost::default(),
            HashCost {
                memory_kib: 19_456,
                iterations: 2,
                parallelism: 1
            }
        );
    }
}
