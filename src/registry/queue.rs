//! One connection's queue of frames to send: filled by any task through
//! [`ConnTx::push`](super::ConnTx::push), bounded by count, and taken by the
//! connection's writer a whole batch at a time.
//!
//! Not tokio's `mpsc`: its bounded channel allocates a block of 32 slots and a
//! cache-padded state when it is made, about 1.5 KB for every connection whether it
//! ever receives a frame or not, and an idle connection has a budget of 10 KB in all
//! (issue 19). An empty `VecDeque` allocates nothing, and the writer takes everything
//! queued under one lock instead of one receive per frame.

use std::{
    collections::VecDeque,
    sync::{Mutex, MutexGuard, PoisonError},
};

use tokio::sync::Notify;

use crate::protocol::FrameText;

pub(super) struct FrameQueue {
    state: Mutex<State>,
    /// Signalled on every push; the writer waits on it only when the queue is empty.
    ready: Notify,
    capacity: usize,
}

struct State {
    frames: VecDeque<FrameText>,
    closed: bool,
}

/// Why a push was refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refused {
    /// `capacity` frames are waiting: the client reads too slowly.
    Full,
    /// The writer is gone.
    Closed,
}

impl FrameQueue {
    pub(super) fn new(capacity: usize) -> Self {
        FrameQueue {
            state: Mutex::new(State {
                frames: VecDeque::new(),
                closed: false,
            }),
            ready: Notify::new(),
            capacity,
        }
    }

    pub(super) fn push(&self, text: FrameText) -> Result<(), Refused> {
        {
            let mut state = self.lock();
            if state.closed {
                return Err(Refused::Closed);
            }
            if state.frames.len() >= self.capacity {
                return Err(Refused::Full);
            }
            state.frames.push_back(text);
        }
        // A permit is kept if the writer is not waiting yet, so no push is missed.
        self.ready.notify_one();
        Ok(())
    }

    /// Moves every queued frame to the end of `batch`; false when none was queued.
    pub(super) fn take_now(&self, batch: &mut VecDeque<FrameText>) -> bool {
        let mut state = self.lock();
        if state.frames.is_empty() {
            return false;
        }
        if batch.is_empty() {
            // The two buffers trade places, so neither allocates in the steady state.
            std::mem::swap(&mut state.frames, batch);
        } else {
            batch.extend(state.frames.drain(..));
        }
        true
    }

    /// Waits until a frame is queued, then moves every queued frame into `batch`.
    /// Cancel-safe: frames are moved only in the poll that returns.
    pub(super) async fn take(&self, batch: &mut VecDeque<FrameText>) {
        loop {
            if self.take_now(batch) {
                return;
            }
            self.ready.notified().await;
        }
    }

    /// Refuses every later push, and hands back what was still queued.
    pub(super) fn close(&self) -> VecDeque<FrameText> {
        let mut state = self.lock();
        state.closed = true;
        std::mem::take(&mut state.frames)
    }

    /// The lock is only held for a few pointer moves and never across an `.await`;
    /// a panic while holding it leaves the queue whole, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::{sync::Arc, time::Duration};

    use super::*;

    fn text(s: &str) -> FrameText {
        s.into()
    }

    #[test]
    fn a_full_queue_refuses_and_a_closed_one_hands_back_what_it_held() {
        let queue = FrameQueue::new(2);
        assert_eq!(queue.push(text("a")), Ok(()));
        assert_eq!(queue.push(text("b")), Ok(()));
        assert_eq!(queue.push(text("c")), Err(Refused::Full));
        let left = queue.close();
        assert_eq!(left.len(), 2);
        assert_eq!(queue.push(text("d")), Err(Refused::Closed));
    }

    #[test]
    fn take_now_keeps_the_order_across_batches() {
        let queue = FrameQueue::new(8);
        let mut batch = VecDeque::new();
        assert!(!queue.take_now(&mut batch));
        queue.push(text("1")).expect("room");
        queue.push(text("2")).expect("room");
        assert!(queue.take_now(&mut batch));
        queue.push(text("3")).expect("room");
        assert!(queue.take_now(&mut batch));
        let order: Vec<&str> = batch.iter().map(|t| t.as_str()).collect();
        assert_eq!(order, ["1", "2", "3"]);
        // Taken frames no longer count against the capacity.
        for i in 0..8 {
            queue.push(text(&i.to_string())).expect("room again");
        }
    }

    #[tokio::test]
    async fn a_waiting_writer_is_woken_by_a_push() {
        let queue = Arc::new(FrameQueue::new(8));
        let writer = {
            let queue = Arc::clone(&queue);
            tokio::spawn(async move {
                let mut batch = VecDeque::new();
                queue.take(&mut batch).await;
                batch.len()
            })
        };
        tokio::task::yield_now().await;
        assert!(!writer.is_finished(), "nothing queued yet");
        queue.push(text("x")).expect("room");
        let taken = tokio::time::timeout(Duration::from_secs(5), writer)
            .await
            .expect("woken within the timeout")
            .expect("writer");
        assert_eq!(taken, 1);
    }

    #[tokio::test]
    async fn a_push_before_the_wait_is_not_missed() {
        let queue = FrameQueue::new(8);
        let mut batch = VecDeque::new();
        queue.push(text("x")).expect("room");
        assert!(queue.take_now(&mut batch));
        // The push's permit is still there: the next wait wakes, finds nothing and waits
        // again; a frame pushed meanwhile is then taken.
        queue.push(text("y")).expect("room");
        batch.clear();
        tokio::time::timeout(Duration::from_secs(5), queue.take(&mut batch))
            .await
            .expect("taken");
        assert_eq!(batch.len(), 1);
    }
}
