//! A transport that encodes each frame into a 16 KiB chunk of a pool of its
//! own (as net's outbound queue does) before it goes on the in-memory link:
//! a second pool in use on the same thread as the process's. Shared by the
//! allocation test and the round-trip bench.

use std::sync::Arc;

use walle_mempool::Pool;
use walle_packet::PacketError;
use walle_process::mem::MemTransport;
use walle_process::{Error, Transport};

pub struct ChunkTransport {
    pub link: Arc<MemTransport>,
    pub chunks: Arc<dyn Pool>,
}

impl Transport for ChunkTransport {
    fn send(
        &self,
        write: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), PacketError>,
    ) -> Result<(), Error> {
        let mut chunk = self.chunks.alloc(16 * 1024);
        write(chunk.as_mut_vec())?;
        self.link.send(&mut |dst| {
            dst.extend_from_slice(&chunk);
            Ok(())
        })
    }
    fn close(&self) {
        self.link.close();
    }
}
