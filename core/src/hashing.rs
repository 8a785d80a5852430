//! Argon2id PHC strings: the only form in which a pass is stored.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

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

/// Checks a canonical pass against a stored PHC string. The cost comes from
/// the PHC string itself, so passes issued under an older policy still verify.
/// Only Argon2id is accepted: a store row rewritten to a weaker scheme fails.
pub fn verify(pass: &str, phc: &str) -> Result<bool, String> {
    verify_in(pass, phc, &mut HashMemory::default())
}

/// `verify`, working in `memory`.
pub fn verify_in(pass: &str, phc: &str, memory: &mut HashMemory) -> Result<bool, String> {
    let parsed = PasswordHash::new(phc).map_err(|e| format!("stored hash is malformed: {e}"))?;
    if parsed.algorithm != Algorithm::Argon2id.ident() {
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
    let mut computed = vec![0u8; expected.len()];
    Argon2::new(Algorithm::Argon2id, version, params.clone())
        .hash_password_into_with_memory(
            pass.as_bytes(),
            salt,
            &mut computed,
            memory.blocks(&params),
        )
        .map_err(|e| unreadable(&e))?;
    let computed = Output::new(&computed).map_err(|e| unreadable(&e))?;
    // Output's equality is constant-time.
    Ok(computed == expected)
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
        assert_eq!(verify_in("K7QM9XRT4D", &phc, &mut memory), Ok(true));
        let size = memory.size();
        assert_eq!(size, 64 * 1024);
        assert_eq!(verify_in("K7QM9XRT4E", &phc, &mut memory), Ok(false));
        assert_eq!(memory.size(), size);
        // The reference vector's pass checks through the same path.
        let default = hash("PASS", &HashCost::default()).unwrap_or_default();
        assert_eq!(verify_in("PASS", &default, &mut memory), Ok(true));
        assert_eq!(memory.size(), 19_456 * 1024);
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
