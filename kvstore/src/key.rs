//! Key normalisation (BEHAVIOURS 45): `"/a/b"`, `"a/b"`, `"a/b/"` and
//! `"a//b"` name the same key, `/a/b`.

use crate::{Error, Result};

/// The canonical form of `key`: one leading `/`, no empty segment, no
/// trailing `/`. Idempotent. The root (`""`, `"/"`) is refused, since no
/// value lives there.
///
/// ```
/// use walle_kvstore::normalize_key;
/// assert_eq!(normalize_key("a/b/").unwrap(), "/a/b");
/// assert_eq!(normalize_key("//a//b").unwrap(), "/a/b");
/// assert!(normalize_key("/").is_err());
/// ```
pub fn normalize_key(key: &str) -> Result<String> {
    let normal = canonical(key);
    if normal.len() <= 1 {
        return Err(Error::InvalidKey(key.to_owned()));
    }
    Ok(normal)
}

/// The prefix that selects the keys strictly beneath the directory
/// `prefix`: `"services/echo"` gives `"/services/echo/"`, so
/// `/services/echo2/x` is not part of it; the root gives `"/"`.
///
/// ```
/// use walle_kvstore::tree_prefix;
/// assert_eq!(tree_prefix("services/echo"), "/services/echo/");
/// assert_eq!(tree_prefix(""), "/");
/// ```
pub fn tree_prefix(prefix: &str) -> String {
    let mut normal = canonical(prefix);
    if normal.len() > 1 {
        normal.push('/');
    }
    normal
}

fn canonical(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 1);
    for segment in key.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b45_forms_of_one_key_are_equal() {
        for form in ["/a/b", "a/b", "a/b/", "//a///b//"] {
            assert_eq!(normalize_key(form).unwrap(), "/a/b", "{form}");
        }
    }

    #[test]
    fn b45_normalisation_is_idempotent() {
        for form in ["/a/b", "x", "x/y/z/", "/n-1/node.7"] {
            let once = normalize_key(form).unwrap();
            assert_eq!(normalize_key(&once).unwrap(), once);
            let tree = tree_prefix(form);
            assert_eq!(tree_prefix(&tree), tree);
        }
    }

    #[test]
    fn root_is_not_a_key_but_is_a_tree() {
        assert!(matches!(normalize_key(""), Err(Error::InvalidKey(_))));
        assert!(matches!(normalize_key("///"), Err(Error::InvalidKey(_))));
        assert_eq!(tree_prefix("/"), "/");
        assert_eq!(tree_prefix("/a/"), "/a/");
    }
}
