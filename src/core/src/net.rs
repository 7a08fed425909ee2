//! Which addresses a URL a client gave may reach: the gateway fetches images for providers that take them only
//! inline, and must not be made to fetch from its own network (loopback, private ranges, link-local cloud
//! metadata services).

use std::net::{IpAddr, Ipv4Addr};

/// An address on the public internet: not loopback, private (RFC 1918, RFC 4193), link-local (cloud metadata
/// services live at 169.254.169.254), shared (CGNAT), documentation, benchmarking, multicast, broadcast or
/// unspecified, and no IPv4 address inside IPv6 that would be one of those.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b)) // NAT64 of IPv4 addresses
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || a >= 240) // reserved
}

/// Why a client's `https` URL may not be fetched, judged from the URL alone: not `https`, credentials in it, no
/// host, a host that is a non-public address literal or a name for this machine or network (`localhost`,
/// `*.local`, `*.internal`). `None` when it may be (a name that resolves to a private address is the host's to
/// refuse, see `Upstream::send_public`).
pub fn refuse_url(url: &str) -> Option<&'static str> {
    let Some(rest) = url.strip_prefix("https://") else {
        return Some("only https URLs are fetched");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Some("URLs with credentials are not fetched");
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() {
        return Some("the URL has no host");
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return (!is_public_ip(ip)).then_some("the URL's address is not a public one");
    }
    // Decimal, octal or hex spellings of an address are refused rather than interpreted.
    let numeric = |l: &str| l.bytes().all(|b| b.is_ascii_digit()) || l.starts_with("0x");
    if host.split('.').all(numeric) {
        return Some("the URL's host is not a name");
    }
    let local = host == "localhost"
        || [".localhost", ".local", ".internal", ".lan", ".home.arpa"]
            .iter()
            .any(|suffix| host.ends_with(suffix));
    local.then_some("the URL's host is a local name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_metadata_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700::1111"] {
            assert!(is_public_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_judged_before_anything_is_fetched() {
        assert_eq!(refuse_url("https://images.example.com/cat.png?x=1"), None);
        assert_eq!(refuse_url("https://[2606:4700::1111]:443/a.png"), None);
        assert_eq!(
            refuse_url("https://cafe.be/a.png"),
            None,
            "hex letters make a name"
        );
        for url in [
            "http://images.example.com/cat.png",
            "https://user:pass@example.com/a.png",
            "https://127.0.0.1/a.png",
            "https://[::1]/a.png",
            "https://169.254.169.254/latest/meta-data",
            "https://localhost:8080/a.png",
            "https://printer.local/a.png",
            "https://metadata.google.internal/a",
            "https://2130706433/a.png",
            "https://0x7f.1/a.png",
            "https:///a.png",
        ] {
            assert!(refuse_url(url).is_some(), "{url}");
        }
    }
}
