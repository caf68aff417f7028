//! The [`App`] and its builder: the run of BEHAVIOURS 60.

use std::fmt;
use std::time::Duration;

use crate::report::{Outcome, Phase};
use crate::{AppOptions, Error, PhaseResult, RunReport, Service, ServiceOptions, StopHandle};

struct Entry {
    service: Box<dyn Service>,
    options: ServiceOptions,
}

/// Builds an [`App`]: services are added in the order they init and start.
pub struct AppBuilder {
    options: AppOptions,
    entries: Vec<Entry>,
    handle: StopHandle,
}

impl fmt::Debug for AppBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppBuilder")
            .field("options", &self.options)
            .field("services", &names(&self.entries))
            .finish()
    }
}

impl AppBuilder {
    /// Sets the app's options (signal handling, default bounds). The
    /// default bounds apply to services added after this call too.
    pub fn options(mut self, options: AppOptions) -> Self {
        self.options = options;
        self
    }

    /// Turns SIGINT/SIGTERM handling on or off (on by default).
    pub fn signals(mut self, on: bool) -> Self {
        self.options.signals = on;
        self
    }

    /// Adds a service with the app's default bounds.
    pub fn service(mut self, service: impl Service) -> Self {
        self.entries.push(Entry {
            service: Box::new(service),
            options: self.options.service,
        });
        self
    }

    /// Adds a service with bounds of its own.
    pub fn service_with(mut self, service: impl Service, options: ServiceOptions) -> Self {
        self.entries.push(Entry {
            service: Box::new(service),
            options,
        });
        self
    }

    /// A handle that stops the app once built and running.
    pub fn stop_handle(&self) -> StopHandle {
        self.handle.clone()
    }

    /// Builds the app.
    pub fn build(self) -> App {
        App {
            options: self.options,
            entries: self.entries,
            handle: self.handle,
        }
    }
}

/// Runs services in order and stops and finishes them in reverse, rolling
/// back on a failure (see [`App::run`]).
pub struct App {
    options: AppOptions,
    entries: Vec<Entry>,
    handle: StopHandle,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("options", &self.options)
            .field("services", &names(&self.entries))
            .finish()
    }
}

fn names(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.service.name()).collect()
}

impl App {
    /// Starts building an app with the default [`AppOptions`].
    pub fn builder() -> AppBuilder {
        AppBuilder {
            options: AppOptions::default(),
            entries: Vec::new(),
            handle: StopHandle::new(),
        }
    }

    /// A handle that stops the running app.
    pub fn stop_handle(&self) -> StopHandle {
        self.handle.clone()
    }

    /// Runs the app: `init` every service in order, `start` every service
    /// in order, wait for a stop (a [`StopHandle`], or SIGINT/SIGTERM when
    /// [`AppOptions::signals`] is on), `stop` every service in reverse,
    /// `finish` every service in reverse.
    ///
    /// - An `init` failure finishes the services initialised before it (in
    ///   reverse) and returns [`Error::Init`].
    /// - A `start` failure stops the services started before it, then
    ///   finishes every initialised one, the failed one included (both in
    ///   reverse), and returns [`Error::Start`].
    /// - `stop` and `finish` are bounded by the service's
    ///   [`ServiceOptions`]; one that fails or runs over is logged, recorded
    ///   in the report, and the run goes on. `init` and `start` are not
    ///   bounded, and a stop asked during them takes effect once every
    ///   service has started.
    ///
    /// With signals on, the runtime needs its IO driver (`enable_all`, as
    /// `#[tokio::main]` has), and a signal received while a stop is already
    /// asked ends the process with [`AppOptions::force_exit_code`].
    pub async fn run(mut self) -> Result<RunReport, Error> {
        let mut report = RunReport::default();
        let _signals = if self.options.signals {
            let guard = crate::signal::install(self.handle.clone(), self.options.force_exit_code)
                .map_err(Error::Signal)?;
            Some(guard)
        } else {
            None
        };

        for i in 0..self.entries.len() {
            let service = &mut self.entries[i].service;
            let name = service.name().to_owned();
            tracing::debug!(service = %name, "init");
            if let Err(source) = service.init().await {
                tracing::error!(service = %name, error = %source, "init failed: rolling back");
                report.push(&name, Phase::Init, Outcome::Failed(source.to_string()));
                self.finish_reverse(i, &mut report).await;
                return Err(Error::Init {
                    service: name,
                    source,
                    report: Box::new(report),
                });
            }
            report.push(&name, Phase::Init, Outcome::Ok);
        }

        let all = self.entries.len();
        for i in 0..all {
            let service = &mut self.entries[i].service;
            let name = service.name().to_owned();
            tracing::debug!(service = %name, "start");
            if let Err(source) = service.start().await {
                tracing::error!(service = %name, error = %source, "start failed: rolling back");
                report.push(&name, Phase::Start, Outcome::Failed(source.to_string()));
                self.stop_reverse(i, &mut report).await;
                self.finish_reverse(all, &mut report).await;
                return Err(Error::Start {
                    service: name,
                    source,
                    report: Box::new(report),
                });
            }
            report.push(&name, Phase::Start, Outcome::Ok);
        }

        tracing::info!(services = all, "app running");
        let reason = self.handle.stopped().await;
        tracing::info!(?reason, "app stopping");
        report.stop_reason = Some(reason);
        self.stop_reverse(all, &mut report).await;
        self.finish_reverse(all, &mut report).await;
        tracing::info!(clean = report.is_clean(), "app stopped");
        Ok(report)
    }

    /// Stops the first `n` services, last first.
    async fn stop_reverse(&mut self, n: usize, report: &mut RunReport) {
        for entry in self.entries[..n].iter_mut().rev() {
            let name = entry.service.name().to_owned();
            let timeout = entry.options.stop_timeout;
            let outcome = bounded(&name, Phase::Stop, timeout, entry.service.stop()).await;
            report.push(&name, Phase::Stop, outcome);
        }
    }

    /// Finishes the first `n` services, last first.
    async fn finish_reverse(&mut self, n: usize, report: &mut RunReport) {
        for entry in self.entries[..n].iter_mut().rev() {
            let name = entry.service.name().to_owned();
            let timeout = entry.options.finish_timeout;
            let outcome = bounded(&name, Phase::Finish, timeout, entry.service.finish()).await;
            report.push(&name, Phase::Finish, outcome);
        }
    }
}

/// Runs one phase within its bound; a failure or a cut is logged.
async fn bounded(
    name: &str,
    phase: Phase,
    timeout: Duration,
    fut: impl Future<Output = PhaseResult>,
) -> Outcome {
    tracing::debug!(service = %name, %phase, "begin");
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(())) => Outcome::Ok,
        Ok(Err(e)) => {
            tracing::warn!(service = %name, %phase, error = %e, "phase failed; going on");
            Outcome::Failed(e.to_string())
        }
        Err(_) => {
            tracing::warn!(service = %name, %phase, ?timeout, "phase over its bound: cut; going on");
            Outcome::TimedOut(timeout)
        }
    }
}
