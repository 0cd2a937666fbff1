//! Association requests being read: bounded in number, oldest dropped first.
//!
//! An association slot is taken only once the association is established, so a peer that
//! starts a request and stalls holds no slot. What it holds instead is one of a bounded
//! number of pending places; when they are all taken, the oldest pending request is
//! dropped to make room. A console's request completes in milliseconds, so stalled peers
//! cannot keep it out unless they reconnect faster than that, many times over.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// The pending association requests.
pub(crate) struct PendingRequests {
    limit: usize,
    queue: Mutex<Queue>,
}

/// The pending requests, oldest first, each with the sender that evicts it.
#[derive(Default)]
struct Queue {
    next_id: u64,
    waiting: VecDeque<(u64, oneshot::Sender<()>)>,
}

/// One pending request's place; dropping it gives the place back.
pub(crate) struct PendingTicket {
    id: u64,
    owner: Arc<PendingRequests>,
    /// Resolves with `Ok(())` when this request is dropped to make room for a newer one.
    pub(crate) evicted: oneshot::Receiver<()>,
}

impl PendingRequests {
    /// At most `limit` pending requests (at least one).
    pub(crate) fn new(limit: usize) -> Arc<PendingRequests> {
        Arc::new(PendingRequests {
            limit: limit.max(1),
            queue: Mutex::new(Queue::default()),
        })
    }

    /// Takes a place for a new request, evicting the oldest one when all are taken.
    pub(crate) fn enter(self: &Arc<Self>) -> PendingTicket {
        let (tx, rx) = oneshot::channel();
        let mut guard = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let id = guard.next_id;
        guard.next_id += 1;
        let queue = &mut guard.waiting;
        while queue.len() >= self.limit {
            if let Some((_, oldest)) = queue.pop_front() {
                let _ = oldest.send(());
            }
        }
        queue.push_back((id, tx));
        PendingTicket {
            id,
            owner: self.clone(),
            evicted: rx,
        }
    }

    /// How many requests are pending.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .waiting
            .len()
    }
}

impl Drop for PendingTicket {
    fn drop(&mut self) {
        let mut guard = self.owner.queue.lock().unwrap_or_else(|p| p.into_inner());
        let queue = &mut guard.waiting;
        if let Some(at) = queue.iter().position(|(id, _)| *id == self.id) {
            queue.remove(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_is_evicted_when_full_and_places_come_back() {
        let pending = PendingRequests::new(2);
        let mut a = pending.enter();
        let mut b = pending.enter();
        assert_eq!(pending.len(), 2);
        assert!(a.evicted.try_recv().is_err(), "not evicted yet");
        let mut c = pending.enter();
        assert_eq!(a.evicted.try_recv(), Ok(()), "the oldest made room");
        assert!(b.evicted.try_recv().is_err());
        assert_eq!(pending.len(), 2);
        drop(b);
        assert_eq!(pending.len(), 1);
        let _d = pending.enter();
        assert!(c.evicted.try_recv().is_err(), "a free place evicts nobody");
        drop(a);
        assert_eq!(pending.len(), 2, "an evicted ticket holds no place");
    }
}
