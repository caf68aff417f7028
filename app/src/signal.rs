//! SIGINT and SIGTERM: the first asks the app to stop, one received while a
//! stop is already asked ends the process.

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
        loop {
            let reason = tokio::select! {
                Some(()) = interrupt.recv() => StopReason::Interrupt,
                Some(()) = terminate.recv() => StopReason::Terminate,
                else => return,
            };
            if handle.is_stopping() {
                tracing::error!(
                    ?reason,
                    code = force_exit_code,
                    "signal while stopping: forced exit"
                );
                std::process::exit(force_exit_code);
            }
            tracing::info!(
                ?reason,
                "signal received: stopping (another one forces exit)"
            );
            handle.trigger(reason);
        }
    });
    Ok(SignalGuard(task))
}
