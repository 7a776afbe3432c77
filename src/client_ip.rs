//! The client's address. Normally the peer's; when the peer is a proxy
//! listed in `TRUSTED_PROXIES`, the nearest address in `X-Forwarded-For`
//! that is not itself a trusted proxy, read right to left (each proxy
//! appends the address it got the request from, so only the entries added
//! by trusted hops can be believed; anything left of them is the client's
//! to write). Rate limits, the audit log, the session list, new-device
//! mail and the request log all use it.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use actix_web::{web, HttpRequest};
use ipnet::IpNet;

/// `TRUSTED_PROXIES`, registered as app data of its own at start-up (this
/// module sits below the application state).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Vec<IpNet>);

/// Parses `TRUSTED_PROXIES`: addresses and CIDR ranges separated by commas
/// or spaces (`10.0.0.0/8, 127.0.0.1`).
pub fn parse_trusted(value: &str) -> Result<Vec<IpNet>, String> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(|ip| IpNet::from(normalise(ip))))
                .map_err(|_| format!("{s:?} is neither an address nor a CIDR range"))
        })
        .collect()
}

/// The client's address from the peer's and the `X-Forwarded-For` values
/// (every header line, in order), trusting only the listed proxies.
pub fn resolve<'a>(
    peer: Option<IpAddr>,
    forwarded: impl Iterator<Item = &'a str>,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let mut client = normalise(peer?);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&client) {
        return Some(client);
    }
    let hops: Vec<&str> = forwarded.flat_map(|v| v.split(',')).map(str::trim).collect();
    for hop in hops.iter().rev() {
        // A malformed entry ends the walk: what a trusted hop reported last
        // is the best address there is.
        let Some(ip) = parse_hop(hop) else { break };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
}

/// The address of `req`'s client (see the module's documentation).
pub fn of_request(req: &HttpRequest) -> Option<IpAddr> {
    let trusted = req.app_data::<web::Data<TrustedProxies>>().map(|t| t.0.as_slice()).unwrap_or(&[]);
    resolve(req.peer_addr().map(|a| a.ip()), forwarded_values(req.headers()), trusted)
}

fn forwarded_values(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers.get_all("x-forwarded-for").filter_map(|v| v.to_str().ok())
}

fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())).map(normalise)
}

/// `::ffff:1.2.3.4` is `1.2.3.4`, so one client has one address.
pub fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        assert_eq!(resolve(ip("127.0.0.1"), ["6.6.6.6"].into_iter(), &[]), ip("127.0.0.1"));
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let trusted = parse_trusted("10.0.0.0/8").unwrap();
        assert_eq!(resolve(ip("203.0.113.9"), ["6.6.6.6"].into_iter(), &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn behind_a_trusted_proxy_the_nearest_untrusted_hop_is_the_client() {
        let trusted = parse_trusted("127.0.0.1, 10.0.0.0/8").unwrap();
        // A client forged the first entry; nginx appended the real one.
        let hops = ["6.6.6.6, 198.51.100.7", "10.1.2.3"];
        assert_eq!(resolve(ip("127.0.0.1"), hops.into_iter(), &trusted), ip("198.51.100.7"));
    }

    #[test]
    fn when_every_hop_is_trusted_the_leftmost_is_used_and_garbage_stops_the_walk() {
        let trusted = parse_trusted("10.0.0.0/8 127.0.0.1").unwrap();
        assert_eq!(resolve(ip("127.0.0.1"), ["10.0.0.2, 10.0.0.3"].into_iter(), &trusted), ip("10.0.0.2"));
        assert_eq!(resolve(ip("127.0.0.1"), ["not-an-ip, 10.0.0.3"].into_iter(), &trusted), ip("10.0.0.3"));
        assert_eq!(resolve(ip("127.0.0.1"), [].into_iter(), &trusted), ip("127.0.0.1"));
    }

    #[test]
    fn mapped_addresses_and_ports_are_understood() {
        let trusted = parse_trusted("::ffff:127.0.0.1").unwrap();
        assert_eq!(resolve(ip("127.0.0.1"), ["[2001:db8::1]:443"].into_iter(), &trusted), ip("2001:db8::1"));
        assert_eq!(resolve(ip("::ffff:198.51.100.7"), [].into_iter(), &[]), ip("198.51.100.7"));
    }

    #[test]
    fn nonsense_in_the_setting_is_refused_with_the_value() {
        let err = parse_trusted("10.0.0.0/8, proxy.local").unwrap_err();
        assert!(err.contains("proxy.local"), "{err}");
    }
}
