//! Worker threads fed by bounded queues: one queue shared by all
//! (`Strategy::Pool`) or one per worker (`Strategy::Keyed`).

use std::thread;

use crossbeam_channel::{Sender, TrySendError, bounded};
use tracing::warn;
use walle_process::{Error, Job};

/// The queues of a set of worker threads. The workers exit when this is
/// dropped and their queues drain.
pub(super) struct Workers {
    queues: Vec<Sender<Job>>,
}

impl Workers {
    /// No queue, no thread.
    pub(super) fn none() -> Self {
        Workers { queues: Vec::new() }
    }

    /// `workers` threads on `queues` queues of `room` jobs each, worker
    /// `i` on queue `i % queues`.
    pub(super) fn start(workers: usize, queues: usize, room: usize) -> std::io::Result<Self> {
        let mut senders = Vec::with_capacity(queues);
        let receivers: Vec<_> = (0..queues)
            .map(|_| {
                let (tx, rx) = bounded::<Job>(room.max(1));
                senders.push(tx);
                rx
            })
            .collect();
        for i in 0..workers {
            let rx = receivers[i % queues].clone();
            thread::Builder::new()
                .name(format!("walle-worker-{i}"))
                .spawn(move || rx.into_iter().for_each(Job::run))?;
        }
        Ok(Workers { queues: senders })
    }

    /// How many queues there are.
    pub(super) fn len(&self) -> usize {
        self.queues.len()
    }

    /// Queues `job` on queue `index`; a full queue or stopped workers
    /// give it back with the reason.
    // The error path is a refusal, cold: the job travels back by value.
    #[allow(clippy::result_large_err)]
    pub(super) fn push(&self, index: usize, job: Job) -> Result<(), (Job, Error)> {
        let Some(queue) = self.queues.get(index) else {
            return Err((job, Error::Overloaded("dispatch workers have stopped")));
        };
        match queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job)) => {
                warn!("dispatch queue full");
                Err((job, Error::Overloaded("dispatch queue full")))
            }
            Err(TrySendError::Disconnected(job)) => {
                Err((job, Error::Overloaded("dispatch workers have stopped")))
            }
        }
    }
}
