//! A balancer of one's own, through the public API only.

use std::sync::atomic::{AtomicUsize, Ordering};

use walle_clientproxy::*;

/// Sends every call to the usable entry whose id sorts first, and counts
/// its picks: it keeps what `update` told it.
#[derive(Debug, Default)]
struct FirstById {
    /// Entry indexes in id order.
    order: Vec<usize>,
    picks: AtomicUsize,
}

impl Balancer for FirstById {
    fn update(&mut self, ids: &[&str]) {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| ids[i]);
        self.order = order;
    }

    fn pick(&self, _key: Option<&[u8]>, entries: &dyn Entries) -> Option<usize> {
        self.picks.fetch_add(1, Ordering::Relaxed);
        self.order
            .iter()
            .copied()
            .find(|&i| i < entries.len() && entries.is_usable(i))
    }

    fn name(&self) -> &str {
        "first_by_id"
    }
}

#[test]
fn a_users_balancer_picks_through_the_trait_object() {
    let mut balancer: Box<dyn Balancer> = Box::new(FirstById::default());
    assert_eq!(balancer.name(), "first_by_id");
    assert_eq!(
        format!("{balancer:?}"),
        r#"Balancer { name: "first_by_id" }"#
    );

    balancer.update(&["zeta", "beta", "alpha"]);
    let all = [EntryState::usable(0); 3];
    assert_eq!(balancer.pick(None, &all), Some(2));
    let alpha_down = [
        EntryState::usable(0),
        EntryState::usable(5),
        EntryState::unusable(),
    ];
    assert_eq!(balancer.pick(Some(b"user-1"), &alpha_down), Some(1));
    assert_eq!(balancer.pick(None, &[false; 3]), None);

    // A new membership: indexes follow the new ids.
    balancer.update(&["alpha", "omega"]);
    assert_eq!(balancer.pick(None, &[true, true]), Some(0));
}

/// A user's own view of the entries works with the built-ins too.
#[derive(Debug)]
struct Table {
    up: Vec<bool>,
    load: Vec<usize>,
}

impl Entries for Table {
    fn len(&self) -> usize {
        self.up.len()
    }
    fn is_usable(&self, index: usize) -> bool {
        self.up[index]
    }
    fn in_flight(&self, index: usize) -> usize {
        self.load[index]
    }
}

#[test]
fn built_ins_pick_from_a_users_entry_table() {
    let table = Table {
        up: vec![true, false, true],
        load: vec![9, 0, 1],
    };
    for name in KNOWN_BALANCERS {
        let mut balancer = balancer_by_name(name).expect(name);
        balancer.update(&["a", "b", "c"]);
        for k in 0..50u8 {
            let picked = balancer.pick(Some(&[k]), &table).expect(name);
            assert!(picked == 0 || picked == 2, "{name} picked {picked}");
        }
    }
    // Least-outstanding sees the loads: with two usable entries it always
    // compares both.
    let lo = LeastOutstanding::new();
    assert!((0..50).all(|_| lo.pick(None, &table) == Some(2)));
}
