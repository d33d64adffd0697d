//! The reverse proxies whose word about the request's scheme is believed.

use std::net::IpAddr;

/// The peers allowed to say how a request reached them
/// (`JOBSTREAM_TRUSTED_PROXIES`): IP addresses and CIDR ranges. Anyone can
/// send `X-Forwarded-Proto`; only a proxy we know sets it truthfully, so the
/// header counts only when the connection comes from one of these.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

impl TrustedProxies {
    /// Reads `127.0.0.1, 10.0.0.0/8, ::1`: IPv4 or IPv6 addresses (one
    /// host each) and CIDR ranges, separated by commas; spaces around each
    /// are allowed, and an empty list trusts nobody.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in value.split(',').map(str::trim) {
            if item.is_empty() {
                continue;
            }
            let net = match item.parse::<IpAddr>() {
                Ok(ip) => ipnet::IpNet::from(ip),
                Err(_) => item.parse::<ipnet::IpNet>().map_err(|_| {
                    format!(
                        "expected IP addresses or CIDR ranges separated by commas, \
                         such as 127.0.0.1,10.0.0.0/8; {item:?} is neither"
                    )
                })?,
            };
            nets.push(net);
        }
        Ok(TrustedProxies(nets))
    }

    /// Whether a connection from `peer` comes from a trusted proxy. An
    /// IPv4 peer seen on an IPv6 socket (`::ffff:a.b.c.d`) counts as IPv4.
    pub fn contains(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.0.iter().any(|net| net.contains(&peer))
    }

    /// Nobody is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
