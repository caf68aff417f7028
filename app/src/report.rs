//! The [`RunReport`]: which services ran which phases, and how they ended.

use std::fmt;
use std::time::Duration;

use crate::StopReason;

/// A phase of a [`Service`](crate::Service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// `init`.
    Init,
    /// `start`.
    Start,
    /// `stop`.
    Stop,
    /// `finish`.
    Finish,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Init => "init",
            Phase::Start => "start",
            Phase::Stop => "stop",
            Phase::Finish => "finish",
        })
    }
}

/// How one phase of one service ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// It returned `Ok`.
    Ok,
    /// It returned this error (its display text).
    Failed(String),
    /// It ran over its bound and was cut.
    TimedOut(Duration),
}

/// One phase that ran, in the order it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PhaseRecord {
    /// The service's name.
    pub service: String,
    /// The phase.
    pub phase: Phase,
    /// How it ended.
    pub outcome: Outcome,
}

/// What an [`App::run`](crate::App::run) did: every phase of every service
/// in the order they ran, and why the app stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunReport {
    /// The phases run, in order.
    pub phases: Vec<PhaseRecord>,
    /// Why the app stopped; `None` when it never reached its wait (an init
    /// or start failure).
    pub stop_reason: Option<StopReason>,
}

impl RunReport {
    /// Whether every phase returned `Ok`.
    pub fn is_clean(&self) -> bool {
        self.phases.iter().all(|p| p.outcome == Outcome::Ok)
    }

    /// The phases as `"<phase> <service>"` strings, in order (handy in
    /// tests and logs).
    pub fn sequence(&self) -> Vec<String> {
        self.phases
            .iter()
            .map(|p| format!("{} {}", p.phase, p.service))
            .collect()
    }

    /// The phases that did not return `Ok`.
    pub fn failures(&self) -> impl Iterator<Item = &PhaseRecord> {
        self.phases.iter().filter(|p| p.outcome != Outcome::Ok)
    }

    pub(crate) fn push(&mut self, service: &str, phase: Phase, outcome: Outcome) {
        self.phases.push(PhaseRecord {
            service: service.to_owned(),
            phase,
            outcome,
        });
    }
}
