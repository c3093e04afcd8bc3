//! Talking to Slack: request signatures, the payloads Slack sends us, the
//! Web API client the outbox worker delivers through, and the user groups
//! permissions read. What opsbot does with what arrives is `inbound`.

pub mod client;
pub mod payloads;
pub mod signature;
pub mod usergroups;
