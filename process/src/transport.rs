use crate::error::Error;
use walle_packet::{FrameMode, PacketError};

/// Where a process writes its frames: a connection's outbound stream.
///
/// The io layer implements it per connection. `send` hands the caller's
/// closure the outbound buffer so that a frame is encoded straight into
/// it, with no intermediate copy; the closure appends whole frames or, on
/// error, leaves the buffer as it found it.
pub trait Transport: Send + Sync + 'static {
    /// Appends the frames `write` produces to the outbound stream.
    ///
    /// Fails with [`Error::SessionClosed`] after close and
    /// [`Error::Overloaded`] when the outbound queue is full.
    fn send(
        &self,
        write: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), PacketError>,
    ) -> Result<(), Error>;

    /// Appends one already-encoded frame (a broadcast encoded once and
    /// shared by every session). The default copies it through
    /// [`send`](Transport::send).
    fn send_frame(&self, frame: &bytes::Bytes) -> Result<(), Error> {
        self.send(&mut |dst| {
            dst.extend_from_slice(frame);
            Ok(())
        })
    }

    /// Tells the io layer that a call now waits until `deadline`, so that
    /// it drives [`Process::handle_timeout`](crate::Process::handle_timeout)
    /// by then. Called when a call starts; the default ignores it (the io
    /// layer then polls [`Process::poll_timeout`](crate::Process::poll_timeout)).
    fn timer_hint(&self, deadline: std::time::Instant) {
        let _ = deadline;
    }

    /// How this transport delimits frames: the frames `send` is handed are
    /// encoded to match (behind a length prefix on a stream, bare on a
    /// message transport). Read once, when the process is built. Default:
    /// a stream.
    fn mode(&self) -> FrameMode {
        FrameMode::Stream
    }

    /// Asks the io layer to close the connection. Idempotent.
    fn close(&self) {}
}
