//! Where webhooks may be sent: a guard against server-side request forgery.
//!
//! A subscriber chooses the URL, so without a policy Concord could be made to POST to its
//! own loopback services, the private network or a cloud metadata endpoint. The URL is
//! checked when a subscription is created ([`TargetPolicy::check_url`]) and again at every
//! attempt, where literal IP hosts are checked directly and names are resolved by
//! [`PolicyResolver`], which hands the HTTP client only allowed addresses: a name that
//! resolved to a public address at creation and to a private one later (DNS rebinding)
//! is refused at delivery.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use concord_core::config::WebhooksConfig;
use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
};

/// What kind of address an IP is, as far as the policy cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    /// RFC 1918, unique-local `fc00::/7` (and the deprecated site-local `fec0::/10`),
    /// shared/CGNAT `100.64.0.0/10`. Allowed with `allow_private_targets`.
    Private,
    /// `127.0.0.0/8`, `::1`, `localhost`. Allowed with `allow_loopback_targets`.
    Loopback,
    /// `169.254.0.0/16` (cloud metadata lives here), `fe80::/10`. Never allowed.
    LinkLocal,
    /// `0.0.0.0/8`, `::` (connecting to them reaches this host). Never allowed.
    Unspecified,
    /// `224.0.0.0/4`, `ff00::/8`. Never allowed.
    Multicast,
    /// `255.255.255.255` and the reserved `240.0.0.0/4`. Never allowed.
    Reserved,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Public => "public",
            Self::Private => "private",
            Self::Loopback => "loopback",
            Self::LinkLocal => "link-local",
            Self::Unspecified => "unspecified",
            Self::Multicast => "multicast",
            Self::Reserved => "reserved",
        })
    }
}

/// Classifies an address; IPv6 addresses that embed an IPv4 one (IPv4-mapped
/// `::ffff:a.b.c.d`, the deprecated IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`)
/// are classified by the IPv4 address they reach.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    let [a, b, ..] = ip.octets();
    if a == 0 {
        AddressClass::Unspecified
    } else if ip.is_loopback() {
        AddressClass::Loopback
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        AddressClass::Private
    } else if ip.is_link_local() {
        AddressClass::LinkLocal
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else if ip.is_broadcast() || a >= 240 {
        AddressClass::Reserved
    } else {
        AddressClass::Public
    }
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let s = ip.segments();
    let embedded = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..6] == [0; 6] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded);
    }
    if ip.is_unique_local() || (s[0] & 0xffc0) == 0xfec0 {
        AddressClass::Private
    } else if ip.is_unicast_link_local() {
        AddressClass::LinkLocal
    } else if ip.is_multicast() {
        AddressClass::Multicast
    } else {
        AddressClass::Public
    }
}

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid url: {0}")]
    InvalidUrl(String),
    #[error("url scheme must be http or https, not {0:?}")]
    Scheme(String),
    #[error("url has no host")]
    NoHost,
    #[error("target {host} is a {class} address ({addr}), which is not allowed")]
    Refused {
        host: String,
        addr: IpAddr,
        class: AddressClass,
    },
    #[error("target {host} is a loopback name, which is not allowed")]
    LoopbackName { host: String },
    #[error("target {host} did not resolve to any address")]
    Unresolved { host: String },
}

/// Which non-public targets are allowed; see [`AddressClass`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TargetPolicy {
    pub allow_private: bool,
    pub allow_loopback: bool,
}

impl TargetPolicy {
    pub fn from_config(config: &WebhooksConfig) -> Self {
        Self {
            allow_private: config.allow_private_targets,
            allow_loopback: config.allow_loopback_targets,
        }
    }

    pub fn allows(&self, class: AddressClass) -> bool {
        match class {
            AddressClass::Public => true,
            AddressClass::Private => self.allow_private,
            AddressClass::Loopback => self.allow_loopback,
            AddressClass::LinkLocal
            | AddressClass::Unspecified
            | AddressClass::Multicast
            | AddressClass::Reserved => false,
        }
    }

    /// `Ok` when `addr`, which `host` names, may be contacted.
    pub fn check_ip(&self, host: &str, addr: IpAddr) -> Result<(), PolicyError> {
        let class = classify(addr);
        if self.allows(class) {
            Ok(())
        } else {
            Err(PolicyError::Refused {
                host: host.to_owned(),
                addr,
                class,
            })
        }
    }

    /// Checks what can be checked without DNS: an http(s) URL with a host; a literal IP
    /// host must be allowed, and so must a `localhost` name (RFC 6761). Names are checked
    /// again, resolved, at every delivery.
    pub fn check_url(&self, url: &str) -> Result<Url, PolicyError> {
        let url = Url::parse(url).map_err(|e| PolicyError::InvalidUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(PolicyError::Scheme(url.scheme().to_owned()));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or(PolicyError::NoHost)?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            self.check_ip(host, ip)?;
        } else {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            if (name == "localhost" || name.ends_with(".localhost")) && !self.allow_loopback {
                return Err(PolicyError::LoopbackName {
                    host: host.to_owned(),
                });
            }
        }
        Ok(url)
    }
}

/// A DNS resolver for the HTTP client that drops every address the policy refuses, and
/// fails (with the [`PolicyError`] as the source) when none is left.
#[derive(Debug, Clone)]
pub struct PolicyResolver {
    policy: TargetPolicy,
}

impl PolicyResolver {
    pub fn new(policy: TargetPolicy) -> Arc<Self> {
        Arc::new(Self { policy })
    }

    /// The allowed addresses among `addrs`, or why there are none.
    pub fn filter(
        &self,
        host: &str,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, PolicyError> {
        let mut allowed = Vec::new();
        let mut refused = None;
        for addr in addrs {
            match self.policy.check_ip(host, addr.ip()) {
                Ok(()) => allowed.push(addr),
                Err(e) => refused = Some(e),
            }
        }
        if allowed.is_empty() {
            return Err(refused.unwrap_or_else(|| PolicyError::Unresolved {
                host: host.to_owned(),
            }));
        }
        Ok(allowed)
    }
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed = this.filter(&host, resolved)?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn class(s: &str) -> AddressClass {
        classify(s.parse().unwrap())
    }

    #[test]
    fn addresses_are_classified() {
        use AddressClass::*;
        for (addr, want) in [
            ("93.184.216.34", Public),
            ("8.8.8.8", Public),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("172.32.0.1", Public),
            ("192.168.1.1", Private),
            ("100.64.0.1", Private),
            ("100.127.255.255", Private),
            ("100.128.0.1", Public),
            ("127.0.0.1", Loopback),
            ("127.8.9.10", Loopback),
            ("169.254.169.254", LinkLocal),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("224.0.0.1", Multicast),
            ("255.255.255.255", Reserved),
            ("240.0.0.1", Reserved),
            ("2606:4700::1111", Public),
            ("::1", Loopback),
            ("::", Unspecified),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("fe80::1", LinkLocal),
            ("ff02::1", Multicast),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:8.8.8.8", Public),
            ("::10.0.0.1", Private),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("64:ff9b::808:808", Public),
        ] {
            assert_eq!(class(addr), want, "{addr}");
        }
    }

    #[test]
    fn policy_allows_only_what_config_allows() {
        let strict = TargetPolicy::default();
        let open = TargetPolicy {
            allow_private: true,
            allow_loopback: true,
        };
        for c in [
            AddressClass::Private,
            AddressClass::Loopback,
            AddressClass::LinkLocal,
        ] {
            assert!(!strict.allows(c));
        }
        assert!(strict.allows(AddressClass::Public));
        assert!(open.allows(AddressClass::Private) && open.allows(AddressClass::Loopback));
        for c in [
            AddressClass::LinkLocal,
            AddressClass::Unspecified,
            AddressClass::Multicast,
            AddressClass::Reserved,
        ] {
            assert!(!open.allows(c), "{c} is never allowed");
        }
    }

    #[test]
    fn urls_are_checked_before_any_dns() {
        let strict = TargetPolicy::default();
        assert!(
            strict
                .check_url("https://hooks.example.com/concord")
                .is_ok()
        );
        assert!(strict.check_url("http://93.184.216.34:8080/x").is_ok());
        assert!(matches!(
            strict.check_url("ftp://example.com/"),
            Err(PolicyError::Scheme(s)) if s == "ftp"
        ));
        assert!(matches!(
            strict.check_url("not a url"),
            Err(PolicyError::InvalidUrl(_))
        ));
        assert!(matches!(
            strict.check_url("file:///etc/passwd"),
            Err(PolicyError::Scheme(_))
        ));
        for (url, want) in [
            ("http://127.0.0.1:9000/", AddressClass::Loopback),
            ("http://[::1]/", AddressClass::Loopback),
            ("http://[::ffff:10.0.0.1]/", AddressClass::Private),
            ("http://10.0.0.1/", AddressClass::Private),
            (
                "http://169.254.169.254/latest/meta-data",
                AddressClass::LinkLocal,
            ),
            ("http://0.0.0.0:8080/", AddressClass::Unspecified),
            // WHATWG URL parsing normalises these to 127.0.0.1.
            ("http://2130706433/", AddressClass::Loopback),
            ("http://0x7f.1/", AddressClass::Loopback),
        ] {
            assert!(
                matches!(strict.check_url(url), Err(PolicyError::Refused { class, .. }) if class == want),
                "{url}: {:?}",
                strict.check_url(url)
            );
        }
        assert!(matches!(
            strict.check_url("http://localhost:8080/"),
            Err(PolicyError::LoopbackName { .. })
        ));
        assert!(matches!(
            strict.check_url("http://api.LOCALHOST./"),
            Err(PolicyError::LoopbackName { .. })
        ));
        let loopback = TargetPolicy {
            allow_loopback: true,
            ..Default::default()
        };
        assert!(loopback.check_url("http://localhost:8080/").is_ok());
        assert!(loopback.check_url("http://127.0.0.1:8080/").is_ok());
        assert!(loopback.check_url("http://10.0.0.1/").is_err());
    }

    #[test]
    fn the_resolver_keeps_allowed_addresses_only() {
        let r = PolicyResolver::new(TargetPolicy::default());
        let addr = |s: &str| -> SocketAddr { s.parse().unwrap() };
        let kept = r
            .filter(
                "mixed.example",
                [addr("10.0.0.1:0"), addr("93.184.216.34:0")],
            )
            .unwrap();
        assert_eq!(kept, vec![addr("93.184.216.34:0")]);
        assert!(matches!(
            r.filter("rebound.example", [addr("127.0.0.1:0"), addr("[::1]:0")]),
            Err(PolicyError::Refused {
                class: AddressClass::Loopback,
                ..
            })
        ));
        assert!(matches!(
            r.filter("nothing.example", []),
            Err(PolicyError::Unresolved { .. })
        ));
    }
}
