use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::EtcdStore;
use crate::Result;

/// Options of an [`EtcdStore`]. Durations are in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EtcdOptions {
    /// `host:port` or `http://host:port` of each etcd member.
    pub endpoints: Vec<String>,
    /// How long to wait for a connection.
    pub connect_timeout_ms: u64,
    /// How long to wait for the answer to one request.
    pub request_timeout_ms: u64,
    /// The first pause before a watch or keep-alive tries again after a
    /// failure; it doubles up to a second.
    pub retry_ms: u64,
    /// HTTP/2 keep-alive ping interval (0: off); a connection whose peer
    /// stops answering is dropped and opened again.
    pub keep_alive_ms: u64,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            endpoints: vec!["127.0.0.1:2379".to_owned()],
            connect_timeout_ms: 3_000,
            request_timeout_ms: 5_000,
            retry_ms: 100,
            keep_alive_ms: 10_000,
        }
    }
}

impl EtcdOptions {
    pub(super) fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }

    pub(super) fn retry(&self) -> Duration {
        Duration::from_millis(self.retry_ms.max(1))
    }

    /// The endpoints as URLs (`http://` added where no scheme is given).
    pub(super) fn urls(&self) -> Vec<String> {
        let url = |e: &String| match e.contains("://") {
            true => e.clone(),
            false => format!("http://{e}"),
        };
        self.endpoints.iter().map(url).collect()
    }
}

/// Builds an [`EtcdStore`]: `EtcdStore::builder().endpoint(..).connect()`.
#[derive(Debug, Clone, Default)]
pub struct EtcdBuilder {
    options: EtcdOptions,
    endpoints_set: bool,
}

impl EtcdBuilder {
    /// A builder with [`EtcdOptions::default`].
    pub fn new(options: EtcdOptions) -> Self {
        EtcdBuilder {
            options,
            endpoints_set: false,
        }
    }

    /// Adds an endpoint (`host:port` or a URL); the first call replaces the
    /// default `127.0.0.1:2379`.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        if !self.endpoints_set {
            self.options.endpoints.clear();
            self.endpoints_set = true;
        }
        self.options.endpoints.push(endpoint.into());
        self
    }

    /// How long to wait for the answer to one request.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.options.request_timeout_ms = millis(timeout);
        self
    }

    /// How long to wait for a connection.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout_ms = millis(timeout);
        self
    }

    /// The first pause before a retry.
    pub fn retry(mut self, pause: Duration) -> Self {
        self.options.retry_ms = millis(pause);
        self
    }

    /// The options built so far.
    pub fn options(&self) -> &EtcdOptions {
        &self.options
    }

    /// Connects. The connection itself is made on first use, so this
    /// succeeds while etcd is down; requests then fail until it is back.
    pub async fn connect(self) -> Result<EtcdStore> {
        EtcdStore::connect(self.options).await
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
