use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::*;

fn parse(s: &str) -> Endpoint {
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn reason(s: &str) -> &'static str {
    match s.parse::<Endpoint>() {
        Ok(e) => panic!("{s:?} should not parse, got {e}"),
        Err(e) => {
            assert_eq!(e.input(), s);
            e.reason()
        }
    }
}

#[test]
fn tcp_with_or_without_its_scheme() {
    for text in [
        "tcp://example.org:7000",
        "example.org:7000",
        "TCP://example.org:7000",
    ] {
        let e = parse(text);
        assert_eq!(e.scheme(), Scheme::Tcp);
        assert_eq!(e.host(), "example.org");
        assert_eq!(e.port(), 7000);
        assert_eq!(e.path(), None);
        assert_eq!(e.to_string(), "tcp://example.org:7000");
    }
    let v4 = parse("127.0.0.1:1");
    assert_eq!((v4.host(), v4.port()), ("127.0.0.1", 1));
    let v6 = parse("tcp://[::1]:65535");
    assert_eq!((v6.host(), v6.port()), ("::1", 65535));
    assert_eq!(v6.to_string(), "tcp://[::1]:65535");
}

#[test]
fn ws_has_a_path_and_default_ports_kcp_does_not() {
    let ws = parse("ws://game.example:8080/play");
    assert_eq!(ws.scheme(), Scheme::Ws);
    assert_eq!(ws.path(), Some("/play"));
    assert_eq!(parse("ws://h").port(), 80);
    assert_eq!(parse("ws://h").path(), Some("/"));
    assert_eq!(parse("wss://h/a/b?x=1").port(), 443);
    assert_eq!(parse("wss://h/a/b?x=1").path(), Some("/a/b?x=1"));
    assert_eq!(parse("ws://h:9?q").path(), Some("/?q"));
    assert_eq!(parse("ws://h").to_string(), "ws://h:80/");
    let kcp = parse("kcp://10.0.0.1:4000");
    assert_eq!((kcp.scheme(), kcp.path()), (Scheme::Kcp, None));
    assert_eq!(kcp.transport(), TransportKind::Kcp);
    assert_eq!(parse("wss://h").transport(), TransportKind::Ws);
}

#[test]
fn what_is_not_an_endpoint_says_why() {
    assert!(reason("udp://h:1").contains("unknown scheme"));
    assert!(reason("h").contains("port is needed"));
    assert!(reason("kcp://h").contains("port is needed"));
    assert!(reason(":7000").contains("host is missing"));
    assert!(reason("h:0").contains("port 0"));
    assert!(reason("h:70000").contains("1 to 65535"));
    assert!(reason("h:+80").contains("1 to 65535"));
    assert!(reason("h:").contains("1 to 65535"));
    assert!(reason("::1:7000").contains("brackets"));
    assert!(reason("[::1:7000").contains("unclosed"));
    assert!(reason("[nope]:7000").contains("IPv6"));
    assert!(reason("[::1]7000").contains("':'"));
    assert!(reason("tcp://h:1/x").contains("path"));
    assert!(reason("h:1?x").contains("path"));
    assert!(reason("ws://u@h/").contains("user info"));
    assert!(reason("ws://h/#top").contains("fragment"));
    assert!(reason("h st:1").contains("space"));
    assert!(reason("h%41:1").contains("neither"));
    let err = "h".parse::<Endpoint>().unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"invalid endpoint "h": a port is needed (host:port)"#
    );
}

#[test]
fn printing_and_parsing_round_trip() {
    for text in [
        "tcp://a.b:1",
        "tcp://[fe80::1]:2",
        "ws://h:80/",
        "wss://[::1]:443/x?y=z",
        "kcp://1.2.3.4:5",
    ] {
        assert_eq!(parse(text).to_string(), text);
        assert_eq!(parse(&parse(text).to_string()), parse(text));
    }
}

#[test]
fn from_socket_addresses_and_host_port_pairs() {
    let addr: SocketAddr = "[::1]:9".parse().unwrap();
    assert_eq!(Endpoint::from(addr).to_string(), "tcp://[::1]:9");
    assert_eq!(Endpoint::from(addr).host(), "::1");
    // A link-local address keeps its scope id to be dialled with.
    let scoped = SocketAddr::V6(std::net::SocketAddrV6::new(
        "fe80::1".parse().unwrap(),
        9,
        0,
        3,
    ));
    assert_eq!(Endpoint::from(scoped).socket_addr(), Some(scoped));
    assert_ne!(Endpoint::from(scoped), parse("[fe80::1]:9"));
    assert_eq!(Endpoint::from(addr), parse("[::1]:9"));
    assert_eq!(
        ("localhost", 7).into_endpoint().unwrap(),
        parse("localhost:7")
    );
    assert_eq!(("[::1]", 7).into_endpoint().unwrap(), parse("[::1]:7"));
    assert_eq!(("::1", 7).into_endpoint().unwrap(), parse("[::1]:7"));
    assert_eq!(
        (Ipv4Addr::LOCALHOST, 7).into_endpoint().unwrap(),
        parse("127.0.0.1:7")
    );
    assert_eq!(
        (Ipv6Addr::LOCALHOST, 7).into_endpoint().unwrap(),
        parse("[::1]:7")
    );
    assert_eq!(
        ("bad host", 7).into_endpoint().unwrap_err().input(),
        "bad host"
    );
    assert_eq!(String::from("h:1").into_endpoint().unwrap(), parse("h:1"));
    assert!("h".into_endpoint().is_err());
}

#[test]
fn a_settings_file_holds_it_as_a_string() {
    let e = parse("ws://h:1/p");
    let json = serde_json::to_string(&e).unwrap();
    assert_eq!(json, r#""ws://h:1/p""#);
    assert_eq!(serde_json::from_str::<Endpoint>(&json).unwrap(), e);
    assert_eq!(
        serde_json::from_str::<Endpoint>(r#""localhost:7000""#).unwrap(),
        parse("tcp://localhost:7000")
    );
    let bad = serde_json::from_str::<Endpoint>(r#""nope""#).unwrap_err();
    assert!(bad.to_string().contains("a port is needed"), "{bad}");
}

#[test]
fn a_bare_endpoint_takes_the_kcp_transport_and_a_written_scheme_stays() {
    let bare = parse("localhost:7000").for_transport(TransportKind::Kcp);
    assert_eq!(bare.scheme(), Scheme::Kcp);
    assert_eq!(bare.to_string(), "kcp://localhost:7000");
    let addr: std::net::SocketAddr = "127.0.0.1:7000".parse().unwrap();
    let from_addr = Endpoint::from(addr).for_transport(TransportKind::Kcp);
    assert_eq!(
        (from_addr.scheme(), from_addr.socket_addr()),
        (Scheme::Kcp, Some(addr))
    );
    let written = parse("tcp://localhost:7000").for_transport(TransportKind::Kcp);
    assert_eq!(
        written.scheme(),
        Scheme::Tcp,
        "a written scheme is kept (and refused by kcp)"
    );
    assert_eq!(
        parse("localhost:7000")
            .for_transport(TransportKind::Tcp)
            .scheme(),
        Scheme::Tcp
    );
}
