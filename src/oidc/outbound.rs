//! Requests to addresses a client gave Clef: its `jwks_uri`, its sector
//! identifier, a `request_uri`, its back-channel logout URI. A client that
//! registered itself could name an address inside the operator's network
//! (server-side request forgery): in production its URLs reach public
//! addresses only, checked on the addresses its host resolves to at the
//! moment of the request, not on the name it registered. The clients the
//! operator registered (first-party) may reach the internal network, an
//! ENT beside Clef; so may every client in development (an `http` issuer,
//! loopback servers).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::app::Clef;

/// Where a client's URLs may lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Anywhere,
    PublicOnly,
}

impl Reach {
    /// A client registered by the operator (`first_party`), or any in
    /// development, reaches anywhere; a self-registered one in production,
    /// public addresses only.
    pub fn of(app: &Clef, first_party: bool) -> Self {
        if first_party || app.config.issuer.scheme() == "http" {
            Self::Anywhere
        } else {
            Self::PublicOnly
        }
    }

    /// Whether `url` may be requested at all: a host written as an address
    /// must be a public one (a name is checked when it is resolved).
    pub fn allows(self, url: &url::Url) -> bool {
        let address = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(url::Host::Domain(_)) => return true,
            None => return false,
        };
        self == Self::Anywhere || is_public(address)
    }

    /// An HTTP client for such requests: no redirects, `timeout`, and for
    /// `PublicOnly` a resolver that keeps public addresses only, and no
    /// proxy from `HTTPS_PROXY` (which would resolve the name itself,
    /// internal addresses included).
    pub fn http(self, timeout: Duration) -> reqwest::Result<reqwest::Client> {
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout);
        match self {
            Self::Anywhere => builder.build(),
            Self::PublicOnly => builder
                .no_proxy()
                .dns_resolver(std::sync::Arc::new(PublicOnly))
                .build(),
        }
    }
}

/// Resolves a name to its public addresses; none is an error.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let public: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|address| is_public(address.ip()))
                .collect();
            if public.is_empty() {
                return Err("the host has no public address".into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// Whether `address` is on the public Internet: not loopback, private,
/// link-local, shared (carrier NAT), unique local, documentation, multicast
/// or reserved; an IPv6 address that carries an IPv4 one (mapped, NAT64,
/// 6to4) is judged by the IPv4 address it reaches.
pub fn is_public(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            let [first, second, ..] = segments;
            let embedded = |high: u16, low: u16| {
                let [a, b] = high.to_be_bytes();
                let [c, d] = low.to_be_bytes();
                is_public(IpAddr::V4(std::net::Ipv4Addr::new(a, b, c, d)))
            };
            // NAT64: 64:ff9b::/96 reaches the IPv4 address in its last 32
            // bits; the rest of 64:ff9b::/32 (local-use 64:ff9b:1::/48) is
            // a network's own.
            if first == 0x64 && second == 0xff9b {
                return segments[2..6] == [0; 4] && embedded(segments[6], segments[7]);
            }
            // 6to4 (2002::/16): the IPv4 address follows the prefix.
            if first == 0x2002 {
                return embedded(second, segments[2]);
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || segments[..6] == [0; 6]
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first == 0x2001 && second == 0x0db8)
                || (first == 0x2001 && second == 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_not_public() {
        for internal in [
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
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b::169.254.169.254",
            "64:ff9b:1::1",
            "2002:a00:1::1",
            "2002:7f00:1::",
            "2001:0:4136:e378::1",
            "::10.0.0.1",
            "fec0::1",
        ] {
            assert!(!is_public(internal.parse().unwrap()), "{internal}");
        }
        for public in [
            "93.184.216.34",
            "2606:2800:220:1::1",
            "64:ff9b::5db8:d822",
            "2002:5db8:d822::1",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        let url = |raw: &str| url::Url::parse(raw).unwrap();
        assert!(!Reach::PublicOnly.allows(&url("https://169.254.169.254/latest")));
        assert!(!Reach::PublicOnly.allows(&url("https://[::1]:8443/jwks")));
        assert!(Reach::PublicOnly.allows(&url("https://rp.example/jwks")));
        assert!(Reach::Anywhere.allows(&url("https://10.0.0.5/jwks")));
    }
}
