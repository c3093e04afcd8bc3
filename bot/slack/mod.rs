//! Talking to Slack: request signatures, the payloads Slack sends us (over
//! HTTP or Socket Mode) and what opsbot does with them, the Web API client
//! the outbox worker delivers through, and the user groups permissions read.

pub mod client;
pub mod inbound;
pub mod payloads;
pub mod signature;
pub mod socket_mode;
pub mod usergroups;
