//! Watches for a Redis that lost opsbot's data (see `store::redis::Epoch`):
//! every few seconds each replica checks the epoch marker, and the first to
//! find it gone says so loudly, in the log and in the team channel, since
//! from then on nothing is numbered or committed until an operator runs
//! `opsbot redis adopt`.

use crate::slack::client::SlackApi;
use crate::store::{EpochCheck, Store};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the marker is checked: a lost Redis is noticed within this,
/// or at the next number, whichever comes first.
pub const EVERY: Duration = Duration::from_secs(2);

/// What the team channel is told, once, by the replica that noticed first.
pub const LOST: &str = "⛔ *opsbot's Redis lost its data*: it came back empty (or is another database). \
    So that no incident number is handed out twice, opsbot records nothing new until an operator runs \
    `opsbot redis adopt --next INC-<the next number>` (see the README, \"When Redis loses its data\"). \
    Messages already in Slack are as they were; declare by hand meanwhile.";

pub async fn run(store: Store, slack: SlackApi, team_channel: String, shutdown: CancellationToken) {
    let mut told = false;
    loop {
        match store.check_epoch().await {
            Ok(EpochCheck::Kept) => {}
            Ok(EpochCheck::Lost { first }) => {
                if !told {
                    tracing::error!(
                        "Redis lost opsbot's data: nothing is numbered or committed until `opsbot redis adopt`"
                    );
                    told = true;
                }
                if first {
                    if let Err(e) = slack.post(&team_channel, None, LOST, None).await {
                        tracing::warn!(error = %e, "could not tell the team channel that Redis lost opsbot's data");
                    }
                }
            }
            Ok(EpochCheck::Recovered) => {
                tracing::info!("Redis was adopted: opsbot records again");
                told = false;
            }
            // Unreachable Redis is /readyz's and the callers' to report.
            Err(e) => tracing::debug!(error = %e, "could not check the epoch marker"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}
