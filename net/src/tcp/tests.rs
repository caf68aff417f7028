//! The connection tasks over a link that is not TCP: a tokio Unix socket,
//! with a real process, answering and closing as over TCP.

use std::io;
use std::io::IoSlice;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::net::UnixStream;
use tokio::runtime::Runtime;

use super::conn;
use super::link::ByteStream;
use crate::options::ConnOptions;
use crate::testing::{
    PEER, Peer, answers_then_ends_as_the_peer_did, closes_with_their_reasons, echo,
};

/// The plainest link: a read of what is there, no scratch buffer.
impl ByteStream for UnixStream {
    async fn read_some(&self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            self.readable().await?;
            match self.try_read_buf(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                read => return read,
            }
        }
    }

    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        UnixStream::try_write_vectored(self, bufs)
    }

    async fn writable(&self) -> io::Result<()> {
        UnixStream::writable(self).await
    }

    fn shutdown(&self) {
        let _ = socket2::SockRef::from(self).shutdown(std::net::Shutdown::Both);
    }

    fn shutdown_write(&self) {
        let _ = socket2::SockRef::from(self).shutdown(std::net::Shutdown::Write);
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Starts the tasks of a connection over a Unix socket on `runtime`.
fn connect(runtime: &Runtime, opts: ConnOptions) -> Peer {
    let (stream, attach, peer) = echo();
    let _inside = runtime.enter();
    let stream = UnixStream::from_std(stream).expect("a tokio socket");
    conn::start(stream, PEER, &attach, Arc::new(opts), None);
    peer.attached()
}

#[test]
fn a_unix_link_answers_and_ends_as_its_peer_did() {
    let runtime = runtime();
    answers_then_ends_as_the_peer_did(&mut connect(&runtime, ConnOptions::default()));
}

#[test]
fn closes_of_every_origin_reach_the_process_with_their_reason() {
    let runtime = runtime();
    closes_with_their_reasons(|opts| connect(&runtime, opts));
}
