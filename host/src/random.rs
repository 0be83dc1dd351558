//! Randomness for values nobody may guess (run ids, plan nonces, credential placeholders): from
//! the operating system's generator through aws-lc-rs, never from the clock or the process id.

/// Fills `bytes` from the operating system's random generator.
///
/// # Panics
/// When the operating system has no randomness to give (aws-lc-rs reports that as an opaque
/// error). Nothing sensible can go on without it, and std and `getrandom` users panic alike.
pub fn fill(bytes: &mut [u8]) {
    aws_lc_rs::rand::fill(bytes).expect("the operating system's random generator works");
}

/// A random `u32`.
pub fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    fill(&mut bytes);
    u32::from_le_bytes(bytes)
}

/// `len` random bytes as lowercase hex (`2 * len` characters).
pub fn random_hex(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_has_two_digits_per_byte_and_differs_between_calls() {
        let first = random_hex(16);
        assert_eq!(first.len(), 32);
        assert!(
            first
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        // 128 random bits: equal twice in a row means the generator is broken.
        assert_ne!(first, random_hex(16));
    }
}
