//! A service that records each phase it runs into a shared log.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use walle_app::{BoxFuture, PhaseResult, Service};

/// The shared log: `"<phase><n>"` entries in the order they ran.
pub type Log = Arc<Mutex<Vec<String>>>;

/// What a recorder does wrong, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    FailInit,
    FailStart,
    HangStop,
    FailStop,
}

/// A service named `svc<n>` that logs `init<n>`, `start<n>`, ... .
pub struct Recorder {
    n: usize,
    name: String,
    log: Log,
    fault: Fault,
}

impl Recorder {
    pub fn new(n: usize, log: &Log, fault: Fault) -> Self {
        Recorder {
            n,
            name: format!("svc{n}"),
            log: log.clone(),
            fault,
        }
    }

    fn record(&self, phase: &str) {
        self.log
            .lock()
            .expect("log")
            .push(format!("{phase}{}", self.n));
    }
}

impl Service for Recorder {
    fn name(&self) -> &str {
        &self.name
    }
    fn init(&mut self) -> BoxFuture<'_, PhaseResult> {
        Box::pin(async move {
            self.record("init");
            if self.fault == Fault::FailInit {
                return Err("init refused".into());
            }
            Ok(())
        })
    }
    fn start(&mut self) -> BoxFuture<'_, PhaseResult> {
        Box::pin(async move {
            self.record("start");
            if self.fault == Fault::FailStart {
                return Err("port taken".into());
            }
            Ok(())
        })
    }
    fn stop(&mut self) -> BoxFuture<'_, PhaseResult> {
        Box::pin(async move {
            self.record("stop");
            match self.fault {
                Fault::HangStop => std::future::pending().await,
                Fault::FailStop => Err("stop went wrong".into()),
                _ => Ok(()),
            }
        })
    }
    fn finish(&mut self) -> BoxFuture<'_, PhaseResult> {
        Box::pin(async move {
            self.record("finish");
            Ok(())
        })
    }
}

pub fn new_log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

pub fn entries(log: &Log) -> Vec<String> {
    log.lock().expect("log").clone()
}
