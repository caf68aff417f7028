use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// Whether a node takes new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Taking calls (JSON `"online"`).
    #[default]
    Online,
    /// Registered but not to be picked: draining, or not ready yet
    /// (JSON `"offline"`).
    Offline,
}

/// One endpoint of a service, as stored under `/<prefix>/<id>`.
///
/// The JSON value carries `net`, `addr`, `bn`, `state` and `md`; the id is
/// the last segment of the key, not part of the value (BEHAVIOURS 54):
///
/// ```
/// use walle_discovery::{Node, State};
///
/// let node = Node::new("10.0.0.5:7000").with_id("echo-1").with_metadata("zone", "a");
/// let json = node.to_json()?;
/// assert_eq!(
///     String::from_utf8(json.clone())?,
///     r#"{"net":"tcp","addr":"10.0.0.5:7000","bn":"","state":"online","md":{"zone":"a"}}"#
/// );
/// assert_eq!(Node::from_json("echo-1", &json)?, node);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The node id: the storage key's last segment (not in the JSON).
    #[serde(skip)]
    pub id: String,
    /// The network: `tcp`, `udp` (kcp), `ws`, ...
    #[serde(default)]
    pub net: String,
    /// The address to dial, `host:port`.
    pub addr: String,
    /// The balancer name the service asks its callers to use.
    #[serde(default)]
    pub bn: String,
    /// Online or offline.
    #[serde(default)]
    pub state: State,
    /// Free-form metadata.
    #[serde(default)]
    pub md: BTreeMap<String, String>,
}

impl Node {
    /// An online `tcp` node at `addr` with a fresh unique id.
    pub fn new(addr: impl Into<String>) -> Self {
        Node {
            id: new_id(),
            net: "tcp".to_owned(),
            addr: addr.into(),
            bn: String::new(),
            state: State::Online,
            md: BTreeMap::new(),
        }
    }

    /// With this id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// With this network name.
    pub fn with_net(mut self, net: impl Into<String>) -> Self {
        self.net = net.into();
        self
    }

    /// With this balancer name.
    pub fn with_balancer(mut self, bn: impl Into<String>) -> Self {
        self.bn = bn.into();
        self
    }

    /// With this state.
    pub fn with_state(mut self, state: State) -> Self {
        self.state = state;
        self
    }

    /// With one more metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.md.insert(key.into(), value.into());
        self
    }

    /// Whether the node takes work.
    pub fn is_online(&self) -> bool {
        self.state == State::Online
    }

    /// The JSON value stored for this node.
    pub fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(self)
    }

    /// The node stored under id `id` with JSON value `json`.
    pub fn from_json(id: impl Into<String>, json: &[u8]) -> serde_json::Result<Node> {
        let mut node: Node = serde_json::from_slice(json)?;
        node.id = id.into();
        Ok(node)
    }
}

/// 16 hex digits, unique per process and call, unlikely to collide across
/// processes (process id, time and a per-process random seed are mixed in).
fn new_id() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::hash::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u64(COUNT.fetch_add(1, Ordering::Relaxed));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    hasher.write_u128(now.map_or(0, |d| d.as_nanos()));
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b54_json_round_trips_and_leaves_the_id_to_the_key() {
        let node = Node::new("127.0.0.1:7000")
            .with_id("n-1")
            .with_net("ws")
            .with_balancer("round-robin")
            .with_state(State::Offline)
            .with_metadata("weight", "3");
        let json = node.to_json().unwrap();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let fields: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(fields, ["addr", "bn", "md", "net", "state"]);
        assert_eq!(value["state"], "offline");
        assert_eq!(Node::from_json("n-1", &json).unwrap(), node);
    }

    #[test]
    fn b54_missing_optional_fields_take_defaults() {
        let node = Node::from_json("x", br#"{"addr":"10.1.1.1:9"}"#).unwrap();
        assert_eq!(node.state, State::Online);
        assert!(node.md.is_empty() && node.bn.is_empty());
        assert!(
            Node::from_json("x", br#"{"net":"tcp"}"#).is_err(),
            "addr is required"
        );
        assert!(Node::from_json("x", br#"{"addr":"a","state":"gone"}"#).is_err());
    }

    #[test]
    fn fresh_ids_differ() {
        let ids: std::collections::HashSet<String> = (0..1000).map(|_| new_id()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
