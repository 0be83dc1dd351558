//! CRC-32C (Castagnoli), which Secret Manager sends with every payload so a reader can tell a
//! value damaged on the way from the one stored.

/// The reflected Castagnoli polynomial.
const POLYNOMIAL: u32 = 0x82F6_3B78;

const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLYNOMIAL
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The CRC-32C of `data`.
pub fn checksum(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, byte| {
        TABLE[((crc ^ u32::from(*byte)) & 0xFF) as usize] ^ (crc >> 8)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_published_check_values() {
        // RFC 3720 appendix B.4 and the usual "123456789" check value.
        assert_eq!(super::checksum(b"123456789"), 0xE306_9283);
        assert_eq!(super::checksum(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(super::checksum(&[0xFFu8; 32]), 0x62A8_AB43);
        assert_eq!(super::checksum(b""), 0);
    }
}
