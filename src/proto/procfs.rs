//! The kernel's text tables under `/proc` that the relay reads, parsed
//! apart from the reading so the parsing is tested without the kernel.

use std::net::Ipv6Addr;

/// The IPv6 addresses (with prefix length) that `/proc/net/if_inet6`
/// lists for interface `index`: one line per address, fields in hex.
pub fn if_inet6(text: &str, index: i32) -> Vec<(Ipv6Addr, u8)> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let addr = u128::from_str_radix(f.next()?, 16).ok()?;
            let idx = i64::from_str_radix(f.next()?, 16).ok()?;
            let len = u8::from_str_radix(f.next()?, 16).ok()?;
            (idx == i64::from(index)).then_some((Ipv6Addr::from(addr), len))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_inet6_lines_of_one_interface() {
        let text = "fe80000000000000006d0afa00000001 0a 40 20 80 mcast0\n\
                    fd000250000000000000000000000001 0a 40 00 80 mcast0\n\
                    00000000000000000000000000000001 01 80 10 80 lo\n\
                    garbage\n";
        let got = if_inet6(text, 10);
        assert_eq!(
            got,
            [
                ("fe80::6d:afa:0:1".parse().expect("a"), 64),
                ("fd00:250::1".parse().expect("a"), 64),
            ]
        );
        assert_eq!(if_inet6(text, 1), [(Ipv6Addr::LOCALHOST, 128)]);
    }
}
