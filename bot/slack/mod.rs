//! Talking to Slack: request signatures, the payloads Slack sends us, and
//! the Web API client the outbox worker delivers through.

pub mod client;
pub mod payloads;
pub mod signature;
