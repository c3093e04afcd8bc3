//! Alerts that arrive by webhook: GitHub (workflow runs, deployment
//! statuses) and Alertmanager. The routes verify a delivery and store it
//! in the inbox before they answer; the worker decides what is stored
//! afterwards. A delivery is answered in milliseconds whatever the store
//! behind the decisions is doing, and a restart loses none.

pub mod routes;
pub mod verify;
pub mod worker;

pub use routes::router;
