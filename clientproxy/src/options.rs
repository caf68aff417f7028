//! The proxy's settings and the options of one call.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use walle_net::ClientOptions;
use walle_process::CallOptions;

use crate::HealthOptions;
use walle_process::serde_duration::millis;

/// Settings of a [`ClientProxy`](crate::ClientProxy). In JSON the
/// durations are milliseconds:
/// `{"balancer":"consistent_hash","max_failover":1,"wait_for_node":500}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ProxyOptions {
    /// The balancer, by name (see [`balancer_by_name`](crate::balancer_by_name)).
    /// Default `round_robin`.
    pub balancer: String,
    /// The options of each entry's client. The proxy dials itself (on an
    /// entry's first pick, and again after a lost connection), so the
    /// client's `lazy` and `reconnect` are not used.
    pub client: ClientOptions,
    /// The backoff of an entry after failed connects.
    pub health: HealthOptions,
    /// How many more entries a call that never reached the wire (or an
    /// idempotent one that failed on it) tries. Default 2.
    pub max_failover: u32,
    /// How long a call waits for a usable entry when there is none; 0
    /// (the default): fail at once with [`Error::NoNode`](crate::Error::NoNode).
    #[serde(with = "millis")]
    pub wait_for_node: Duration,
    /// How long a removed entry's calls in flight may take before its
    /// client is closed anyway. Default 5 s.
    #[serde(with = "millis")]
    pub drain: Duration,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            balancer: "round_robin".to_owned(),
            client: ClientOptions::default(),
            health: HealthOptions::default(),
            max_failover: 2,
            wait_for_node: Duration::ZERO,
            drain: Duration::from_secs(5),
        }
    }
}

impl ProxyOptions {
    /// Sets the balancer by name.
    pub fn balancer(mut self, name: impl Into<String>) -> Self {
        self.balancer = name.into();
        self
    }
    /// Sets the options of each entry's client.
    pub fn client(mut self, client: ClientOptions) -> Self {
        self.client = client;
        self
    }
    /// Sets the backoff after failed connects.
    pub fn health(mut self, health: HealthOptions) -> Self {
        self.health = health;
        self
    }
    /// Sets how many more entries a call may try.
    pub fn max_failover(mut self, n: u32) -> Self {
        self.max_failover = n;
        self
    }
    /// Sets how long a call waits for a usable entry.
    pub fn wait_for_node(mut self, wait: Duration) -> Self {
        self.wait_for_node = wait;
        self
    }
    /// Sets the bound of a removed entry's drain.
    pub fn drain(mut self, wait: Duration) -> Self {
        self.drain = wait;
        self
    }
}

/// Options of one call through the proxy.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct ProxyCallOptions<'a> {
    /// The options of the call itself (timeout, metadata).
    pub call: CallOptions<'a>,
    /// The balancing key (for example a user id) a consistent-hash
    /// balancer maps to an entry.
    pub key: Option<&'a [u8]>,
    /// The call may run twice: one that failed after reaching the wire
    /// (connection lost, timeout) is retried on another entry.
    pub idempotent: bool,
}

impl<'a> ProxyCallOptions<'a> {
    /// Sets the call's own options.
    pub fn call(mut self, call: CallOptions<'a>) -> Self {
        self.call = call;
        self
    }
    /// Sets the balancing key.
    pub fn key(mut self, key: &'a [u8]) -> Self {
        self.key = Some(key);
        self
    }
    /// Marks the call idempotent.
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_load_from_json_with_milliseconds_and_defaults() {
        let options: ProxyOptions = serde_json::from_str(
            r#"{"balancer":"consistent_hash","max_failover":1,"wait_for_node":500,"drain":250}"#,
        )
        .expect("json");
        assert_eq!(options.balancer, "consistent_hash");
        assert_eq!(options.max_failover, 1);
        assert_eq!(options.wait_for_node, Duration::from_millis(500));
        assert_eq!(options.drain, Duration::from_millis(250));
        assert_eq!(options.health, HealthOptions::default());

        let defaults: ProxyOptions = serde_json::from_str("{}").expect("json");
        assert_eq!(defaults, ProxyOptions::default());
        assert_eq!(defaults.max_failover, 2);
        assert_eq!(defaults.wait_for_node, Duration::ZERO);
        let back: ProxyOptions =
            serde_json::from_slice(&serde_json::to_vec(&options).expect("to")).expect("from");
        assert_eq!(back, options);
    }
}
