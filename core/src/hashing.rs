//! Argon2id PHC strings: the only form in which a pass is stored.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

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
    let mut salt_bytes = [0u8; 16];
    getrandom::getrandom(&mut salt_bytes).map_err(|e| format!("random source: {e}"))?;
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| format!("salt: {e}"))?;
    let phc = cost
        .hasher()?
        .hash_password(pass.as_bytes(), &salt)
        .map_err(|e| format!("Argon2: {e}"))?;
    Ok(phc.to_string())
}

/// Checks a canonical pass against a stored PHC string. The cost comes from
/// the PHC string itself, so passes issued under an older policy still verify.
/// Only Argon2id is accepted: a store row rewritten to a weaker scheme fails.
pub fn verify(pass: &str, phc: &str) -> Result<bool, String> {
    let parsed = PasswordHash::new(phc).map_err(|e| format!("stored hash is malformed: {e}"))?;
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return Err(format!(
            "stored hash uses {}, only argon2id is accepted",
            parsed.algorithm
        ));
    }
    match Argon2::default().verify_password(pass.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(format!("stored hash cannot be checked: {e}")),
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
