//! End-to-end tests: the real router and workers on a free port, a private
//! redis-server, and the fake Slack Web API on 127.0.0.1.

mod alert_flows;
mod alerts;
mod binary;
mod delivery;
mod deploy;
mod events;
mod home;
mod hours;
mod incidents;
mod live_checks;
mod manifest;
mod oncall;
mod permissions;
mod pipeline;
mod requests;
mod resilience;
mod response;
mod routines;
mod socket_mode;
mod support;
mod takeover;
