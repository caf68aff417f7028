//! What the root crate's process tests share.

use std::path::PathBuf;
use std::process::Command;

/// The built example `name`, next to this test's binary
/// (`target/<profile>/examples/<name>`); built first, with the `etcd`
/// feature, if missing.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let binary = profile_dir.join("examples").join(name);
    if !binary.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["build", "--example", name, "--features", "etcd"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap_or_else(|e| panic!("run cargo build --example {name}: {e}"));
        assert!(
            status.success() && binary.is_file(),
            "no {}",
            binary.display()
        );
    }
    binary
}
