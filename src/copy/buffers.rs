//! Buffers of finished transfers, kept for the next transfers of the same size.
//!
//! Most bytes of a backup travel in a few buffer sizes (the part size, and the sizes of
//! similar binlogs). Reusing those buffers spares the page faults of fresh memory and keeps the
//! allocator from growing its heaps with freed blocks it never gives back, so resident memory
//! stays near the buffer budget. A miss frees at least as much as it allocates, oldest first,
//! so buffers kept free and buffers in use together stay within the budget plus one buffer.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::BytesMut;

/// Buffers below this come from the allocator, which serves them well.
const POOLED_FROM: usize = 1 << 20;

#[derive(Default)]
pub(super) struct BufferPool {
    free: Mutex<VecDeque<BytesMut>>,
}

impl BufferPool {
    /// An empty buffer with room for exactly `len` bytes.
    pub(super) fn take(&self, len: usize) -> BytesMut {
        if len >= POOLED_FROM {
            let mut free = self.free.lock().expect("buffer pool lock");
            if let Some(i) = free.iter().position(|b| b.capacity() == len) {
                return free.remove(i).expect("index from position");
            }
            let mut released = 0;
            while released < len
                && let Some(old) = free.pop_front()
            {
                released += old.capacity();
            }
        }
        BytesMut::with_capacity(len)
    }

    /// Returns a buffer taken for `len` bytes, once everything split off it has been dropped:
    /// `spare` is what is left of it. A buffer still shared is let go.
    pub(super) fn give(&self, mut spare: BytesMut, len: usize) {
        spare.clear();
        if len >= POOLED_FROM && spare.try_reclaim(len) && spare.capacity() == len {
            self.free.lock().expect("buffer pool lock").push_back(spare);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill_and_split(pool: &BufferPool, len: usize) -> (BytesMut, Vec<bytes::Bytes>) {
        let mut buf = pool.take(len);
        buf.resize(len, 7);
        let first = buf.split_to(POOLED_FROM).freeze();
        let rest = buf.split().freeze();
        (buf, vec![first, rest])
    }

    #[test]
    fn reuses_a_buffer_once_its_pieces_are_gone() {
        let pool = BufferPool::default();
        let len = 2 * POOLED_FROM;
        // Pieces still alive: the buffer is let go, not kept.
        let (spare, pieces) = fill_and_split(&pool, len);
        pool.give(spare, len);
        assert!(pool.free.lock().unwrap().is_empty());
        drop(pieces);

        let (spare, pieces) = fill_and_split(&pool, len);
        let addr = pieces[0].as_ptr();
        drop(pieces);
        pool.give(spare, len);
        let again = pool.take(len);
        assert_eq!(
            (again.as_ptr(), again.capacity(), again.len()),
            (addr, len, 0)
        );
    }

    #[test]
    fn a_miss_frees_older_buffers_of_other_sizes() {
        let pool = BufferPool::default();
        let lens = [POOLED_FROM, 2 * POOLED_FROM, 3 * POOLED_FROM];
        let taken: Vec<_> = lens.iter().map(|&len| pool.take(len)).collect();
        for (buf, len) in taken.into_iter().zip(lens) {
            pool.give(buf, len);
        }
        assert_eq!(pool.free.lock().unwrap().len(), 3);
        let b = pool.take(4 * POOLED_FROM);
        assert_eq!(b.capacity(), 4 * POOLED_FROM);
        // 1 + 2 + 3 MiB freed to make room for 4 MiB.
        assert!(pool.free.lock().unwrap().is_empty());
        // Small buffers are not kept.
        pool.give(pool.take(1024), 1024);
        assert!(pool.free.lock().unwrap().is_empty());
    }
}
