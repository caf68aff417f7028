//! Drivers, chosen by the target URL's scheme (BEHAVIOURS 59), as dtm's
//! drivers are: `etcd://`, `mem://`, `static://`, and any a user adds.

#[cfg(feature = "etcd")]
mod etcd;
mod fixed;
mod mem;
mod target;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use walle_kvstore::BoxFuture;

#[cfg(feature = "etcd")]
pub use self::etcd::EtcdDriver;
pub use self::fixed::StaticDriver;
pub use self::mem::MemDriver;
pub use self::target::Target;
use crate::{Discovery, Error, Node, Registration, Registry, Result};

/// Registers endpoints and resolves targets of one scheme.
pub trait Driver: Send + Sync + fmt::Debug + 'static {
    /// The registry that publishes nodes for `target`.
    fn registry<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Arc<dyn Registry>>>;

    /// The nodes of `target`, watched.
    fn resolve<'a>(&'a self, target: &'a Target) -> BoxFuture<'a, Result<Discovery>>;
}

/// The drivers by scheme.
///
/// ```
/// use walle_discovery::{Drivers, Error};
///
/// let drivers = Drivers::new();
/// let schemes: Vec<_> = drivers.schemes().collect();
/// // `etcd` is there when the crate's `etcd` feature is on.
/// assert!(schemes.ends_with(&["mem", "static"]));
/// let unknown = drivers.driver(&"consul://127.0.0.1:8500/echo".parse()?);
/// assert!(matches!(unknown, Err(Error::UnknownScheme { known, .. }) if known.ends_with("mem, static")));
/// # Ok::<(), Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Drivers {
    drivers: BTreeMap<String, Arc<dyn Driver>>,
}

impl Drivers {
    /// `etcd` (with the `etcd` feature), `mem` (the process-wide
    /// [`MemDriver::shared`] store) and `static`.
    pub fn new() -> Self {
        let mut drivers = Drivers::empty();
        #[cfg(feature = "etcd")]
        drivers.add_driver("etcd", EtcdDriver::default());
        drivers.add_driver("mem", MemDriver::shared());
        drivers.add_driver("static", StaticDriver);
        drivers
    }

    /// No driver at all.
    pub fn empty() -> Self {
        Drivers {
            drivers: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) the driver of `scheme`; returns the one replaced.
    pub fn add_driver(&mut self, scheme: &str, driver: impl Driver) -> Option<Arc<dyn Driver>> {
        self.drivers
            .insert(scheme.to_ascii_lowercase(), Arc::new(driver))
    }

    /// The schemes there are drivers for, sorted.
    pub fn schemes(&self) -> impl Iterator<Item = &str> {
        self.drivers.keys().map(String::as_str)
    }

    /// The driver of `target`'s scheme, or [`Error::UnknownScheme`] naming
    /// the known ones ([`Error::DriverNotBuilt`] for `etcd` in a build
    /// without the `etcd` feature).
    pub fn driver(&self, target: &Target) -> Result<&Arc<dyn Driver>> {
        self.drivers.get(target.scheme()).ok_or_else(|| {
            if cfg!(not(feature = "etcd")) && target.scheme() == "etcd" {
                return Error::DriverNotBuilt {
                    scheme: "etcd".to_owned(),
                    feature: "etcd",
                };
            }
            Error::UnknownScheme {
                scheme: target.scheme().to_owned(),
                known: self.schemes().collect::<Vec<_>>().join(", "),
            }
        })
    }

    /// The registry for the target URL `url`.
    pub async fn registry(&self, url: &str) -> Result<Arc<dyn Registry>> {
        let target = Target::parse(url)?;
        self.driver(&target)?.registry(&target).await
    }

    /// Resolves the target URL `url`.
    pub async fn resolve(&self, url: &str) -> Result<Discovery> {
        let target = Target::parse(url)?;
        self.driver(&target)?.resolve(&target).await
    }

    /// Registers `node` for `ttl` in the registry of `url`.
    pub async fn register(&self, url: &str, node: Node, ttl: Duration) -> Result<Registration> {
        Registration::register(self.registry(url).await?, node, ttl).await
    }
}

impl Default for Drivers {
    fn default() -> Self {
        Drivers::new()
    }
}

impl std::str::FromStr for Target {
    type Err = Error;

    fn from_str(url: &str) -> Result<Target> {
        Target::parse(url)
    }
}
