//! RFC 5782 query names (pure).

use std::fmt::Write;
use std::net::IpAddr;

use crate::target::Target;

/// The name to ask `zone` about `t`, with a trailing dot.
///
/// IPv4: reversed octets. IPv6: 32 reversed nibbles (never the compressed
/// form). Domains: as is (already lower-cased and IDNA-encoded by parsing).
/// No normalisation happens here, so test points such as `::ffff:7f00:2`
/// keep their IPv6 form.
pub fn query_name(t: &Target, zone: &str) -> String {
    let mut s = String::with_capacity(80 + zone.len());
    match t {
        Target::Ip(IpAddr::V4(v4)) => {
            let o = v4.octets();
            let _ = write!(s, "{}.{}.{}.{}.", o[3], o[2], o[1], o[0]);
        }
        Target::Ip(IpAddr::V6(v6)) => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            for b in v6.octets().iter().rev() {
                s.push(HEX[(b & 0xf) as usize] as char);
                s.push('.');
                s.push(HEX[(b >> 4) as usize] as char);
                s.push('.');
            }
        }
        Target::Domain(d) => {
            s.push_str(d);
            s.push('.');
        }
    }
    s.push_str(zone.trim_end_matches('.'));
    s.push('.');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5782_names() {
        let ip = |s: &str| Target::Ip(s.parse().unwrap());
        assert_eq!(
            query_name(&ip("192.0.2.1"), "bl.test"),
            "1.2.0.192.bl.test."
        );
        assert_eq!(
            query_name(&ip("::ffff:7f00:2"), "bl.test."),
            "2.0.0.0.0.0.f.7.f.f.f.f.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.bl.test."
        );
        assert_eq!(
            query_name(&ip("2001:db8:beef::1"), "bl6.test"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.f.e.e.b.8.b.d.0.1.0.0.2.bl6.test."
        );
        assert_eq!(
            query_name(&Target::Domain("evil.example".into()), "dbl.test"),
            "evil.example.dbl.test."
        );
    }
}
