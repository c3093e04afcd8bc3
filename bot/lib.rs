//! opsbot's shell: configuration, the HTTP server Slack and the webhooks
//! talk to, the Redis store, the Slack client, and the outbox and hook
//! workers. Decisions are made by the
//! pure core in `opsbot-handlers`; this crate loads, commits and delivers.

pub mod admission;
pub mod app;
pub mod clock;
pub mod config;
pub mod engine;
pub mod epoch;
pub mod error;
pub mod extract;
pub mod github;
pub mod heartbeat;
pub mod home;
pub mod hooks;
pub mod inbound;
pub mod metrics;
pub mod outbox;
pub mod roster;
pub mod routes;
pub mod sandbox;
pub mod scheduler;
pub mod slack;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod timers;
