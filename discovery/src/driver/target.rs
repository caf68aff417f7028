use std::fmt;

use crate::{Error, Result};

/// A discovery target: `scheme://authority/path`, e.g.
/// `etcd://10.0.0.1:2379,10.0.0.2:2379/services/echo`,
/// `mem:///services/echo`, `static://10.0.0.5:7000,10.0.0.6:7000`.
///
/// ```
/// use walle_discovery::Target;
///
/// let target = Target::parse("etcd://127.0.0.1:2379,127.0.0.2:2379/services/echo")?;
/// assert_eq!(target.scheme(), "etcd");
/// assert_eq!(target.hosts().collect::<Vec<_>>(), ["127.0.0.1:2379", "127.0.0.2:2379"]);
/// assert_eq!(target.path(), "/services/echo");
/// # Ok::<(), walle_discovery::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    scheme: String,
    authority: String,
    path: String,
}

impl Target {
    /// Splits `url` into scheme, authority and path.
    pub fn parse(url: &str) -> Result<Target> {
        let invalid = |reason| Error::InvalidTarget {
            target: url.to_owned(),
            reason,
        };
        let (scheme, rest) = url.split_once("://").ok_or(invalid("no scheme://"))?;
        let valid = |c: char| c.is_ascii_alphanumeric() || "+-.".contains(c);
        if scheme.is_empty() || !scheme.chars().all(valid) {
            return Err(invalid(
                "the scheme must be letters, digits, '+', '-' or '.'",
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        Ok(Target {
            scheme: scheme.to_ascii_lowercase(),
            authority: authority.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The scheme, lower case: it picks the driver.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// What is between `://` and the path (hosts for etcd and static).
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The comma-separated entries of the authority.
    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.authority.split(',').filter(|host| !host.is_empty())
    }

    /// The path, from its leading `/` (empty when there is none).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path as a service prefix: refused when it is empty or the root,
    /// so that no driver publishes at the top of a store.
    pub fn prefix(&self) -> Result<&str> {
        match self.path.trim_matches('/').is_empty() {
            true => Err(Error::InvalidTarget {
                target: self.to_string(),
                reason: "a service path is needed, such as /services/echo",
            }),
            false => Ok(&self.path),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}{}", self.scheme, self.authority, self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_of_the_three_drivers() {
        let mem = Target::parse("mem:///services/echo").unwrap();
        assert_eq!(
            (mem.scheme(), mem.authority(), mem.path()),
            ("mem", "", "/services/echo")
        );
        let fixed = Target::parse("static://10.0.0.5:7000,10.0.0.6:7000").unwrap();
        assert_eq!(fixed.hosts().count(), 2);
        assert_eq!(fixed.path(), "");
        assert!(fixed.prefix().is_err());
        let etcd = Target::parse("ETCD://h:2379/s").unwrap();
        assert_eq!(etcd.scheme(), "etcd");
        assert_eq!(etcd.to_string(), "etcd://h:2379/s");
    }

    #[test]
    fn malformed_targets_are_refused() {
        for bad in ["127.0.0.1:2379/services", "://x/y", "e tcd://h/p"] {
            assert!(
                matches!(Target::parse(bad), Err(Error::InvalidTarget { .. })),
                "{bad}"
            );
        }
    }
}
