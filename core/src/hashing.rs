//! Argon2id PHC strings: the only form in which a pass is stored.

use argon2::password_hash::{self, Output, ParamsString, PasswordHash, SaltString};
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
    pub fn hasher(&self) -> Result<Argon2<'static>, HashError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(HashError::Parameters)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Hashes a canonical pass with a fresh salt from the OS.
pub fn hash(pass: &str, cost: &HashCost) -> Result<String, HashError> {
    hash_in(pass, cost, &mut HashMemory::default())
}

/// `hash`, working in `memory`.
pub fn hash_in(pass: &str, cost: &HashCost, memory: &mut HashMemory) -> Result<String, HashError> {
    let mut salt_bytes = [0u8; 16];
    crate::keys::random_bytes(&mut salt_bytes).map_err(HashError::Random)?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(HashError::Salt)?;
    let params = Params::new(
        cost.memory_kib,
        cost.iterations,
        cost.parallelism,
        Some(Params::DEFAULT_OUTPUT_LEN),
    )
    .map_err(HashError::Parameters)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            pass.as_bytes(),
            &salt_bytes,
            &mut out,
            memory.blocks(&params),
        )
        .map_err(HashError::Argon2)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(HashError::Encoding)?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(HashError::Encoding)?),
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
pub fn verifier_form(phc: &str) -> Result<String, HashError> {
    let (head, field) = phc
        .rsplit_once('$')
        .filter(|(head, _)| head.starts_with("$argon2id$"))
        .ok_or(HashError::NotArgon2id)?;
    let digest = Output::new(&sha2::Sha256::digest(field.as_bytes())).map_err(HashError::Digest)?;
    Ok(format!(
        "${VERIFIER_IDENT}{}${digest}",
        &head["$argon2id".len()..]
    ))
}

/// Checks a canonical pass against a stored PHC string. The cost comes from
/// the PHC string itself, so passes issued under an older policy still verify.
/// Only Argon2id is accepted (as is, or in verifier form): a store row
/// rewritten to a weaker scheme fails.
pub fn verify(pass: &str, phc: &str) -> Result<bool, HashError> {
    Ok(verify_in(pass, phc, &mut HashMemory::default())?.is_some())
}

/// `verify`, working in `memory`; a right pass gives its proof.
pub fn verify_in(
    pass: &str,
    phc: &str,
    memory: &mut HashMemory,
) -> Result<Option<PassProof>, HashError> {
    let parsed = PasswordHash::new(phc).map_err(HashError::Malformed)?;
    let verifier = parsed.algorithm.as_str() == VERIFIER_IDENT;
    if !verifier && parsed.algorithm != Algorithm::Argon2id.ident() {
        return Err(HashError::OtherScheme(parsed.algorithm.to_string()));
    }
    let params = Params::try_from(&parsed).map_err(HashError::StoredPhc)?;
    let version = match parsed.version {
        Some(v) => Version::try_from(v).map_err(HashError::StoredArgon2)?,
        None => Version::default(),
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Err(HashError::StoredIncomplete);
    };
    let mut salt_bytes = [0u8; 64];
    let salt = salt
        .decode_b64(&mut salt_bytes)
        .map_err(HashError::StoredPhc)?;
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
        .map_err(HashError::StoredArgon2)?;
    let computed = Output::new(&computed).map_err(HashError::StoredPhc)?;
    let field = zeroize::Zeroizing::new(computed.to_string());
    let compared = if verifier {
        Output::new(&sha2::Sha256::digest(field.as_bytes())).map_err(HashError::StoredPhc)?
    } else {
        computed
    };
    // Output's equality is constant-time.
    Ok((compared == expected).then(|| PassProof(field)))
}

/// Why a pass could not be hashed, or a stored hash not checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HashError {
    /// The cost is not one Argon2 accepts.
    Parameters(argon2::Error),
    Random(crate::keys::RandomError),
    Salt(password_hash::Error),
    Argon2(argon2::Error),
    /// The new hash could not be written as a PHC string.
    Encoding(password_hash::Error),
    /// `verifier_form` was given something else.
    NotArgon2id,
    Digest(password_hash::Error),
    /// The stored string is not a PHC string.
    Malformed(password_hash::Error),
    /// The stored hash uses this algorithm.
    OtherScheme(String),
    /// The stored PHC string's parameters, salt or hash are unusable.
    StoredPhc(password_hash::Error),
    StoredArgon2(argon2::Error),
    /// The stored PHC string has no salt or no hash.
    StoredIncomplete,
    /// A bounded hasher (tapd's) never ran the hash.
    NoSlot,
}

impl std::fmt::Display for HashError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const UNREADABLE: &str = "stored hash cannot be checked";
        match self {
            HashError::Parameters(e) => write!(f, "Argon2 parameters: {e}"),
            HashError::Random(e) => write!(f, "{e}"),
            HashError::Salt(e) => write!(f, "salt: {e}"),
            HashError::Argon2(e) => write!(f, "Argon2: {e}"),
            HashError::Encoding(e) => write!(f, "Argon2: {e}"),
            HashError::NotArgon2id => f.write_str("not an argon2id PHC string"),
            HashError::Digest(e) => write!(f, "digest: {e}"),
            HashError::Malformed(e) => write!(f, "stored hash is malformed: {e}"),
            HashError::OtherScheme(algorithm) => {
                write!(f, "stored hash uses {algorithm}, only argon2id is accepted")
            }
            HashError::StoredPhc(e) => write!(f, "{UNREADABLE}: {e}"),
            HashError::StoredArgon2(e) => write!(f, "{UNREADABLE}: {e}"),
            HashError::StoredIncomplete => write!(f, "{UNREADABLE}: no salt or no hash"),
            HashError::NoSlot => f.write_str("no hash slot"),
        }
    }
}

impl std::error::Error for HashError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HashError::Parameters(e) | HashError::Argon2(e) | HashError::StoredArgon2(e) => Some(e),
            HashError::Random(e) => Some(e),
            HashError::Salt(e)
            | HashError::Encoding(e)
            | HashError::Digest(e)
            | HashError::Malformed(e)
            | HashError::StoredPhc(e) => Some(e),
            HashError::NotArgon2id
            | HashError::OtherScheme(_)
            | HashError::StoredIncomplete
            | HashError::NoSlot => None,
        }
    }
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
