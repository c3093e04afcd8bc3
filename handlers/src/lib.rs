//! opsbot's pure core: the command grammar, the incident state machine, the
//! runbook's incident policy and Block Kit rendering.
//!
//! Nothing here does I/O or reads a clock. A handler takes a parsed command,
//! the state it needs and `now`, and returns a [`decide::Decision`]: what to
//! store, what to post to Slack, and what to answer the user. The shell
//! (`opsbot`'s `bot/`) loads, commits and delivers.

pub mod checklist;
pub mod command;
pub mod decide;
pub mod incident;
pub mod render;
pub mod report;
pub mod routine;
pub mod run;
pub mod runbook;
pub mod schedule;
pub mod severity;
pub mod text;
pub mod timer;

pub use command::{IncidentCommand, SlashCommand, UsageError};
pub use decide::{Button, Decision, Effect, Invocation, Loaded, Reply, StateNeeded};
pub use incident::{Incident, IncidentId, MessageRef, Status, TimelineEntry, TimelineEvent};
pub use runbook::Runbook;
pub use severity::Severity;
pub use timer::{Timer, TimerKind};
