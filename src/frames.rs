//! Shared frames written as they are: a queue of [`Bytes`] that is one
//! [`Buf`], so a batch of events goes to the socket in vectored writes (64
//! slices each) of the frames the job's log already holds, with no copy
//! per stream.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};

/// Frames waiting for one write, in order.
#[derive(Debug, Default)]
pub struct Frames {
    queue: VecDeque<Bytes>,
    /// Bytes left in `queue`.
    remaining: usize,
}

impl Frames {
    /// Queues `frame` after the others (an empty one is skipped).
    pub fn push(&mut self, frame: Bytes) {
        if !frame.is_empty() {
            self.remaining += frame.len();
            self.queue.push_back(frame);
        }
    }

    /// How many frames are queued.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

impl Extend<Bytes> for Frames {
    fn extend<I: IntoIterator<Item = Bytes>>(&mut self, frames: I) {
        frames.into_iter().for_each(|f| self.push(f));
    }
}

impl Buf for Frames {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.queue.front().map_or(&[], |f| &f[..])
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining, "advanced past the end of the frames");
        self.remaining -= cnt;
        while cnt > 0 {
            let front = self.queue.front_mut().expect("counted above");
            if cnt < front.len() {
                front.advance(cnt);
                return;
            }
            cnt -= front.len();
            self.queue.pop_front();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, frame) in dst.iter_mut().zip(&self.queue) {
            *slot = IoSlice::new(frame);
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(parts: &[&'static str]) -> Frames {
        let mut f = Frames::default();
        for p in parts {
            f.push(Bytes::from_static(p.as_bytes()));
        }
        f
    }

    #[test]
    fn the_frames_read_as_one_buffer_in_order() {
        let mut f = frames(&["data: a\n\n", "", "data: bc\n\n"]);
        assert_eq!(f.len(), 2, "empty frames are not queued");
        assert_eq!(f.remaining(), 19);
        assert_eq!(f.copy_to_bytes(19), "data: a\n\ndata: bc\n\n");
        assert!(f.is_empty());
    }

    #[test]
    fn partial_writes_advance_within_and_across_frames() {
        let mut f = frames(&["abc", "de", "fgh"]);
        f.advance(2);
        assert_eq!(f.chunk(), b"c");
        f.advance(3); // c, de
        assert_eq!(f.chunk(), b"fgh");
        assert_eq!(f.remaining(), 3);
        f.advance(3);
        assert_eq!(f.chunk(), b"");
        assert_eq!(f.remaining(), 0);
    }

    #[test]
    fn a_vectored_write_sees_the_shared_frames_themselves() {
        let shared = Bytes::from_static(b"data: x\n\n");
        let mut f = Frames::default();
        f.push(shared.clone());
        f.push(shared.clone());
        let mut slices = [IoSlice::new(&[]); 1];
        assert_eq!(f.chunks_vectored(&mut slices), 1, "as many as fit");
        assert_eq!(slices[0].as_ptr(), shared.as_ptr(), "not a copy");
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(f.chunks_vectored(&mut slices), 2);
    }
}
