//! Which IP addresses a connector may reach: public ones; private ones (loopback, RFC 1918, shared
//! address space, IPv6 unique-local) only with the operator's `allow_private_network`; every other
//! special-purpose address never.
//!
//! "Special-purpose" comes from the `iprfc` crate's `RFC6890`: a version-pinned snapshot, generated
//! with its provenance, of IANA's IPv4 and IPv6 Special-Purpose Address Registries, so new
//! registry rows arrive with a crate update instead of a hand-kept list. The registry says which
//! blocks are special, not which ones an operator may open up, so the short list of private
//! ranges the flag allows is kept here. Outside the registries, multicast and (for IPv6) anything
//! outside global unicast `2000::/3` are refused too. An IPv6 address that carries an IPv4 address
//! (IPv4-mapped, NAT64, 6to4, Teredo) is judged by the IPv4 address it would reach.
//!
//! The registries also list a few globally reachable anycast blocks (AS112, AMT, PCP, ...); they are
//! refused like the rest, since no data API lives there.

use iprfc::RFC6890;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What an address is, for the network policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressClass {
    /// An ordinary internet address.
    Public,
    /// A private address: reachable only with `allow_private_network = true`.
    Private {
        /// The range, e.g. `loopback 127.0.0.0/8`.
        range: &'static str,
    },
    /// A special-purpose address no connector may reach.
    Forbidden {
        /// The range, e.g. `link-local 169.254.0.0/16`.
        range: String,
    },
}

impl AddressClass {
    /// Why a connection to an address of this class is refused, or `None` when it is allowed.
    pub fn refusal(&self, allow_private_network: bool) -> Option<String> {
        match self {
            Self::Public => None,
            Self::Private { .. } if allow_private_network => None,
            Self::Private { range } => Some(format!(
                "private addresses ({range}) need `allow_private_network = true`"
            )),
            Self::Forbidden { range } => Some(format!("{range} is never allowed")),
        }
    }

    /// How strict a class is, to keep the strictest of several readings of one address.
    fn strictness(&self) -> u8 {
        match self {
            Self::Public => 0,
            Self::Private { .. } => 1,
            Self::Forbidden { .. } => 2,
        }
    }
}

/// Well-known cloud metadata endpoints inside ranges the flag would otherwise open: Alibaba
/// Cloud's in shared address space, AWS's IPv6 one in unique-local space. (The usual
/// 169.254.169.254 is link-local, refused anyway.)
const METADATA_ENDPOINTS: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// Classifies `ip` (see the module documentation).
pub fn classify(ip: IpAddr) -> AddressClass {
    if METADATA_ENDPOINTS.contains(&ip) {
        return AddressClass::Forbidden {
            range: format!("the cloud metadata endpoint {ip}"),
        };
    }
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, ..] = ip.octets();
    let private = match (a, b) {
        (127, _) => Some("loopback 127.0.0.0/8"),
        (10, _) => Some("private-use 10.0.0.0/8"),
        (172, 16..=31) => Some("private-use 172.16.0.0/12"),
        (192, 168) => Some("private-use 192.168.0.0/16"),
        (100, 64..=127) => Some("shared address space 100.64.0.0/10"),
        _ => None,
    };
    if let Some(range) = private {
        return AddressClass::Private { range };
    }
    if ip.is_multicast() {
        return AddressClass::Forbidden {
            range: "multicast 224.0.0.0/4".into(),
        };
    }
    // The most specific registry block names the rule best (192.0.0.8/32 over 192.0.0.0/24).
    match RFC6890
        .ipv4_nets()
        .iter()
        .filter(|net| net.contains(&ip))
        .max_by_key(|net| net.prefix_len())
    {
        Some(net) => AddressClass::Forbidden {
            range: format!("{} {net}", v4_block_name(ip)),
        },
        None => AddressClass::Public,
    }
}

/// A readable name for the registry block `ip` is in, for messages.
fn v4_block_name(ip: Ipv4Addr) -> &'static str {
    match ip.octets() {
        [0, ..] => "this network",
        [169, 254, ..] => "link-local",
        [192, 0, 0, _] => "IETF protocol assignments",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "documentation",
        [198, 18 | 19, ..] => "benchmarking",
        [255, 255, 255, 255] => "broadcast",
        [240..=255, ..] => "reserved",
        _ => "IANA special-purpose",
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    if let Some(readings) = embedded_v4(ip) {
        return readings
            .into_iter()
            .map(classify_v4)
            .max_by_key(AddressClass::strictness)
            .expect("at least one embedded address");
    }
    let first = ip.segments()[0];
    if ip.is_loopback() {
        return AddressClass::Private {
            range: "loopback ::1",
        };
    }
    if first & 0xfe00 == 0xfc00 {
        return AddressClass::Private {
            range: "unique-local fc00::/7",
        };
    }
    let forbidden = |range: String| AddressClass::Forbidden { range };
    if ip.is_multicast() {
        return forbidden("multicast ff00::/8".into());
    }
    if first & 0xffc0 == 0xfe80 {
        return forbidden("link-local fe80::/10".into());
    }
    if let Some(net) = RFC6890
        .ipv6_nets()
        .iter()
        .filter(|net| net.contains(&ip))
        .max_by_key(|net| net.prefix_len())
    {
        return forbidden(format!("IANA special-purpose {net}"));
    }
    if first & 0xe000 != 0x2000 {
        return forbidden("outside global unicast 2000::/3".into());
    }
    AddressClass::Public
}

/// The IPv4 addresses an IPv6 address carries, when it is one of the forms that reach an IPv4
/// host: IPv4-mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96` and local-use `64:ff9b:1::/48`, 6to4
/// `2002::/16` and Teredo `2001::/32`. Where the form allows several readings (local-use NAT64
/// may use any RFC 6052 layout; Teredo has a server and a client), all are returned and the
/// strictest class wins.
fn embedded_v4(ip: Ipv6Addr) -> Option<Vec<Ipv4Addr>> {
    let bits = u128::from(ip);
    let s = ip.segments();
    let low32 = Ipv4Addr::from(bits as u32);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(vec![v4]);
    }
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return Some(vec![low32]);
    }
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001 {
        let readings = [48, 56, 64, 96]
            .into_iter()
            .map(|prefix| rfc6052_v4(bits, prefix))
            .collect();
        return Some(readings);
    }
    if s[0] == 0x2002 {
        return Some(vec![Ipv4Addr::from((bits >> 80) as u32)]);
    }
    if s[0] == 0x2001 && s[1] == 0 {
        let server = Ipv4Addr::from((bits >> 64) as u32);
        let client = Ipv4Addr::from(!(bits as u32));
        return Some(vec![server, client]);
    }
    None
}

/// The IPv4 address in an RFC 6052 IPv4-embedded IPv6 address with a prefix of `prefix` bits
/// (32, 40, 48, 56, 64 or 96); bits 64..72 (the `u` octet) never carry address bits.
fn rfc6052_v4(bits: u128, prefix: u32) -> Ipv4Addr {
    if prefix == 96 {
        return Ipv4Addr::from(bits as u32);
    }
    // The 120 bits left once the `u` octet is taken out; the IPv4 address follows the prefix.
    let without_u = ((bits >> 64) << 56) | (bits & ((1 << 56) - 1));
    Ipv4Addr::from((without_u >> (120 - prefix - 32)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The class of `address`: `P` public, `p` private (allowed with the flag), `F` forbidden.
    fn letter(address: &str) -> char {
        match classify(address.parse().unwrap()) {
            AddressClass::Public => 'P',
            AddressClass::Private { .. } => 'p',
            AddressClass::Forbidden { .. } => 'F',
        }
    }

    #[test]
    fn one_address_per_range_in_both_families() {
        let table = [
            // IPv4: public
            ("8.8.8.8", 'P', "public"),
            ("1.1.1.1", 'P', "public"),
            ("100.63.255.255", 'P', "just below shared address space"),
            ("100.128.0.0", 'P', "just above shared address space"),
            ("172.32.0.1", 'P', "just above 172.16.0.0/12"),
            ("198.20.0.1", 'P', "just above benchmarking"),
            ("223.255.255.255", 'P', "just below multicast"),
            // IPv4: private, with the flag
            ("127.0.0.1", 'p', "loopback"),
            ("10.1.2.3", 'p', "RFC 1918 10/8"),
            ("172.16.0.1", 'p', "RFC 1918 172.16/12"),
            ("192.168.1.1", 'p', "RFC 1918 192.168/16"),
            ("100.64.0.1", 'p', "shared address space (CGNAT)"),
            // IPv4: never
            ("100.100.100.200", 'F', "Alibaba Cloud metadata"),
            ("0.0.0.0", 'F', "unspecified"),
            ("0.1.2.3", 'F', "this network 0/8"),
            ("169.254.169.254", 'F', "link-local, cloud metadata"),
            ("192.0.0.1", 'F', "IETF protocol assignments"),
            ("192.0.2.1", 'F', "TEST-NET-1"),
            ("198.51.100.1", 'F', "TEST-NET-2"),
            ("203.0.113.1", 'F', "TEST-NET-3"),
            ("198.18.0.1", 'F', "benchmarking"),
            ("224.0.0.1", 'F', "multicast"),
            ("239.255.255.250", 'F', "multicast (SSDP)"),
            ("240.0.0.1", 'F', "reserved 240/4"),
            ("255.255.255.255", 'F', "broadcast"),
            // IPv6: public
            ("2001:4860:4860::8888", 'P', "public"),
            ("2606:4700::1111", 'P', "public"),
            // IPv6: private, with the flag
            ("::1", 'p', "loopback"),
            ("fd12:3456::1", 'p', "unique-local"),
            // IPv6: never
            ("fd00:ec2::254", 'F', "AWS IPv6 metadata"),
            ("::", 'F', "unspecified"),
            ("fe80::1", 'F', "link-local"),
            ("ff02::1", 'F', "multicast"),
            ("2001:db8::1", 'F', "documentation"),
            ("3fff::1", 'F', "documentation (RFC 9637)"),
            ("100::1", 'F', "discard-only"),
            ("2001:2::1", 'F', "benchmarking"),
            ("fec0::1", 'F', "site-local, outside 2000::/3"),
            ("4000::1", 'F', "unassigned, outside 2000::/3"),
            ("::1.2.3.4", 'F', "IPv4-compatible (deprecated)"),
            // IPv6 forms that carry an IPv4 address: judged by it
            ("::ffff:169.254.169.254", 'F', "v4-mapped metadata"),
            ("::ffff:127.0.0.1", 'p', "v4-mapped loopback"),
            ("::ffff:8.8.8.8", 'P', "v4-mapped public"),
            ("64:ff9b::a9fe:a9fe", 'F', "NAT64 of 169.254.169.254"),
            ("64:ff9b::808:808", 'P', "NAT64 of 8.8.8.8"),
            ("64:ff9b::a00:1", 'p', "NAT64 of 10.0.0.1"),
            (
                "64:ff9b:1::a9fe:a9fe",
                'F',
                "local-use NAT64 /96 of metadata",
            ),
            (
                "64:ff9b:1:a9fe:a9:fe00::",
                'F',
                "local-use NAT64 /48 of metadata",
            ),
            ("2002:a9fe:a9fe::1", 'F', "6to4 of 169.254.169.254"),
            ("2002:808:808::1", 'P', "6to4 of 8.8.8.8"),
            (
                "2001:0:808:808::5601:5601",
                'F',
                "Teredo to client 169.254.169.254 (xor)",
            ),
            (
                "2001:0:a9fe:a9fe::f7f7:f7f7",
                'F',
                "Teredo via server 169.254.169.254",
            ),
            (
                "2001:0:808:808::f7f7:f7f7",
                'P',
                "Teredo, public server and client",
            ),
        ];
        let wrong: Vec<String> = table
            .iter()
            .filter(|(address, want, _)| letter(address) != *want)
            .map(|(address, want, what)| {
                format!(
                    "{address} ({what}): want {want}, got {:?}",
                    classify(address.parse().unwrap())
                )
            })
            .collect();
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn refusals_name_the_range_and_the_fix() {
        let metadata = classify("169.254.169.254".parse().unwrap());
        assert_eq!(
            metadata.refusal(true).unwrap(),
            "link-local 169.254.0.0/16 is never allowed"
        );
        let loopback = classify("127.0.0.1".parse().unwrap());
        assert_eq!(loopback.refusal(true), None);
        let rule = loopback.refusal(false).unwrap();
        assert!(
            rule.contains("loopback 127.0.0.0/8") && rule.contains("allow_private_network"),
            "{rule}"
        );
        assert_eq!(classify("8.8.8.8".parse().unwrap()).refusal(false), None);
    }

    #[test]
    fn rfc6052_layouts_find_the_same_address() {
        // 192.0.2.33 in each layout of RFC 6052 section 2.4's table, with prefix 2001:db8::.
        for (text, prefix) in [
            ("2001:db8:c000:221::", 32),
            ("2001:db8:1c0:2:21::", 40),
            ("2001:db8:122:c000:2:2100::", 48),
            ("2001:db8:122:3c0:0:221::", 56),
            ("2001:db8:122:344:c0:2:2100:0", 64),
            ("2001:db8:122:344::192.0.2.33", 96),
        ] {
            let bits = u128::from(text.parse::<Ipv6Addr>().unwrap());
            assert_eq!(
                rfc6052_v4(bits, prefix),
                Ipv4Addr::new(192, 0, 2, 33),
                "{text} /{prefix}"
            );
        }
    }
}
