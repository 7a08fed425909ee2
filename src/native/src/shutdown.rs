//! Graceful shutdown. SIGTERM or SIGINT stops accepting; open connections finish their requests and streams
//! (keep-alive ends after the request in flight) for up to the drain time; then the streams still running are cut
//! with a terminal SSE error event and a logged row (`Clock::shutdown` in the core); the process exits once every
//! worker thread is done and the log writer has written its last batch.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

use futures::future::LocalBoxFuture;
use tokio::sync::{watch, Notify};

/// The main thread's side: says when to stop accepting and when to cut what is still running.
pub struct Trigger {
    stop: watch::Sender<bool>,
    cut: watch::Sender<bool>,
}

/// A worker's side, cheap to clone.
#[derive(Clone)]
pub struct Shutdown {
    stop: watch::Receiver<bool>,
    cut: watch::Receiver<bool>,
}

pub fn channel() -> (Trigger, Shutdown) {
    let (stop, stop_rx) = watch::channel(false);
    let (cut, cut_rx) = watch::channel(false);
    (
        Trigger { stop, cut },
        Shutdown {
            stop: stop_rx,
            cut: cut_rx,
        },
    )
}

impl Trigger {
    pub fn stop_accepting(&self) {
        let _ = self.stop.send(true);
    }

    pub fn cut(&self) {
        let _ = self.cut.send(true);
    }
}

/// Resolves when `rx` turns true; never if its sender is gone without saying so.
async fn until_true(mut rx: watch::Receiver<bool>) {
    if rx.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}

impl Shutdown {
    /// Resolves when the server stops accepting.
    pub fn stopping(&self) -> impl Future<Output = ()> + 'static {
        until_true(self.stop.clone())
    }

    /// Resolves when the drain time is over.
    pub fn cut(&self) -> LocalBoxFuture<'static, ()> {
        Box::pin(until_true(self.cut.clone()))
    }
}

/// Tasks of one worker thread that must finish before it exits (connections, log rows on their way).
#[derive(Clone, Default)]
pub struct Tasks(Rc<(Cell<usize>, Notify)>);

impl Tasks {
    pub fn spawn(&self, task: impl Future<Output = ()> + 'static) {
        let tasks = self.clone();
        let count = &self.0 .0;
        count.set(count.get() + 1);
        tokio::task::spawn_local(async move {
            task.await;
            let (count, done) = &*tasks.0;
            count.set(count.get() - 1);
            if count.get() == 0 {
                done.notify_waiters();
            }
        });
    }

    /// Resolves when no task is left.
    pub async fn idle(&self) {
        let (count, done) = &*self.0;
        while count.get() > 0 {
            done.notified().await;
        }
    }
}
