use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use bytes::Bytes;

/// Where a [`PoolBuf`] goes when its owner drops it.
///
/// Custom [`Pool`](crate::Pool) implementations implement this to take their
/// buffers back. `recycle` is called exactly once per buffer, on whatever
/// thread drops it last.
pub trait Recycle: Send + Sync + 'static {
    /// Takes back a buffer. Its contents are unspecified; clear it before reuse.
    fn recycle(&self, buf: Vec<u8>);
}

pub(crate) enum Home {
    /// Plain heap memory: freed on drop.
    Heap,
    /// A size class of a [`SizedPool`](crate::SizedPool): the pool's id,
    /// the class index and log2 of the class size.
    Sized { pool: u64, class: u8, shift: u8 },
    /// A user pool.
    Custom(Arc<dyn Recycle>),
}

/// A writable buffer owned by a pool.
///
/// Dropping it returns the memory to the pool it came from; [`freeze`]
/// turns it into a [`Bytes`] that does so when its last clone drops.
/// Write through [`as_mut_vec`](PoolBuf::as_mut_vec) (a `Vec<u8>` is a
/// `bytes::BufMut` and an `io::Write`) or the helpers here.
///
/// [`freeze`]: PoolBuf::freeze
pub struct PoolBuf {
    /// Taken out exactly once, by `drop`: its home decides whether it is
    /// freed or kept, without a `Vec` left behind for drop glue to check.
    buf: ManuallyDrop<Vec<u8>>,
    /// Taken by `drop` too, so the buffer has no drop glue of its own
    /// beyond `drop` (an `Arc` field would add a glue function that the
    /// compiler keeps out of line, a call per free on the pooled path).
    home: ManuallyDrop<Home>,
}

impl PoolBuf {
    #[inline(always)]
    pub(crate) fn new(buf: Vec<u8>, home: Home) -> Self {
        PoolBuf {
            buf: ManuallyDrop::new(buf),
            home: ManuallyDrop::new(home),
        }
    }

    /// A buffer that is freed, not pooled, when dropped.
    pub fn unpooled(capacity: usize) -> Self {
        PoolBuf::new(Vec::with_capacity(capacity), Home::Heap)
    }

    /// Wraps `buf` so that `recycler` takes it back when it is dropped.
    pub fn with_recycler(buf: Vec<u8>, recycler: Arc<dyn Recycle>) -> Self {
        PoolBuf::new(buf, Home::Custom(recycler))
    }

    /// The bytes written so far, as a growable `Vec<u8>` to write more into.
    /// Growing past the capacity reallocates; the pool drops the regrown
    /// buffer on return instead of keeping it.
    pub fn as_mut_vec(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Appends `data`.
    pub fn extend_from_slice(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Room for writing without reallocating, counting what is written.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Forgets the contents, keeping the memory.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Shortens the contents to `len` bytes; no effect if already shorter.
    pub fn truncate(&mut self, len: usize) {
        self.buf.truncate(len);
    }

    /// Freezes the buffer into a `Bytes`; the memory returns to the pool
    /// when the last clone drops. Costs one small header allocation (the
    /// shared owner `Bytes` keeps), so hot paths reuse a buffer instead of
    /// freezing one per message.
    pub fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for PoolBuf {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl AsMut<[u8]> for PoolBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl std::ops::Deref for PoolBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf
    }
}

impl std::ops::DerefMut for PoolBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl std::io::Write for PoolBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl fmt::Debug for PoolBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let home = match &*self.home {
            Home::Heap => "heap",
            Home::Sized { .. } => "sized",
            Home::Custom(_) => "custom",
        };
        f.debug_struct("PoolBuf")
            .field("len", &self.buf.len())
            .field("capacity", &self.buf.capacity())
            .field("home", &home)
            .finish()
    }
}

impl Drop for PoolBuf {
    #[inline(always)]
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: `buf` and `home` are taken here and nowhere else, and
        // `self` is not used again after `drop`.
        let (buf, home) = unsafe {
            (
                ManuallyDrop::take(&mut self.buf),
                ManuallyDrop::take(&mut self.home),
            )
        };
        match home {
            Home::Sized { pool, class, shift } => crate::sized::release(pool, class, shift, buf),
            other => release_other(other, buf),
        }
    }
}

/// The free of a heap or user-pool buffer, kept off the inlined path of a
/// pooled one.
#[inline(never)]
fn release_other(home: Home, buf: Vec<u8>) {
    match home {
        Home::Custom(recycler) => recycler.recycle(buf),
        _ => drop(buf), // the heap's (a pooled one never comes here)
    }
}
