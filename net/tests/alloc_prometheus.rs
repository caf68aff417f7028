//! The zero-allocation request path with the Prometheus exporter's
//! recorder installed, as `walle serve` installs it: walle's own recording
//! allocates nothing (`alloc_metrics.rs`), but the exporter keeps
//! histogram samples in blocks it allocates as they fill, one per several
//! dozen samples. The figure is printed and bounded well under one
//! allocation a request.

mod counting;
mod util;

use counting::*;
use walle_net::Backend;

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
#[allow(clippy::print_stdout)]
fn prost_bytes_fields_with_the_prometheus_recorder() {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this test process");
    for backend in [Backend::evloop(), Backend::tcp()] {
        let with_metrics = blob_allocations(&backend, "prost, Bytes fields, metrics on");
        assert!(
            with_metrics < 0.05,
            "{}: prost with Bytes fields, metrics on: {with_metrics}",
            backend.name()
        );
    }
    let text = handle.render();
    assert!(
        text.contains("walle_requests_total{route=\"echo\",code=\"0\"}"),
        "the requests were not recorded: {text}"
    );
}
