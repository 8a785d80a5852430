//! The clear pass a person reads aloud and types: Crockford base32 (no I, L,
//! O, U), shown in groups of four, read back ignoring case, spaces and dashes.

use zeroize::Zeroizing;

/// 32 symbols: one random byte masked to 5 bits picks one without bias,
/// because 256 is a multiple of 32.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Longest input taken at all; anything longer is refused before hashing.
pub const MAX_INPUT_BYTES: usize = 512;

const GROUP: usize = 4;

/// Symbols a pass may have; `[pass] length` is bounded by it.
pub const LENGTHS: std::ops::RangeInclusive<usize> = 8..=48;

/// Draws `length` symbols from the OS random source.
pub fn generate(length: usize) -> Result<Zeroizing<String>, getrandom::Error> {
    let mut random = Zeroizing::new(vec![0u8; length]);
    getrandom::getrandom(&mut random)?;
    let mut pass = Zeroizing::new(String::with_capacity(length));
    for byte in random.iter() {
        pass.push(char::from(ALPHABET[usize::from(byte & 0x1f)]));
    }
    Ok(pass)
}

/// `K7QM9XRT4D` → `K7QM-9XRT-4D`.
pub fn display(pass: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(pass.len() + pass.len() / GROUP));
    for (i, ch) in pass.chars().enumerate() {
        if i > 0 && i % GROUP == 0 {
            out.push('-');
        }
        out.push(ch);
    }
    out
}

/// Why typed input cannot be a pass at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputError {
    TooLong,
    /// Not as many symbols as the pass has (an empty answer among them).
    WrongLength,
    NotText,
    ForeignSymbol,
}

/// The canonical form of what a person typed: upper case, no separators, and
/// the look-alikes Crockford maps (O→0, I/L→1). Refuses input that no pass
/// could match, so it never reaches the hasher.
pub fn normalize(typed: &[u8]) -> Result<Zeroizing<String>, InputError> {
    if typed.len() > MAX_INPUT_BYTES {
        return Err(InputError::TooLong);
    }
    let text = std::str::from_utf8(typed).map_err(|_| InputError::NotText)?;
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    for ch in text.chars() {
        let canonical = match ch.to_ascii_uppercase() {
            ' ' | '-' | '\t' => continue,
            'O' => '0',
            'I' | 'L' => '1',
            c if c.is_ascii() && ALPHABET.contains(&(c as u8)) => c,
            _ => return Err(InputError::ForeignSymbol),
        };
        out.push(canonical);
    }
    Ok(out)
}

/// The canonical form of an answer that could be a pass of `length`
/// symbols (any allowed length when unknown); `Err` when it cannot be one,
/// so it is neither hashed nor counted. Every answer that could match is
/// `Ok`: the rule removes no guess that could succeed.
pub fn shaped(typed: &[u8], length: Option<usize>) -> Result<Zeroizing<String>, InputError> {
    let canonical = normalize(typed)?;
    let fits = match length {
        Some(length) => canonical.len() == length,
        None => LENGTHS.contains(&canonical.len()),
    };
    if fits {
        Ok(canonical)
    } else {
        Err(InputError::WrongLength)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passes_use_the_alphabet_and_length() {
        for length in [8, 10, 48] {
            let pass = generate(length).unwrap_or_default();
            assert_eq!(pass.len(), length);
            assert!(pass.bytes().all(|b| ALPHABET.contains(&b)));
            assert!(!pass.contains(['I', 'L', 'O', 'U']));
        }
    }

    #[test]
    fn every_symbol_is_reachable_and_roughly_even() {
        let pass = generate(32 * 400).unwrap_or_default();
        for symbol in ALPHABET {
            let count = pass.bytes().filter(|b| b == symbol).count();
            // Expected 400 each; 5 sigma is about 100.
            assert!(
                (250..=550).contains(&count),
                "{} seen {count} times",
                *symbol as char
            );
        }
    }

    #[test]
    fn display_groups_by_four() {
        assert_eq!(display("K7QM9XRT4D").as_str(), "K7QM-9XRT-4D");
        assert_eq!(display("ABCDEFGH").as_str(), "ABCD-EFGH");
    }

    #[test]
    fn normalize_ignores_case_spaces_dashes_and_maps_lookalikes() {
        assert_eq!(
            normalize(b"k7qm-9xrt 4d").map(|s| s.to_string()),
            Ok("K7QM9XRT4D".into())
        );
        assert_eq!(
            normalize(b"o1l-i").map(|s| s.to_string()),
            Ok("0111".into())
        );
    }

    #[test]
    fn normalize_refuses_what_no_pass_can_be() {
        assert_eq!(normalize(&[b'A'; 513]), Err(InputError::TooLong));
        assert_eq!(normalize(&[0xff, 0xfe]), Err(InputError::NotText));
        assert_eq!(normalize(b"ABCD\x07"), Err(InputError::ForeignSymbol));
        assert_eq!(normalize(b"ABCD\0"), Err(InputError::ForeignSymbol));
        assert_eq!(normalize("ÄBCD".as_bytes()), Err(InputError::ForeignSymbol));
        assert_eq!(normalize(b"UUUU"), Err(InputError::ForeignSymbol));
        assert!(normalize(&[b'A'; 512]).is_ok());
    }

    #[test]
    fn only_answers_that_could_be_the_pass_are_shaped() {
        let ten = Some(10);
        assert_eq!(
            shaped(b"k7qm-9xrt 4d", ten).map(|s| s.to_string()),
            Ok("K7QM9XRT4D".into())
        );
        assert_eq!(shaped(b"K7QM9XRT4", ten), Err(InputError::WrongLength));
        assert_eq!(shaped(b"K7QM9XRT4DD", ten), Err(InputError::WrongLength));
        assert_eq!(shaped(b"", ten), Err(InputError::WrongLength));
        assert_eq!(shaped(b" - - ", ten), Err(InputError::WrongLength));
        // a typical password: a symbol no pass has
        assert_eq!(shaped(b"Summer2024!", ten), Err(InputError::ForeignSymbol));
        // letters that all happen to be in the alphabet: still the wrong length
        assert_eq!(shaped(b"correct horse", ten), Err(InputError::WrongLength));
        // a pass issued before lengths were kept: any allowed length
        assert!(shaped(b"ABCDEFGH", None).is_ok());
        assert!(shaped(&[b'A'; 48], None).is_ok());
        assert_eq!(shaped(b"ABCDEFG", None), Err(InputError::WrongLength));
        assert_eq!(shaped(&[b'A'; 49], None), Err(InputError::WrongLength));
    }
}
