//! The runbook as decisions see it: the runbook file's, with the on-call
//! overrides in force or planned folded into its rotations (as covers).
//! Overrides are state in the store, but every page, `/oncall` and handoff
//! must follow them, so rather than load them for every decision each
//! replica keeps a copy: reloaded every [`REFRESH`], and at once after
//! this replica committed an override. A change made on another replica
//! is followed here within that interval; an override's start and end need
//! no reload, since covers carry their own span.

use crate::clock::Clock;
use crate::store::{Store, StoreResult};
use opsbot_handlers::runbook::oncall::Cover;
use opsbot_handlers::Runbook;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the overrides are reloaded: two Redis calls per replica per
/// interval, however busy the bot is.
pub const REFRESH: Duration = Duration::from_secs(2);

pub struct Roster {
    file: Arc<Runbook>,
    current: RwLock<Arc<Runbook>>,
    /// Each kept user group's member as this replica last asked Slack to
    /// set it (see [`Roster::keep_usergroups`]).
    synced: std::sync::Mutex<HashMap<String, String>>,
}

impl Roster {
    pub fn new(file: Arc<Runbook>) -> Roster {
        Roster { current: RwLock::new(file.clone()), file, synced: Default::default() }
    }

    /// The runbook with the overrides as last loaded.
    pub fn runbook(&self) -> Arc<Runbook> {
        // A panic while holding the lock cannot leave a half-written Arc.
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Reloads the open overrides; the runbook is rebuilt only when they
    /// changed.
    pub async fn refresh(&self, store: &Store) -> StoreResult<()> {
        let covers: Vec<Cover> = store.subjects.open_overrides().await?.iter().map(|o| o.cover()).collect();
        if self.runbook().oncall.covers == covers {
            return Ok(());
        }
        let mut runbook = (*self.file).clone();
        runbook.oncall.covers = covers;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(runbook);
        Ok(())
    }
}

impl Roster {
    /// Asks Slack, through the outbox, to set each rotation's user group to
    /// whoever is on call now when that changed since this replica last
    /// asked (and once at start). Replicas may each ask: setting a group
    /// to the same person twice changes nothing.
    pub async fn keep_usergroups(&self, store: &Store, now: chrono::DateTime<chrono::Utc>) -> StoreResult<()> {
        let runbook = self.runbook();
        for (group, member) in opsbot_handlers::oncall::usergroup::wanted(&runbook, now) {
            let synced = self.synced.lock().unwrap_or_else(|e| e.into_inner()).get(&group) == Some(&member);
            if synced {
                continue;
            }
            store.outbox.enqueue(&[opsbot_handlers::oncall::usergroup::sync(&group, &member)]).await?;
            tracing::info!(%group, %member, "on-call user group set to whoever is on call");
            self.synced.lock().unwrap_or_else(|e| e.into_inner()).insert(group, member);
        }
        Ok(())
    }
}

/// Keeps `roster` in step with the store, and the rotations' user groups in
/// step with it, until shutdown.
pub async fn run(roster: Arc<Roster>, store: Store, clock: Arc<dyn Clock>, shutdown: CancellationToken) {
    loop {
        if let Err(e) = roster.refresh(&store).await {
            tracing::warn!(error = %e, "cannot reload the on-call overrides; pages follow the last ones loaded");
        }
        if let Err(e) = roster.keep_usergroups(&store, clock.now()).await {
            tracing::warn!(error = %e, "cannot queue the on-call user groups' update; will try again");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(REFRESH) => {}
        }
    }
}
