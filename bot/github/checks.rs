//! The figures a posted checklist's checks need, fetched for the outbox:
//! each window once for the configured repository, through the answer
//! caches, all at once and within a bounded wait. What has not arrived by
//! then is told as GitHub not answering, so a checklist never waits long
//! on GitHub, and never fails to post because of it.

use super::{Connected, GitHub, PER_PAGE};
use chrono::{DateTime, TimeDelta, Utc};
use opsbot_handlers::github::{DeploymentRecord, DeploymentState, Deployments, Lookup, Repo, Unavailable};
use opsbot_handlers::pipeline::checks::{Answers, Fetched, Source};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// How long a posting waits for GitHub before it goes out without figures.
pub const CHECKS_WAIT: Duration = Duration::from_secs(3);
/// How long postings wait while an earlier fetch is still on its way (for
/// up to a call's timeout): a checklist of several messages is held up by
/// a slow GitHub once, not once per message.
const CHECKS_WAIT_WHILE_SLOW: Duration = Duration::from_millis(250);
/// Pages of deployments read for one window: 300 deployments in a week is
/// a busy repository; beyond that the figures are over the newest ones.
const DEPLOYMENT_PAGES: usize = 3;
/// Deployments whose latest status is read (one call each); the figures
/// are over the newest this many.
const STATUSES_READ: usize = 30;
/// Status calls in flight at once: GitHub asks clients not to fan out.
const STATUSES_AT_ONCE: usize = 6;

/// One answer for one window.
enum Answer {
    Runs(u32, Result<opsbot_handlers::github::Activity, Unavailable>),
    Deployments(u32, Result<Deployments, Unavailable>),
}

impl GitHub {
    /// What `sources` say about the configured repository, fetched at once,
    /// waiting at most `wait`. A fetch still on its way then goes on, so its
    /// answer is in the cache for the next message that needs it.
    pub async fn fetch_checks(&self, sources: &BTreeSet<Source>, wait: Duration) -> Fetched {
        let Some(connected) = &self.connected else { return Fetched::NotConnected };
        let Some(repo) = self.repository.clone() else { return Fetched::NoRepository };
        let mut answers = Answers {
            repo: repo.clone(),
            at: connected.clock.now(),
            runs: BTreeMap::new(),
            deployments: BTreeMap::new(),
        };
        let mut asking = JoinSet::new();
        for source in sources.iter().copied() {
            let (github, repo) = (self.clone(), repo.clone());
            asking.spawn(async move {
                match source {
                    Source::Runs { hours } => {
                        Answer::Runs(hours, github.lookup(&Lookup::Activity { repo, hours }).await)
                    }
                    Source::Deployments { hours } => Answer::Deployments(hours, github.deployments(&repo, hours).await),
                }
            });
        }
        let slow_until = *connected.checks_slow_until.lock().unwrap_or_else(|e| e.into_inner());
        let wait = match slow_until {
            Some(until) if until > tokio::time::Instant::now() => wait.min(CHECKS_WAIT_WHILE_SLOW),
            _ => wait,
        };
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(answer)) = tokio::time::timeout_at(deadline, asking.join_next()).await {
            match answer {
                Ok(Answer::Runs(hours, found)) => {
                    answers.runs.insert(hours, found);
                }
                Ok(Answer::Deployments(hours, found)) => {
                    answers.deployments.insert(hours, found);
                }
                // A fetch that panicked reads as GitHub not answering, below.
                Err(e) => tracing::warn!(error = %e, "a GitHub fetch for a checklist's checks failed"),
            }
        }
        if !asking.is_empty() {
            let until = tokio::time::Instant::now() + super::CALL_TIMEOUT;
            *connected.checks_slow_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(until);
        }
        asking.detach_all();
        let late = || Unavailable::Down { why: format!("no answer within {} s", wait.as_secs_f32()) };
        for source in sources {
            match *source {
                Source::Runs { hours } => {
                    answers.runs.entry(hours).or_insert_with(|| Err(late()));
                }
                Source::Deployments { hours } => {
                    answers.deployments.entry(hours).or_insert_with(|| Err(late()));
                }
            }
        }
        let failed: Vec<&Unavailable> = answers
            .runs
            .values()
            .filter_map(|r| r.as_ref().err())
            .chain(answers.deployments.values().filter_map(|r| r.as_ref().err()))
            .collect();
        if !failed.is_empty() {
            tracing::info!(repo = %answers.repo, reasons = ?failed, "a checklist goes out without some of its figures");
        }
        Fetched::Asked(answers)
    }

    /// The deployments created in the last `hours`, each with its latest
    /// status, from the cache when someone asked a moment ago.
    pub async fn deployments(&self, repo: &Repo, hours: u32) -> Result<Deployments, Unavailable> {
        let Some(c) = &self.connected else {
            return Err(Unavailable::NotConnected);
        };
        let now = c.clock.now();
        let key = (repo.clone(), hours);
        c.deployments.get_or_fetch(&key, now, || Connected::fetch_deployments(c.clone(), repo.clone(), hours)).await
    }
}

#[derive(Deserialize)]
struct DeploymentJson {
    id: u64,
    #[serde(default)]
    environment: String,
    #[serde(default, rename = "ref")]
    git_ref: String,
    created_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct StatusJson {
    state: String,
    #[serde(default)]
    log_url: Option<String>,
    #[serde(default)]
    target_url: Option<String>,
}

impl Connected {
    async fn fetch_deployments(this: Arc<Connected>, repo: Repo, hours: u32) -> Result<Deployments, Unavailable> {
        let since = this.clock.now() - TimeDelta::hours(i64::from(hours));
        let mut listed = Vec::new();
        let mut truncated = false;
        // GitHub lists deployments newest first, with no date filter: read
        // pages until one reaches past the window.
        for page in 1..=DEPLOYMENT_PAGES {
            let path = format!("/repos/{repo}/deployments?per_page={PER_PAGE}&page={page}");
            let found: Vec<DeploymentJson> = this.get(&repo, &path, "the deployments").await?;
            let last_page = found.len() < PER_PAGE;
            let past_the_window = found.last().is_some_and(|d| d.created_at < since);
            listed.extend(found.into_iter().filter(|d| d.created_at >= since));
            if last_page || past_the_window {
                break;
            }
            truncated = page == DEPLOYMENT_PAGES;
        }
        if listed.len() > STATUSES_READ {
            listed.truncate(STATUSES_READ);
            truncated = true;
        }
        let mut deployments = Vec::with_capacity(listed.len());
        for batch in listed.chunks(STATUSES_AT_ONCE) {
            let mut statuses = JoinSet::new();
            for (i, d) in batch.iter().enumerate() {
                let (this, repo, id) = (this.clone(), repo.clone(), d.id);
                statuses.spawn(async move {
                    let path = format!("/repos/{repo}/deployments/{id}/statuses?per_page=1");
                    let latest: Result<Vec<StatusJson>, Unavailable> =
                        this.get(&repo, &path, "a deployment's statuses").await;
                    (i, latest)
                });
            }
            let mut latest: Vec<Option<StatusJson>> = batch.iter().map(|_| None).collect();
            while let Some(answer) = statuses.join_next().await {
                let (i, found) = answer.map_err(|e| Unavailable::Down { why: super::short(&e.to_string()) })?;
                latest[i] = found?.into_iter().next();
            }
            deployments.extend(batch.iter().zip(latest).map(|(d, status)| DeploymentRecord {
                id: d.id,
                environment: d.environment.clone(),
                git_ref: d.git_ref.clone(),
                created: d.created_at,
                state: DeploymentState::parse(status.as_ref().map(|s| s.state.as_str())),
                url: status.and_then(|s| s.log_url.or(s.target_url)).filter(|u| !u.is_empty()),
            }));
        }
        Ok(Deployments { repo, deployments, truncated, fetched: this.clock.now() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TestClock;
    use crate::config::Secret;
    use crate::github::{Auth, GitHubSettings};

    fn t0() -> DateTime<Utc> {
        "2026-12-01T09:00:00Z".parse().unwrap()
    }

    #[tokio::test]
    async fn a_github_that_never_answers_costs_a_checklist_the_bounded_wait_once() {
        // Accepts connections and never answers them.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let settings = GitHubSettings {
            auth: Some(Auth::Token(Secret::new("ghp_test"))),
            repository: Repo::parse("octo-org/shop"),
            api_url: format!("http://{}/", silent.local_addr().unwrap()),
        };
        let github = GitHub::new(&settings, Arc::new(TestClock::new(t0())), Arc::default()).unwrap();
        let sources = BTreeSet::from([Source::Runs { hours: 24 }, Source::Deployments { hours: 168 }]);
        let started = std::time::Instant::now();
        let fetched = github.fetch_checks(&sources, Duration::from_millis(300)).await;
        assert!(started.elapsed() < Duration::from_secs(2), "waited {:?}", started.elapsed());
        let Fetched::Asked(answers) = fetched else { panic!("{fetched:?}") };
        assert!(matches!(answers.runs.get(&24), Some(Err(Unavailable::Down { .. }))), "{answers:?}");
        assert!(matches!(answers.deployments.get(&168), Some(Err(Unavailable::Down { .. }))), "{answers:?}");

        // The next message of the same checklist does not wait that long again.
        let started = std::time::Instant::now();
        let fetched = github.fetch_checks(&sources, CHECKS_WAIT).await;
        assert!(started.elapsed() < Duration::from_secs(1), "waited {:?}", started.elapsed());
        assert!(matches!(fetched, Fetched::Asked(a) if a.runs.get(&24).is_some_and(|r| r.is_err())));
        drop(silent);
    }

    #[tokio::test]
    async fn without_a_token_or_a_repository_nothing_is_asked() {
        let sources = BTreeSet::from([Source::Runs { hours: 24 }]);
        let github = GitHub::disconnected(Repo::parse("octo-org/shop"));
        assert_eq!(github.fetch_checks(&sources, CHECKS_WAIT).await, Fetched::NotConnected);
        let settings = GitHubSettings {
            auth: Some(Auth::Token(Secret::new("ghp_test"))),
            repository: None,
            api_url: "http://127.0.0.1:9/".into(),
        };
        let github = GitHub::new(&settings, Arc::new(TestClock::new(t0())), Arc::default()).unwrap();
        assert_eq!(github.fetch_checks(&sources, CHECKS_WAIT).await, Fetched::NoRepository);
    }
}
