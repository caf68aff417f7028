//! The consistent-hash ring through the public API (BEHAVIOURS 57).

use walle_clientproxy::{Balancer, ConsistentHash};

const KEYS: u64 = 10_000;

fn key(k: u64) -> [u8; 8] {
    k.to_be_bytes()
}

/// Which id each of the keys maps to, every entry usable.
fn owners(ids: &[&str]) -> Vec<String> {
    let mut ring = ConsistentHash::new();
    ring.update(ids);
    let usable = vec![true; ids.len()];
    (0..KEYS)
        .map(|k| {
            let index = ring.pick(Some(&key(k)), &usable).expect("usable");
            ids[index].to_owned()
        })
        .collect()
}

#[test]
fn a_key_stays_on_its_entry_while_membership_is_stable() {
    let ids = ["node-a", "node-b", "node-c", "node-d"];
    let mut ring = ConsistentHash::new();
    ring.update(&ids);
    let usable = [true; 4];
    let first: Vec<_> = (0..1000)
        .map(|k| ring.pick(Some(&key(k)), &usable))
        .collect();
    for _ in 0..3 {
        let again: Vec<_> = (0..1000)
            .map(|k| ring.pick(Some(&key(k)), &usable))
            .collect();
        assert_eq!(again, first);
    }
    // A fresh ring from the same ids (another proxy, or after an update
    // that changed nothing) agrees.
    let mut other = ConsistentHash::new();
    other.update(&ids);
    other.update(&ids);
    let theirs: Vec<_> = (0..1000)
        .map(|k| other.pick(Some(&key(k)), &usable))
        .collect();
    assert_eq!(theirs, first);
    // The ids in another order: the same owners by id.
    let shuffled = ["node-c", "node-a", "node-d", "node-b"];
    assert_eq!(owners(&shuffled), owners(&ids));
    // Every entry owns a fair share of the keys.
    let by_id = owners(&ids);
    for id in ids {
        let share = by_id.iter().filter(|o| *o == id).count() as f64 / KEYS as f64;
        assert!((0.15..0.35).contains(&share), "{id}: {share}");
    }
}

#[test]
fn a_joining_entry_takes_about_a_fifth_and_nothing_moves_between_the_others() {
    let before = owners(&["node-a", "node-b", "node-c", "node-d"]);
    let after = owners(&["node-a", "node-b", "node-c", "node-d", "node-e"]);
    let mut moved = 0;
    for (k, (was, is)) in before.iter().zip(&after).enumerate() {
        if was != is {
            moved += 1;
            assert_eq!(is, "node-e", "key {k} moved from {was} to {is}");
        }
    }
    let share = f64::from(moved) / KEYS as f64;
    println!("a fifth entry joining moved {moved} of {KEYS} keys ({share:.4})");
    assert!((0.15..=0.25).contains(&share), "moved share {share}");
}

#[test]
fn a_leaving_entry_moves_only_its_own_keys() {
    let before = owners(&["node-a", "node-b", "node-c", "node-d", "node-e"]);
    let after = owners(&["node-a", "node-b", "node-d", "node-e"]);
    let mut moved = 0;
    for (k, (was, is)) in before.iter().zip(&after).enumerate() {
        if was == "node-c" {
            assert_ne!(is, "node-c");
            moved += 1;
        } else {
            assert_eq!(was, is, "key {k} of {was} moved to {is}");
        }
    }
    assert!(moved > 1000, "node-c owned {moved} keys");
}

#[test]
fn an_unusable_owner_walks_on_to_the_next_usable_entry() {
    let ids = ["node-a", "node-b", "node-c", "node-d", "node-e"];
    let mut ring = ConsistentHash::new();
    ring.update(&ids);
    // node-c put aside: its keys go where they would go were it gone (the
    // next point clockwise not its own), the other keys stay.
    let without_c = owners(&["node-a", "node-b", "node-d", "node-e"]);
    let usable = [true, true, false, true, true];
    let mut walked = 0;
    for k in 0..KEYS {
        let index = ring.pick(Some(&key(k)), &usable).expect("usable");
        assert_eq!(ids[index], without_c[k as usize], "key {k}");
        // Deterministic: the same walk every time.
        assert_eq!(ring.pick(Some(&key(k)), &usable), Some(index));
        let owner = ring.pick(Some(&key(k)), &[true; 5]);
        walked += usize::from(owner == Some(2));
    }
    assert!(walked > 1000, "node-c owned {walked} keys");

    // Only one usable entry: every key lands there; none: no pick.
    let one = [false, false, false, true, false];
    assert!((0..100).all(|k| ring.pick(Some(&key(k)), &one) == Some(3)));
    assert_eq!(ring.pick(Some(&key(1)), &[false; 5]), None);
}
