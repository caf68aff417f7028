use crate::Error;
use walle_packet::PacketError;

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

    /// Asks the io layer to close the connection. Idempotent.
    fn close(&self) {}
}
