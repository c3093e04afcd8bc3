//! GitHub's JSON shapes for the fake's data: users, repositories, commits
//! and comparisons, workflows, runs, jobs, deployments and their statuses,
//! with every field octocrab's models require
//! and the ones opsbot reads, shaped like the REST API and the webhook
//! payloads (see `handlers/tests/fixtures/github/`). URLs point at
//! api.github.com and github.com as the real ones do; clients only follow the
//! `Link` header, which points at the fake.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use crate::history::Comparison;
use crate::state::{Commit, Deployment, DeploymentStatus, Job, Repo, Workflow, WorkflowRun};

pub(crate) const API: &str = "https://api.github.com";
pub(crate) const WEB: &str = "https://github.com";

/// GitHub writes times as `2020-10-05T16:33:24Z`: whole seconds, `Z`.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A stable, GitHub-looking numeric id for a login, so the same user always
/// has the same id.
fn user_id(login: &str) -> u64 {
    login.bytes().fold(1_000_003u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))) % 90_000_000 + 10_000_000
}

/// A base64-looking GraphQL node id, good enough for clients that only
/// carry it around.
fn node_id(prefix: &str, id: u64) -> String {
    format!("{prefix}_kwDO{id:X}")
}

pub(crate) fn user(login: &str) -> Value {
    let id = user_id(login);
    let api = format!("{API}/users/{login}");
    let is_bot = login.ends_with("[bot]");
    json!({
        "login": login,
        "id": id,
        "node_id": node_id("U", id),
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{id}?v=4"),
        "gravatar_id": "",
        "url": api,
        "html_url": format!("{WEB}/{login}"),
        "followers_url": format!("{api}/followers"),
        "following_url": format!("{api}/following{{/other_user}}"),
        "gists_url": format!("{api}/gists{{/gist_id}}"),
        "starred_url": format!("{api}/starred{{/owner}}{{/repo}}"),
        "subscriptions_url": format!("{api}/subscriptions"),
        "organizations_url": format!("{api}/orgs"),
        "repos_url": format!("{api}/repos"),
        "events_url": format!("{api}/events{{/privacy}}"),
        "received_events_url": format!("{api}/received_events"),
        "type": if is_bot { "Bot" } else { "User" },
        "user_view_type": "public",
        "site_admin": false,
    })
}

/// The repository as run payloads and webhooks embed it.
pub(crate) fn repository(repo: &Repo) -> Value {
    let full = repo.full_name();
    let api = format!("{API}/repos/{full}");
    let mut owner = user(&repo.owner);
    owner["type"] = json!("Organization");
    json!({
        "id": repo.id,
        "node_id": node_id("R", repo.id),
        "name": repo.name,
        "full_name": full,
        "private": true,
        "owner": owner,
        "html_url": format!("{WEB}/{full}"),
        "description": null,
        "fork": false,
        "url": api,
        "default_branch": repo.default_branch,
        "archive_url": format!("{api}/{{archive_format}}{{/ref}}"),
        "branches_url": format!("{api}/branches{{/branch}}"),
        "commits_url": format!("{api}/commits{{/sha}}"),
        "compare_url": format!("{api}/compare/{{base}}...{{head}}"),
        "deployments_url": format!("{api}/deployments"),
        "events_url": format!("{api}/events"),
        "hooks_url": format!("{api}/hooks"),
        "issues_url": format!("{api}/issues{{/number}}"),
        "pulls_url": format!("{api}/pulls{{/number}}"),
        "statuses_url": format!("{api}/statuses/{{sha}}"),
        "clone_url": format!("{WEB}/{full}.git"),
        "visibility": "private",
        "archived": false,
        "disabled": false,
    })
}

/// The repository as `GET /repos/{owner}/{repo}` answers it: the embedded
/// shape plus the counts, dates and the caller's permissions.
pub(crate) fn full_repository(repo: &Repo, pushed_at: DateTime<Utc>) -> Value {
    let mut value = repository(repo);
    let extra = json!({
        "created_at": time(repo.created_at),
        "updated_at": time(pushed_at),
        "pushed_at": time(pushed_at),
        "git_url": format!("git://github.com/{}.git", repo.full_name()),
        "ssh_url": format!("git@github.com:{}.git", repo.full_name()),
        "svn_url": format!("{WEB}/{}", repo.full_name()),
        "homepage": null,
        "size": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "language": null,
        "has_issues": true,
        "has_projects": true,
        "has_downloads": true,
        "has_wiki": false,
        "has_pages": false,
        "forks_count": 0,
        "mirror_url": null,
        "open_issues_count": 0,
        "is_template": false,
        "topics": [],
        "allow_forking": false,
        "web_commit_signoff_required": false,
        "forks": 0,
        "open_issues": 0,
        "watchers": 0,
        "permissions": {"admin": false, "maintain": false, "push": true, "triage": true, "pull": true},
        "network_count": 0,
        "subscribers_count": 0,
    });
    if let (Some(target), Value::Object(extra)) = (value.as_object_mut(), extra) {
        target.extend(extra);
    }
    value
}

/// A commit in the REST API's `commit` shape (as compare lists them).
/// The author is a GitHub user; the committer is GitHub's `web-flow`, as
/// for commits made through the web and merges.
pub(crate) fn commit(c: &Commit) -> Value {
    let api = format!("{API}/repos/{}", c.repo);
    let git_author = json!({
        "name": c.author,
        "email": format!("{}@users.noreply.github.com", c.author),
        "date": time(c.date),
    });
    let git_committer = json!({"name": "GitHub", "email": "noreply@github.com", "date": time(c.date)});
    let parents: Vec<Value> = c
        .parents
        .iter()
        .map(|p| {
            json!({
                "sha": p,
                "url": format!("{api}/commits/{p}"),
                "html_url": format!("{WEB}/{}/commit/{p}", c.repo),
            })
        })
        .collect();
    json!({
        "sha": c.sha,
        "node_id": format!("C_kwDO{}", &c.sha[..c.sha.len().min(16)]),
        "commit": {
            "author": git_author,
            "committer": git_committer,
            "message": c.message,
            "tree": {"sha": tree_id(&c.sha), "url": format!("{api}/git/trees/{}", tree_id(&c.sha))},
            "url": format!("{api}/git/commits/{}", c.sha),
            "comment_count": 0,
            "verification": {
                "verified": false,
                "reason": "unsigned",
                "signature": null,
                "payload": null,
                "verified_at": null,
            },
        },
        "url": format!("{api}/commits/{}", c.sha),
        "html_url": format!("{WEB}/{}/commit/{}", c.repo, c.sha),
        "comments_url": format!("{api}/commits/{}/comments", c.sha),
        "author": user(&c.author),
        "committer": user("web-flow"),
        "parents": parents,
    })
}

/// `GET /repos/{owner}/{repo}/commits/{ref}`: the commit with its stats
/// and files. The fake has no trees, so both are empty.
pub(crate) fn commit_detail(c: &Commit) -> Value {
    let mut value = commit(c);
    value["stats"] = json!({"total": 0, "additions": 0, "deletions": 0});
    value["files"] = json!([]);
    value
}

/// `GET /repos/{owner}/{repo}/compare/{basehead}`, with the commits of the
/// requested page; URLs name the refs as the client gave them.
pub(crate) fn comparison(repo: &Repo, basehead: &str, cmp: &Comparison<'_>, page: &[&Commit]) -> Value {
    let full = repo.full_name();
    let short = |sha: &str| sha[..sha.len().min(7)].to_owned();
    let html = format!("{WEB}/{full}/compare/{basehead}");
    json!({
        "url": format!("{API}/repos/{full}/compare/{basehead}"),
        "html_url": html,
        "permalink_url": format!(
            "{WEB}/{full}/compare/{owner}:{}...{owner}:{}",
            short(&cmp.base.sha),
            short(&cmp.head.sha),
            owner = repo.owner,
        ),
        "diff_url": format!("{html}.diff"),
        "patch_url": format!("{html}.patch"),
        "base_commit": commit(cmp.base),
        "merge_base_commit": commit(cmp.merge_base),
        "status": cmp.status(),
        "ahead_by": cmp.ahead.len(),
        "behind_by": cmp.behind_by,
        "total_commits": cmp.ahead.len(),
        "commits": page.iter().map(|c| commit(c)).collect::<Vec<_>>(),
        "files": [],
    })
}

pub(crate) fn workflow(w: &Workflow) -> Value {
    let api = format!("{API}/repos/{}/actions/workflows/{}", w.repo, w.id);
    json!({
        "id": w.id,
        "node_id": node_id("W", w.id),
        "name": w.name,
        "path": w.path,
        "state": w.state,
        "created_at": time(w.created_at),
        "updated_at": time(w.created_at),
        "url": api,
        "html_url": format!("{WEB}/{}/blob/main/{}", w.repo, w.path),
        "badge_url": format!("{WEB}/{}/workflows/{}/badge.svg", w.repo, urlencode_path(&w.name)),
    })
}

fn urlencode_path(s: &str) -> String {
    s.replace('%', "%25").replace(' ', "%20")
}

pub(crate) fn run(r: &WorkflowRun, repo: &Repo, workflow_path: &str) -> Value {
    let full = &r.repo;
    let api = format!("{API}/repos/{full}/actions/runs/{}", r.id);
    let check_suite_id = r.id + 11_000_000_000;
    let repository = repository(repo);
    json!({
        "id": r.id,
        "name": r.name,
        "node_id": node_id("WFR", r.id),
        "head_branch": r.head_branch,
        "head_sha": r.head_sha,
        "path": workflow_path,
        "display_title": r.display_title,
        "run_number": r.run_number,
        "event": r.event,
        "status": r.status.as_str(),
        "conclusion": r.conclusion.map(|c| c.as_str()),
        "workflow_id": r.workflow_id,
        "check_suite_id": check_suite_id,
        "check_suite_node_id": node_id("CS", check_suite_id),
        "url": api,
        "html_url": format!("{WEB}/{full}/actions/runs/{}", r.id),
        "pull_requests": [],
        "created_at": time(r.created_at),
        "updated_at": time(r.updated_at),
        "actor": user(&r.actor),
        "run_attempt": r.run_attempt,
        "referenced_workflows": [],
        "run_started_at": time(r.run_started_at),
        "triggering_actor": user(&r.triggering_actor),
        "jobs_url": format!("{api}/jobs"),
        "logs_url": format!("{api}/logs"),
        "check_suite_url": format!("{API}/repos/{full}/check-suites/{check_suite_id}"),
        "artifacts_url": format!("{api}/artifacts"),
        "cancel_url": format!("{api}/cancel"),
        "rerun_url": format!("{api}/rerun"),
        "previous_attempt_url": (r.run_attempt > 1).then(|| format!("{api}/attempts/{}", r.run_attempt - 1)),
        "workflow_url": format!("{API}/repos/{full}/actions/workflows/{}", r.workflow_id),
        "head_commit": {
            "id": r.head_sha,
            "tree_id": tree_id(&r.head_sha),
            "message": r.display_title,
            "timestamp": time(r.created_at),
            "author": {"name": r.actor, "email": format!("{}@users.noreply.github.com", r.actor)},
            "committer": {"name": "GitHub", "email": "noreply@github.com"},
        },
        "repository": repository,
        "head_repository": repository,
    })
}

/// A tree id that differs from the commit id but follows from it.
fn tree_id(sha: &str) -> String {
    sha.chars().rev().collect()
}

pub(crate) fn job(j: &Job, r: &WorkflowRun) -> Value {
    let full = &r.repo;
    let api = format!("{API}/repos/{full}/actions/jobs/{}", j.id);
    json!({
        "id": j.id,
        "run_id": j.run_id,
        "workflow_name": r.name,
        "head_branch": r.head_branch,
        "run_url": format!("{API}/repos/{full}/actions/runs/{}", r.id),
        "run_attempt": j.run_attempt,
        "node_id": node_id("CR", j.id),
        "head_sha": r.head_sha,
        "url": api,
        "html_url": format!("{WEB}/{full}/actions/runs/{}/job/{}", r.id, j.id),
        "status": j.status.as_str(),
        "conclusion": j.conclusion.map(|c| c.as_str()),
        "created_at": time(j.started_at),
        "started_at": time(j.started_at),
        "completed_at": j.completed_at.map(time),
        "name": j.name,
        "steps": [],
        "check_run_url": format!("{API}/repos/{full}/check-runs/{}", j.id),
        "labels": ["ubuntu-latest"],
        "runner_id": null,
        "runner_name": null,
        "runner_group_id": null,
        "runner_group_name": null,
    })
}

pub(crate) fn deployment(d: &Deployment) -> Value {
    let api = format!("{API}/repos/{}/deployments/{}", d.repo, d.id);
    json!({
        "url": api,
        "id": d.id,
        "node_id": node_id("DE", d.id),
        "sha": d.sha,
        "ref": d.git_ref,
        "task": d.task,
        "payload": d.payload,
        "original_environment": d.original_environment,
        "environment": d.environment,
        "description": d.description,
        "creator": user(&d.creator),
        "created_at": time(d.created_at),
        "updated_at": time(d.updated_at),
        "statuses_url": format!("{api}/statuses"),
        "repository_url": format!("{API}/repos/{}", d.repo),
        "transient_environment": d.transient_environment,
        "production_environment": d.production_environment,
        "performed_via_github_app": null,
    })
}

pub(crate) fn deployment_status(s: &DeploymentStatus, d: &Deployment) -> Value {
    let deployment_url = format!("{API}/repos/{}/deployments/{}", d.repo, d.id);
    json!({
        "url": format!("{deployment_url}/statuses/{}", s.id),
        "id": s.id,
        "node_id": node_id("DES", s.id),
        "state": s.state,
        "creator": user(&s.creator),
        "description": s.description,
        "environment": s.environment,
        "target_url": s.log_url.clone().unwrap_or_default(),
        "log_url": s.log_url.clone().unwrap_or_default(),
        "environment_url": s.environment_url.clone().unwrap_or_default(),
        "created_at": time(s.created_at),
        "updated_at": time(s.created_at),
        "deployment_url": deployment_url,
        "repository_url": format!("{API}/repos/{}", d.repo),
        "performed_via_github_app": null,
    })
}
