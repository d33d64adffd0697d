//! Shared frames written as they are: a queue of [`Bytes`] that is one
//! [`Buf`], so a batch of events goes to the socket in vectored writes
//! (up to 1,024 slices each) of the frames the job's log already holds,
//! with no copy per stream.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncWrite, AsyncWriteExt};

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

/// Most slices one `writev` takes on Linux (`IOV_MAX`).
const MAX_SLICES: usize = 1024;

impl Frames {
    /// Writes every frame to `writer`: one `writev` of up to 1,024 frames
    /// at a time (tokio's `write_all_buf` gives it 64), so a batch of 512
    /// events is one system call when the socket takes it whole. The
    /// slices live on the heap for the write only: a stream waiting for
    /// its next batch holds none.
    pub async fn write_to<W: AsyncWrite + Unpin>(&mut self, writer: &mut W) -> io::Result<()> {
        while self.has_remaining() {
            let written = {
                let mut slices = vec![IoSlice::new(&[]); self.len().min(MAX_SLICES)];
                let count = self.chunks_vectored(&mut slices);
                writer.write_vectored(&slices[..count]).await?
            };
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            self.advance(written);
        }
        Ok(())
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

    #[tokio::test]
    async fn written_whole_through_short_writes() {
        // A writer that takes at most 7 bytes a call.
        struct Short(Vec<u8>);
        impl AsyncWrite for Short {
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<io::Result<usize>> {
                let n = buf.len().min(7);
                self.0.extend_from_slice(&buf[..n]);
                std::task::Poll::Ready(Ok(n))
            }
            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }
            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<io::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }
        }
        let parts: Vec<String> = (0..2000).map(|i| format!("data: {i}\n\n")).collect();
        let mut f = Frames::default();
        f.extend(parts.iter().map(|p| Bytes::from(p.clone())));
        let mut out = Short(Vec::new());
        f.write_to(&mut out).await.unwrap();
        assert_eq!(out.0, parts.concat().into_bytes());
        assert!(f.is_empty());
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
