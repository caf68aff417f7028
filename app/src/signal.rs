//! SIGINT and SIGTERM: the first asks the app to stop (or, when a stop
//! was already asked from code, just says so); the second ends the
//! process.

use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinHandle;

use crate::{StopHandle, StopReason};

/// The task that listens for signals during a run; dropping it stops
/// listening.
#[derive(Debug)]
pub(crate) struct SignalGuard(JoinHandle<()>);

impl Drop for SignalGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Installs the handlers (they stay installed in the process after the run,
/// as tokio's do) and spawns the listener.
pub(crate) fn install(handle: StopHandle, force_exit_code: i32) -> std::io::Result<SignalGuard> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let task = tokio::spawn(async move {
        let mut received = 0u32;
        loop {
            let reason = tokio::select! {
                Some(()) = interrupt.recv() => StopReason::Interrupt,
                Some(()) = terminate.recv() => StopReason::Terminate,
                else => return,
            };
            received += 1;
            if received >= 2 {
                tracing::error!(
                    ?reason,
                    code = force_exit_code,
                    "second signal while stopping: forced exit"
                );
                std::process::exit(force_exit_code);
            }
            if handle.is_stopping() {
                tracing::info!(
                    ?reason,
                    "signal received while already stopping (another one forces exit)"
                );
            } else {
                tracing::info!(
                    ?reason,
                    "signal received: stopping (another one forces exit)"
                );
            }
            handle.trigger(reason);
        }
    });
    Ok(SignalGuard(task))
}
