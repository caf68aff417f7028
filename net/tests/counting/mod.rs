//! Shared by the allocation-counting tests: a counting global allocator
//! (each binary installs it), steady-state counting, and a server echoing
//! a codec's message to a raw socket.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use walle_net::Backend;

/// Counts allocations while [`ON`] is set; install as the global allocator.
pub struct Counting;

pub static ON: AtomicBool = AtomicBool::new(false);
pub static COUNT: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers to the system allocator; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            COUNT.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            COUNT.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The counter is global: tests sharing a process take turns.
pub static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Heap allocations per call of `trip` in steady state: 2,000 calls to
/// warm up (buffers, pools, tables), then 10,000 counted.
pub fn per_trip(mut trip: impl FnMut()) -> f64 {
    for _ in 0..2000 {
        trip();
    }
    const N: u64 = 10_000;
    COUNT.store(0, Ordering::Relaxed);
    ON.store(true, Ordering::Relaxed);
    for _ in 0..N {
        trip();
    }
    ON.store(false, Ordering::Relaxed);
    COUNT.load(Ordering::Relaxed) as f64 / N as f64
}

/// A message whose fields are `Bytes`: decoded as slices of the frame.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Blob {
    #[prost(bytes = "bytes", tag = "1")]
    pub data: bytes::Bytes,
    #[prost(bytes = "bytes", tag = "2")]
    pub name: bytes::Bytes,
    #[prost(uint32, tag = "3")]
    pub n: u32,
}

/// Heap allocations per request of a server of `protocol` echoing `M`
/// through `codec`, fed `payload` (an encoded `M`) by a raw socket that
/// reads each answer into a fixed buffer by its length prefix.
#[allow(clippy::print_stdout)]
pub fn codec_allocations<C, M>(
    backend: &Backend,
    protocol: walle_packet::Protocol,
    codec: C,
    what: &str,
    payload: &[u8],
) -> f64
where
    C: walle_codec::Codec<M> + Clone + Send + Sync + 'static,
    M: Send + 'static,
{
    let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut router = walle_process::Router::new(codec);
    router
        .route("echo", |_: &mut walle_process::Context, req: M| Ok(req))
        .unwrap();
    // Requests are timed too (the costlier setting, as `walle serve` with
    // metrics runs): timing must allocate nothing either.
    let mut options = walle_net::ServerOptions::default();
    options.conn.process.request_durations = true;
    let server = walle_net::Server::builder(router)
        .backend(backend.clone())
        .protocol(protocol.clone())
        .options(options)
        .bind("127.0.0.1:0")
        .expect("bind");
    let mut stream = std::net::TcpStream::connect(server.local_addr()).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut frame = Vec::new();
    protocol
        .encode(
            &walle_packet::Head::request(walle_packet::Route::Uri("echo"), 7),
            payload,
            &mut frame,
        )
        .unwrap();
    let mut answer = vec![0u8; 64 * 1024];
    let little = protocol.framing().order == walle_packet::ByteOrder::Little;
    assert_eq!(protocol.framing().len_width, 4);
    let mut trip = |stream: &mut std::net::TcpStream| {
        stream.write_all(&frame).unwrap();
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).unwrap();
        let len = match little {
            true => u32::from_le_bytes(len),
            false => u32::from_be_bytes(len),
        } as usize;
        stream.read_exact(&mut answer[..len]).unwrap();
    };
    let per_request = per_trip(|| trip(&mut stream));
    println!(
        "{}, {what}: {per_request:.3} heap allocations per request (server side)",
        backend.name()
    );
    per_request
}

/// [`codec_allocations`] of a prost [`Blob`] (512 B of data, `Bytes`
/// fields) through the walle-proto format on `backend`.
pub fn blob_allocations(backend: &Backend, what: &str) -> f64 {
    let blob = prost::Message::encode_to_vec(&Blob {
        data: bytes::Bytes::from(vec![3u8; 512]),
        name: bytes::Bytes::from_static(b"player-1"),
        n: 9,
    });
    codec_allocations::<_, Blob>(
        backend,
        walle_packet::Protocol::new(walle_packet::ProtoFormat::new()),
        walle_codec::ProstCodec,
        what,
        &blob,
    )
}
