//! The limits of a [`SizedPool`](crate::SizedPool), and their validation.

use crate::local::MAX_CLASSES;

/// Limits of a [`SizedPool`](crate::SizedPool). All fields have defaults,
/// so a file needs only the ones it changes; a pool checks them when it is
/// built ([`SizedPool::with_config`](crate::SizedPool::with_config)).
///
/// ```
/// use walle_mempool::{ConfigError, SizedPool, SizedPoolConfig};
///
/// let pool = SizedPool::with_config(SizedPoolConfig::default().max_class(1 << 20))?;
/// assert_eq!(pool.class_size_for(1 << 20), Some(1 << 20));
///
/// let absurd = SizedPoolConfig::default().min_class(usize::MAX);
/// assert!(matches!(
///     SizedPool::with_config(absurd),
///     Err(ConfigError::ClassTooLarge { .. })
/// ));
/// # Ok::<(), ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SizedPoolConfig {
    /// Smallest class, in bytes (rounded up to a power of two, at least
    /// 16, at most [`LARGEST_CLASS`](SizedPoolConfig::LARGEST_CLASS)).
    /// Default 64.
    pub min_class: usize,
    /// Largest class, in bytes (rounded up to a power of two, at least
    /// `min_class`, at most [`LARGEST_CLASS`](SizedPoolConfig::LARGEST_CLASS);
    /// at most 16 classes in all). Default 64 KiB.
    pub max_class: usize,
    /// Upper bound of the bytes held in the shared queues (each class keeps
    /// room for at least 4 buffers whatever the bound). Default 64 MiB.
    pub max_shared_bytes: usize,
    /// Upper bound of the bytes held in each thread's cache for this pool
    /// (each class keeps room for at least 2 buffers). Default 1 MiB.
    pub max_local_bytes: usize,
}

impl Default for SizedPoolConfig {
    fn default() -> Self {
        SizedPoolConfig {
            min_class: 64,
            max_class: 64 * 1024,
            max_shared_bytes: 64 << 20,
            max_local_bytes: 1 << 20,
        }
    }
}

/// A [`SizedPoolConfig`] a pool cannot be built from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A class bound above [`SizedPoolConfig::LARGEST_CLASS`].
    #[error("{field} of {value} bytes is above the largest class a pool supports ({max} bytes)")]
    ClassTooLarge {
        /// The field: `min_class` or `max_class`.
        field: &'static str,
        /// Its value.
        value: usize,
        /// The largest class supported.
        max: usize,
    },
    /// `max_class` rounds to less than `min_class`.
    #[error("max_class ({max_class} bytes) is below min_class ({min_class} bytes)")]
    MaxBelowMin {
        /// The smallest class, rounded.
        min_class: usize,
        /// The largest class, rounded.
        max_class: usize,
    },
    /// More size classes between the bounds than a pool has.
    #[error(
        "{min_class} to {max_class} bytes spans {classes} size classes; a pool has at most {max}"
    )]
    TooManyClasses {
        /// The smallest class, rounded.
        min_class: usize,
        /// The largest class, rounded.
        max_class: usize,
        /// Classes the bounds span.
        classes: usize,
        /// Most classes a pool has.
        max: usize,
    },
}

/// A checked configuration: log2 of the smallest class and the classes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub(crate) min_shift: u32,
    pub(crate) classes: usize,
}

impl SizedPoolConfig {
    /// The largest class a pool supports: 64 MiB. Larger requests are
    /// served by the heap and counted as `oversize`.
    pub const LARGEST_CLASS: usize = 64 << 20;

    /// Sets the smallest class.
    pub fn min_class(mut self, bytes: usize) -> Self {
        self.min_class = bytes;
        self
    }
    /// Sets the largest class.
    pub fn max_class(mut self, bytes: usize) -> Self {
        self.max_class = bytes;
        self
    }
    /// Sets the bound of the shared queues.
    pub fn max_shared_bytes(mut self, bytes: usize) -> Self {
        self.max_shared_bytes = bytes;
        self
    }
    /// Sets the bound of each thread's cache.
    pub fn max_local_bytes(mut self, bytes: usize) -> Self {
        self.max_local_bytes = bytes;
        self
    }

    /// Checks the class bounds, as building a pool does.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.layout().map(|_| ())
    }

    pub(crate) fn layout(&self) -> Result<Layout, ConfigError> {
        let max = Self::LARGEST_CLASS;
        for (field, value) in [("min_class", self.min_class), ("max_class", self.max_class)] {
            if value > max {
                return Err(ConfigError::ClassTooLarge { field, value, max });
            }
        }
        // Both at most LARGEST_CLASS (a power of two): no overflow below.
        let min_class = self.min_class.max(16).next_power_of_two();
        let max_class = self.max_class.max(1).next_power_of_two();
        if max_class < min_class {
            return Err(ConfigError::MaxBelowMin {
                min_class,
                max_class,
            });
        }
        let min_shift = min_class.trailing_zeros();
        let classes = (max_class.trailing_zeros() - min_shift + 1) as usize;
        if classes > MAX_CLASSES {
            return Err(ConfigError::TooManyClasses {
                min_class,
                max_class,
                classes,
                max: MAX_CLASSES,
            });
        }
        Ok(Layout { min_shift, classes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_valid() {
        let layout = SizedPoolConfig::default().layout().expect("valid");
        assert_eq!((layout.min_shift, layout.classes), (6, 11));
    }

    /// A `min_class` above 2^63 once wrapped `next_power_of_two` to 0 and
    /// built classes too small for the free list's link.
    #[test]
    fn huge_class_bounds_are_refused() {
        for bytes in [
            usize::MAX,
            (1 << 63) + 1,
            SizedPoolConfig::LARGEST_CLASS + 1,
        ] {
            let config = SizedPoolConfig::default().min_class(bytes);
            assert!(
                matches!(
                    config.validate(),
                    Err(ConfigError::ClassTooLarge {
                        field: "min_class",
                        ..
                    })
                ),
                "{bytes}"
            );
            let config = SizedPoolConfig::default().max_class(bytes);
            assert!(
                matches!(
                    config.validate(),
                    Err(ConfigError::ClassTooLarge {
                        field: "max_class",
                        ..
                    })
                ),
                "{bytes}"
            );
        }
        let largest = SizedPoolConfig::LARGEST_CLASS;
        let config = SizedPoolConfig::default()
            .min_class(largest)
            .max_class(largest);
        assert_eq!(config.layout().expect("valid").classes, 1);
    }

    #[test]
    fn inverted_or_too_wide_bounds_are_refused() {
        let config = SizedPoolConfig::default().min_class(4096).max_class(1000);
        assert_eq!(
            config.validate(),
            Err(ConfigError::MaxBelowMin {
                min_class: 4096,
                max_class: 1024
            })
        );
        let config = SizedPoolConfig::default().min_class(16).max_class(1 << 20);
        let err = config.validate().expect_err("17 classes");
        assert!(matches!(
            err,
            ConfigError::TooManyClasses { classes: 17, .. }
        ));
        assert!(err.to_string().contains("at most 16"), "{err}");
        // Small values round up, as documented: 0 and 1 mean 16.
        let config = SizedPoolConfig::default().min_class(0).max_class(16);
        assert_eq!(config.layout().expect("valid").classes, 1);
    }

    #[test]
    fn a_file_with_a_bad_bound_loads_then_fails_to_build() {
        let config: SizedPoolConfig =
            serde_json::from_str(r#"{"min_class": 18446744073709551615}"#).expect("parses");
        assert!(config.validate().is_err());
    }
}
