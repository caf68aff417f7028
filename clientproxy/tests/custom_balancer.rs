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

/// Picks only usable entries whose node carries `zone=<zone>`: a balancer
/// reading the nodes' metadata through `Entries::node`.
#[derive(Debug)]
struct SameZone(&'static str);

impl Balancer for SameZone {
    fn pick(&self, _key: Option<&[u8]>, entries: &dyn Entries) -> Option<usize> {
        (0..entries.len()).find(|&i| {
            entries.is_usable(i)
                && entries
                    .node(i)
                    .and_then(|n| n.md.get("zone"))
                    .is_some_and(|z| z == self.0)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_balancer_reads_node_metadata_in_a_real_proxy() {
    use bytes::Bytes;
    use walle_codec::RawCodec;
    use walle_discovery::{Drivers, Node};
    use walle_net::{Backend, Server};
    use walle_process::{Context, Router};

    let target = "mem:///clientproxy-tests/zones";
    let mut servers = Vec::new();
    let mut regs = Vec::new();
    for (name, zone) in [("a1", "a"), ("b1", "b"), ("b2", "b")] {
        let mut router = Router::new(RawCodec);
        router
            .route("echo", move |_: &mut Context, _: Bytes| {
                Ok(Bytes::from_static(name.as_bytes()))
            })
            .expect("route");
        let server = Server::builder(router)
            .backend(Backend::tcp())
            .bind("127.0.0.1:0")
            .expect("bind");
        let node = Node::new(server.local_addr().to_string())
            .with_id(name)
            .with_metadata("zone", zone);
        regs.push(
            Drivers::new()
                .register(target, node, std::time::Duration::from_secs(30))
                .await
                .expect("register"),
        );
        servers.push(server);
    }
    let proxy: ClientProxy<RawCodec> = ClientProxy::builder(target, Router::new(RawCodec))
        .backend(Backend::tcp())
        .balancer(Box::new(SameZone("b")))
        .connect()
        .await
        .expect("proxy");
    for _ in 0..6 {
        let answer: Bytes = proxy.call("echo", &Bytes::new()).await.expect("call");
        assert!(answer.starts_with(b"b"), "{answer:?} is not in zone b");
    }
    let a1 = proxy
        .stats()
        .into_iter()
        .find(|s| s.id == "a1")
        .expect("a1");
    assert_eq!(a1.calls, 0, "zone a never picked");
}
