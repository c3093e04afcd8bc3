//! opsbot's pure core. Nothing here does I/O or reads a clock: a handler
//! takes what happened (an [`event::Event`]), the state it needs and `now`,
//! and returns a [`decision::Decision`]: what to store, what to post to
//! Slack, which timers to set, and what to answer. The shell (`opsbot`'s
//! `bot/`) loads, commits and delivers.
//!
//! - Shared vocabulary, naming no feature: [`subject`], [`decision`],
//!   [`timer`], [`codec`], [`wire`], [`replies`].
//! - Shared mechanisms: [`checklist`], [`blocks`], [`text`], [`severity`],
//!   the [`runbook`] model with its [`schedule`]s.
//! - Features, one module each: [`incident`], [`run`], [`alert`],
//!   [`pipeline`] and [`deploy`] (with GitHub's data as [`github`]
//!   describes it), [`oncall`].
//! - Routing, the one place that names every feature: [`command`],
//!   [`event`], [`delivery`].

pub mod alert;
pub mod blocks;
pub mod checklist;
pub mod codec;
pub mod command;
pub mod decision;
pub mod delivery;
pub mod deploy;
pub mod event;
pub mod github;
pub mod home;
pub mod incident;
pub mod oncall;
pub mod pipeline;
pub mod replies;
pub mod run;
pub mod runbook;
pub mod severity;
pub mod subject;
pub mod text;
pub mod timer;
pub mod wire;

pub use decision::{Decision, Effect, Invocation, Reply};
pub use event::{Change, Event, Loaded, Need};
pub use incident::{Incident, Status, TimelineEntry, TimelineEvent};
pub use runbook::{schedule, Runbook};
pub use severity::Severity;
pub use subject::{IncidentId, Message, MessageRef, RunId, Subject};
pub use timer::Timer;
