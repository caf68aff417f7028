//! Publishing a wildcard listen address (BEHAVIOURS 52): a node that
//! listens on `0.0.0.0:port` or `[::]:port` is registered under an address
//! other hosts can dial.
//!
//! The address is, in order: the local address the default route would
//! use (found by connecting a UDP socket, which sends nothing); else the
//! first non-loopback address of an interface that is up; else, when
//! loopback is the only interface there is, the loopback address (logged:
//! only local callers can reach it). With no address of the family at
//! all, registration fails with [`Error::NoReachableAddress`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use nix::ifaddrs::getifaddrs;
use nix::net::if_::InterfaceFlags;

use crate::{Error, Result};

/// `addr` as other hosts can dial it: unchanged unless its host is a
/// wildcard (`0.0.0.0`, `::`), then with a local address in its place.
/// Host names are kept as they are.
pub fn reachable_addr(addr: &str) -> Result<String> {
    let Ok(socket) = addr.parse::<SocketAddr>() else {
        return Ok(addr.to_owned());
    };
    if !socket.ip().is_unspecified() {
        return Ok(addr.to_owned());
    }
    let v6 = socket.is_ipv6();
    let ip = choose(route_address(v6), &interface_addresses(v6), v6).map_err(|reason| {
        Error::NoReachableAddress {
            addr: addr.to_owned(),
            reason,
        }
    })?;
    if ip.is_loopback() {
        tracing::warn!(%addr, %ip, "loopback is the only interface: publishing a local-only address");
    }
    Ok(SocketAddr::new(ip, socket.port()).to_string())
}

/// The address picked from the default-route probe and the interface
/// addresses (of the right family).
fn choose(route: Option<IpAddr>, interfaces: &[IpAddr], v6: bool) -> Result<IpAddr, String> {
    if let Some(ip) = route.filter(|ip| usable(*ip)) {
        return Ok(ip);
    }
    if let Some(ip) = interfaces.iter().copied().find(|ip| usable(*ip)) {
        return Ok(ip);
    }
    if let Some(ip) = interfaces.iter().copied().find(IpAddr::is_loopback) {
        return Ok(ip);
    }
    let family = if v6 { "IPv6" } else { "IPv4" };
    Err(format!("no {family} interface address is up"))
}

fn usable(ip: IpAddr) -> bool {
    let link_local = match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    !ip.is_loopback() && !ip.is_unspecified() && !link_local
}

/// The source address the kernel picks towards a documentation address
/// (RFC 5737 / RFC 3849): the default route's interface.
fn route_address(v6: bool) -> Option<IpAddr> {
    let (bind, probe): (SocketAddr, SocketAddr) = match v6 {
        false => (
            (Ipv4Addr::UNSPECIFIED, 0).into(),
            (Ipv4Addr::new(192, 0, 2, 1), 9).into(),
        ),
        true => {
            let doc = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
            ((Ipv6Addr::UNSPECIFIED, 0).into(), (doc, 9).into())
        }
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(probe).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// The addresses of the family of the interfaces that are up.
fn interface_addresses(v6: bool) -> Vec<IpAddr> {
    let Ok(interfaces) = getifaddrs() else {
        return Vec::new();
    };
    interfaces
        .filter(|i| i.flags.contains(InterfaceFlags::IFF_UP))
        .filter_map(|i| {
            let address = i.address?;
            match v6 {
                false => address.as_sockaddr_in().map(|a| IpAddr::V4(a.ip())),
                true => address.as_sockaddr_in6().map(|a| IpAddr::V6(a.ip())),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn b52_concrete_addresses_and_host_names_stay() {
        assert_eq!(reachable_addr("10.1.2.3:7000").unwrap(), "10.1.2.3:7000");
        assert_eq!(reachable_addr("127.0.0.1:7000").unwrap(), "127.0.0.1:7000");
        assert_eq!(
            reachable_addr("game-1.internal:7000").unwrap(),
            "game-1.internal:7000"
        );
    }

    #[test]
    fn b52_wildcard_becomes_an_interface_address() {
        let published: SocketAddr = reachable_addr("0.0.0.0:7000").unwrap().parse().unwrap();
        assert_eq!(published.port(), 7000);
        assert!(!published.ip().is_unspecified());
        let mine = interface_addresses(false);
        assert!(
            mine.contains(&published.ip()),
            "{published} not among {mine:?}"
        );
    }

    #[test]
    fn b52_choice_prefers_route_then_interfaces_then_lone_loopback() {
        let lo = ip("127.0.0.1");
        let eth = ip("10.0.0.5");
        assert_eq!(
            choose(Some(ip("192.168.1.9")), &[lo, eth], false),
            Ok(ip("192.168.1.9"))
        );
        assert_eq!(choose(None, &[lo, eth], false), Ok(eth));
        assert_eq!(choose(Some(lo), &[ip("169.254.0.3"), eth], false), Ok(eth));
        assert_eq!(
            choose(None, &[lo], false),
            Ok(lo),
            "loopback alone is accepted"
        );
        let v6 = [ip("::1"), ip("fe80::1"), ip("2001:db8::7")];
        assert_eq!(choose(None, &v6, true), Ok(ip("2001:db8::7")));
        let none = choose(None, &[], true).unwrap_err();
        assert!(none.contains("IPv6"), "{none}");
    }
}
