//! Balancers by name, as a node's `bn` field or a config file gives them.

use walle_discovery::Node;

use super::{Balancer, ConsistentHash, LeastOutstanding, Random, RoundRobin};
use crate::Error;

/// The names [`balancer_by_name`] knows, as the error for an unknown one
/// lists them. Each also goes by the short names of its doc.
pub const KNOWN_BALANCERS: &[&str] = &[
    "round_robin",
    "random",
    "consistent_hash",
    "least_outstanding",
];

/// A fresh built-in balancer by name.
///
/// Case and `-`/`_` do not matter (`round-robin`, as nodes in discovery
/// carry it, is `round_robin`). Short names: `rr` for round-robin, `rand`
/// for random, `ch` or `hash` for consistent hash, `p2c` or `lo` for
/// least-outstanding.
///
/// ```
/// use walle_clientproxy::balancer_by_name;
///
/// assert_eq!(balancer_by_name("round-robin")?.name(), "round_robin");
/// assert_eq!(balancer_by_name("p2c")?.name(), "least_outstanding");
/// let err = balancer_by_name("fastest").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     r#"unknown balancer "fastest"; known: round_robin, random, consistent_hash, least_outstanding"#
/// );
/// # Ok::<(), walle_clientproxy::Error>(())
/// ```
pub fn balancer_by_name(name: &str) -> Result<Box<dyn Balancer>, Error> {
    let normal: String = name
        .trim()
        .chars()
        .map(|c| match c {
            '-' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect();
    Ok(match normal.as_str() {
        "round_robin" | "roundrobin" | "rr" => Box::new(RoundRobin::new()),
        "random" | "rand" => Box::new(Random::new()),
        "consistent_hash" | "consistenthash" | "ch" | "hash" => Box::new(ConsistentHash::new()),
        "least_outstanding" | "leastoutstanding" | "p2c" | "lo" => {
            Box::new(LeastOutstanding::new())
        }
        _ => {
            return Err(Error::UnknownBalancer {
                name: name.to_owned(),
                known: KNOWN_BALANCERS.join(", "),
            });
        }
    })
}

/// The balancer `node` asks its callers to use (its `bn` field), or
/// round-robin when it names none.
pub fn balancer_for_node(node: &Node) -> Result<Box<dyn Balancer>, Error> {
    if node.bn.trim().is_empty() {
        return Ok(Box::new(RoundRobin::new()));
    }
    balancer_by_name(&node.bn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_name_and_alias_makes_its_balancer() {
        for (names, made) in [
            (
                &["round_robin", "Round-Robin", "rr", "roundrobin"][..],
                "round_robin",
            ),
            (&["random", "RAND"][..], "random"),
            (
                &["consistent_hash", "consistent-hash", "ch", "hash"][..],
                "consistent_hash",
            ),
            (
                &["least_outstanding", "least-outstanding", "p2c", "lo"][..],
                "least_outstanding",
            ),
        ] {
            for name in names {
                let balancer = balancer_by_name(name).expect(name);
                assert_eq!(balancer.name(), made, "{name}");
            }
        }
        for known in KNOWN_BALANCERS {
            assert_eq!(balancer_by_name(known).expect(known).name(), *known);
        }
    }

    #[test]
    fn an_unknown_name_is_an_error_naming_the_known_ones() {
        let err = balancer_by_name("weighted").expect_err("unknown");
        let text = err.to_string();
        assert!(text.contains("\"weighted\""), "{text}");
        for known in KNOWN_BALANCERS {
            assert!(text.contains(known), "{text}");
        }
        assert!(balancer_by_name("").is_err());
    }

    #[test]
    fn a_node_picks_its_balancer_or_round_robin() {
        let node = Node::new("127.0.0.1:1").with_balancer("consistent-hash");
        assert_eq!(
            balancer_for_node(&node).expect("known").name(),
            "consistent_hash"
        );
        let plain = Node::new("127.0.0.1:1");
        assert_eq!(
            balancer_for_node(&plain).expect("default").name(),
            "round_robin"
        );
        let odd = Node::new("127.0.0.1:1").with_balancer("nope");
        assert!(balancer_for_node(&odd).is_err());
    }
}
