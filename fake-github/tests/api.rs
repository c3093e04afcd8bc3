//! Drives the spawned fake over plain HTTP, checking it answers like
//! GitHub's REST API: auth, filters, pagination, state changes from
//! dispatches and re-runs, error bodies, rate-limit headers, the test
//! controls, and signed webhook deliveries.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use opsbot_fake_github::{
    endpoint, Change, Conclusion, Failure, FakeGitHub, Input, RunSpec, SpawnedFake, Status, DEFAULT_TOKEN,
};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;

const REPO: &str = "octo-org/shop";

fn at(s: &str) -> DateTime<Utc> {
    s.parse().expect("test time")
}

struct Harness {
    github: FakeGitHub,
    server: SpawnedFake,
    http: reqwest::Client,
    ci: u64,
}

impl Harness {
    async fn new() -> Self {
        let github = FakeGitHub::new();
        github.set_now(at("2024-05-02T12:00:00Z"));
        github.add_repo(REPO, "main");
        let ci = github.add_workflow(REPO, "CI", ".github/workflows/ci.yml");
        let server = github.spawn().await.expect("spawn fake");
        Harness { github, server, http: reqwest::Client::new(), ci }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/repos/{REPO}{path}", self.server.api_url)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).bearer_auth(DEFAULT_TOKEN).send().await.expect("request")
    }

    async fn get_json(&self, path: &str) -> Value {
        let res = self.get(path).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        res.json().await.expect("json body")
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http.post(self.url(path)).bearer_auth(DEFAULT_TOKEN).json(&body).send().await.expect("request")
    }

    fn completed(&self, branch: &str, conclusion: Conclusion, started: &str) -> u64 {
        self.github.add_run(REPO, self.ci, RunSpec::completed(branch, conclusion, at(started), Duration::from_secs(90)))
    }
}

async fn message(res: reqwest::Response) -> String {
    let body: Value = res.json().await.expect("json error body");
    body["message"].as_str().expect("message").to_owned()
}

#[tokio::test]
async fn auth_takes_bearer_and_token_and_refuses_anything_else() {
    let h = Harness::new().await;
    let url = h.url("/actions/runs");
    let bearer = h.http.get(&url).bearer_auth(DEFAULT_TOKEN).send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);
    let token = h.http.get(&url).header("authorization", format!("token {DEFAULT_TOKEN}")).send().await.unwrap();
    assert_eq!(token.status(), StatusCode::OK);

    let wrong = h.http.get(&url).bearer_auth("ghp_wrong").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["message"], "Bad credentials");
    assert_eq!(body["documentation_url"], "https://docs.github.com/rest");
    assert_eq!(body["status"], "401");

    let missing = h.http.get(&url).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(message(missing).await, "Requires authentication");
    assert_eq!(h.github.calls(endpoint::LIST_REPO_RUNS), 4);
}

#[tokio::test]
async fn unknown_repositories_runs_and_paths_are_not_found() {
    let h = Harness::new().await;
    let res = h.http.get(format!("{}/repos/octo-org/nope/actions/runs", h.server.api_url));
    let res = res.bearer_auth(DEFAULT_TOKEN).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(message(res).await, "Not Found");
    assert_eq!(h.get("/actions/runs/42").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(h.get("/actions/workflows/nope.yml").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(h.get("/pulls").await.status(), StatusCode::NOT_FOUND);
    // Owner and repository names are case-insensitive.
    let upper = h.http.get(format!("{}/repos/Octo-Org/Shop/actions/runs", h.server.api_url));
    assert_eq!(upper.bearer_auth(DEFAULT_TOKEN).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn run_json_has_githubs_shape() {
    let h = Harness::new().await;
    let id = h.github.add_run(
        REPO,
        h.ci,
        RunSpec::completed("main", Conclusion::Failure, at("2024-05-01T09:00:00Z"), Duration::from_secs(300))
            .actor("alice")
            .title("Fix checkout rounding")
            .sha("3484a3fb816e0859fd6e1cea078d76385ff50625"),
    );
    let run = h.get_json(&format!("/actions/runs/{id}")).await;
    assert_eq!(run["id"], id);
    assert_eq!(run["name"], "CI");
    assert_eq!(run["path"], ".github/workflows/ci.yml");
    assert_eq!(run["display_title"], "Fix checkout rounding");
    assert_eq!(run["head_sha"], "3484a3fb816e0859fd6e1cea078d76385ff50625");
    assert_eq!(run["status"], "completed");
    assert_eq!(run["conclusion"], "failure");
    assert_eq!(run["run_number"], 1);
    assert_eq!(run["run_attempt"], 1);
    assert_eq!(run["event"], "push");
    assert_eq!(run["created_at"], "2024-05-01T09:00:00Z");
    assert_eq!(run["run_started_at"], "2024-05-01T09:00:00Z");
    assert_eq!(run["updated_at"], "2024-05-01T09:05:00Z");
    assert_eq!(run["actor"]["login"], "alice");
    assert_eq!(run["html_url"], format!("https://github.com/{REPO}/actions/runs/{id}"));
    assert_eq!(run["repository"]["full_name"], REPO);
    assert_eq!(run["repository"]["default_branch"], "main");
    assert_eq!(run["previous_attempt_url"], Value::Null);
}

#[tokio::test]
async fn runs_filter_by_branch_status_event_and_created() {
    let h = Harness::new().await;
    h.completed("main", Conclusion::Success, "2024-04-28T10:00:00Z");
    let failed = h.completed("main", Conclusion::Failure, "2024-04-30T10:00:00Z");
    h.completed("feature/x", Conclusion::Failure, "2024-05-01T10:00:00Z");
    let running = h.github.add_run(REPO, h.ci, RunSpec::in_progress("main", at("2024-05-02T10:00:00Z")));

    let ids = |body: &Value| -> Vec<u64> {
        body["workflow_runs"].as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect()
    };
    let main_failures = h.get_json("/actions/runs?branch=main&status=failure").await;
    assert_eq!(main_failures["total_count"], 1);
    assert_eq!(ids(&main_failures), [failed]);
    let in_progress = h.get_json("/actions/runs?status=in_progress").await;
    assert_eq!(ids(&in_progress), [running]);
    let recent = h.get_json("/actions/runs?created=%3E%3D2024-04-30").await;
    assert_eq!(recent["total_count"], 3);
    let range = h.get_json("/actions/runs?created=2024-04-28..2024-04-30").await;
    assert_eq!(range["total_count"], 2);
    assert_eq!(h.get_json("/actions/runs?event=workflow_dispatch").await["total_count"], 0);
    assert_eq!(h.get("/actions/runs?created=yesterday").await.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn pagination_sends_githubs_link_header() {
    let h = Harness::new().await;
    for day in 1..=5 {
        h.completed("main", Conclusion::Success, &format!("2024-04-0{day}T10:00:00Z"));
    }
    let res = h.get("/actions/runs?per_page=2").await;
    let link = res.headers()["link"].to_str().unwrap().to_owned();
    let base = h.url("/actions/runs");
    assert_eq!(link, format!(r#"<{base}?per_page=2&page=2>; rel="next", <{base}?per_page=2&page=3>; rel="last""#));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["total_count"], 5);
    assert_eq!(body["workflow_runs"].as_array().unwrap().len(), 2);

    let middle = h.get("/actions/runs?per_page=2&page=2").await;
    let link = middle.headers()["link"].to_str().unwrap();
    assert!(link.contains(r#"page=1>; rel="prev""#), "{link}");
    assert!(link.contains(r#"page=3>; rel="next""#), "{link}");
    assert!(link.contains(r#"rel="first""#), "{link}");

    let last: Value = h.get_json("/actions/runs?per_page=2&page=3").await;
    assert_eq!(last["workflow_runs"].as_array().unwrap().len(), 1);
    let single = h.get("/actions/runs").await;
    assert!(single.headers().get("link").is_none(), "one page needs no Link");
}

#[tokio::test]
async fn dispatch_creates_a_queued_run_and_validates_like_github() {
    let h = Harness::new().await;
    let deploy = h.github.add_workflow(REPO, "Deploy", ".github/workflows/deploy.yml");
    h.github.declare_inputs(deploy, &["environment"]);
    h.github.set_jobs(deploy, &["deploy", "smoke"]);
    let release = h.github.add_branch(REPO, "release/1.4");

    let ok = h
        .post(
            "/actions/workflows/deploy.yml/dispatches",
            json!({"ref": "release/1.4", "inputs": {"environment": "staging"}}),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    let run = &h.github.runs(REPO)[0];
    assert_eq!(run.status, Status::Queued);
    assert_eq!(run.event, "workflow_dispatch");
    assert_eq!(run.head_branch, "release/1.4");
    assert_eq!(run.head_sha, release);
    assert_eq!(run.actor, opsbot_fake_github::TOKEN_LOGIN);
    assert_eq!(run.created_at, at("2024-05-02T12:00:00Z"), "stamped by the test clock");
    let jobs = h.get_json(&format!("/actions/runs/{}/jobs", run.id)).await;
    assert_eq!(jobs["jobs"][1]["name"], "smoke");
    assert_eq!(jobs["jobs"][1]["status"], "queued");

    let by_id = h.post(&format!("/actions/workflows/{deploy}/dispatches"), json!({"ref": "refs/heads/main"})).await;
    assert_eq!(by_id.status(), StatusCode::NO_CONTENT);

    let cases = [
        (json!({"ref": "nope"}), "No ref found for: nope"),
        (json!({"inputs": {}}), "Invalid request.\n\n\"ref\" wasn't supplied."),
        (
            json!({"ref": "main", "inputs": {"version": "1", "force": true}}),
            r#"Unexpected inputs provided: ["force","version"]"#,
        ),
    ];
    for (body, expected) in cases {
        let res = h.post("/actions/workflows/deploy.yml/dispatches", body).await;
        assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(message(res).await, expected);
    }
    h.github.set_dispatchable(deploy, false);
    let res = h.post("/actions/workflows/deploy.yml/dispatches", json!({"ref": "main"})).await;
    assert_eq!(message(res).await, "Workflow does not have 'workflow_dispatch' trigger");
    let res = h.post("/actions/workflows/nope.yml/dispatches", json!({"ref": "main"})).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(h.github.runs(REPO).len(), 2);
    assert_eq!(h.github.calls(endpoint::DISPATCH), 7);
}

#[tokio::test]
async fn rerun_failed_jobs_starts_a_new_attempt_of_the_failed_jobs_only() {
    let h = Harness::new().await;
    let id = h.github.add_run(
        REPO,
        h.ci,
        RunSpec::completed("main", Conclusion::Failure, at("2024-05-01T09:00:00Z"), Duration::from_secs(300))
            .job("build", Some(Conclusion::Success))
            .job("test", Some(Conclusion::Failure))
            .job("lint", Some(Conclusion::Cancelled)),
    );
    let mut changes = h.github.subscribe();
    let res = h.post(&format!("/actions/runs/{id}/rerun-failed-jobs"), json!({})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(changes.recv().await.unwrap(), Change::RunRerun { run_id: id, attempt: 2 });

    let run = h.get_json(&format!("/actions/runs/{id}")).await;
    assert_eq!(run["run_attempt"], 2);
    assert_eq!(run["status"], "queued", "the new attempt waits for a runner");
    assert_eq!(run["conclusion"], Value::Null);
    assert_eq!(run["run_started_at"], "2024-05-02T12:00:00Z");
    assert_eq!(
        run["previous_attempt_url"],
        format!("https://api.github.com/repos/{REPO}/actions/runs/{id}/attempts/1")
    );
    let latest = h.get_json(&format!("/actions/runs/{id}/jobs")).await;
    let summary: Vec<(String, u64, String)> = latest["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["name"].as_str().unwrap().to_owned(),
                j["run_attempt"].as_u64().unwrap(),
                j["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("build".into(), 1, "completed".into()),
            ("test".into(), 2, "queued".into()),
            ("lint".into(), 2, "queued".into())
        ]
    );
    assert_eq!(h.get_json(&format!("/actions/runs/{id}/jobs?filter=all")).await["total_count"], 5);

    // Neither a queued nor a running attempt can be re-run.
    let again = h.post(&format!("/actions/runs/{id}/rerun-failed-jobs"), json!({})).await;
    assert_eq!(again.status(), StatusCode::FORBIDDEN);
    assert_eq!(message(again).await, "This workflow is already running");
    assert!(h.github.start_run(id));
    assert_eq!(h.get_json(&format!("/actions/runs/{id}")).await["status"], "in_progress");
    let running = h.post(&format!("/actions/runs/{id}/rerun-failed-jobs"), json!({})).await;
    assert_eq!(running.status(), StatusCode::FORBIDDEN);
    assert_eq!(message(running).await, "This workflow is already running");

    h.github.advance(Duration::from_secs(120));
    assert!(h.github.complete_run(id, Conclusion::Success));
    assert!(!h.github.complete_run(id, Conclusion::Success), "already completed");
    let run = h.github.run(id).unwrap();
    assert_eq!(run.updated_at, at("2024-05-02T12:02:00Z"));
    let green = h.completed("main", Conclusion::Success, "2024-05-01T10:00:00Z");
    let nothing = h.post(&format!("/actions/runs/{green}/rerun-failed-jobs"), json!({})).await;
    assert_eq!(nothing.status(), StatusCode::FORBIDDEN);
    let old = h.completed("main", Conclusion::Failure, "2024-04-01T10:00:00Z");
    let too_old = h.post(&format!("/actions/runs/{old}/rerun-failed-jobs"), json!({})).await;
    assert_eq!(too_old.status(), StatusCode::FORBIDDEN);
    assert_eq!(message(too_old).await, "Unable to retry this workflow run because it was created over a month ago");
}

#[tokio::test]
async fn a_completed_re_run_is_reported_with_its_attempt() {
    let h = Harness::new().await;
    let (url, received) = receiver().await;
    h.github.deliver_to(&url, "s3cret");
    let spec = RunSpec::completed("main", Conclusion::Failure, at("2024-05-02T11:00:00Z"), Duration::from_secs(300))
        .job("build", Some(Conclusion::Success))
        .job("test", Some(Conclusion::Failure));
    let id = h.github.add_run(REPO, h.ci, spec);
    assert_eq!(h.post(&format!("/actions/runs/{id}/rerun-failed-jobs"), json!({})).await.status(), StatusCode::CREATED);
    assert!(h.github.start_run(id));
    h.github.advance(Duration::from_secs(90));
    assert!(h.github.complete_run(id, Conclusion::Success));

    // The start is reported too (`in_progress`), then the end.
    let delivered = h
        .github
        .wait_for(Duration::from_secs(5), |g| {
            let all = g.deliveries();
            (all.len() == 2 && all.iter().all(|d| d.status.is_some())).then_some(all)
        })
        .await
        .expect("both delivered");
    // Each delivery goes out on its own, so they are answered in any order.
    let mut actions: Vec<&str> = delivered.iter().map(|d| d.action.as_str()).collect();
    actions.sort();
    assert_eq!(actions, ["completed", "in_progress"]);
    assert!(delivered.iter().all(|d| d.status == Some(204)));
    let received = received.0.lock().unwrap().clone();
    let (headers, body) = received
        .iter()
        .find(|(_, body)| serde_json::from_slice::<Value>(body).unwrap()["action"] == "completed")
        .expect("the completed delivery")
        .clone();
    assert_eq!(headers["x-hub-signature-256"], opsbot_fake_github::signature("s3cret", &body).as_str());
    let payload: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(payload["workflow_run"]["run_attempt"], 2);
    assert_eq!(payload["workflow_run"]["conclusion"], "success");
    assert_eq!(payload["workflow_run"]["run_started_at"], "2024-05-02T12:00:00Z");
    assert_eq!(payload["workflow_run"]["updated_at"], "2024-05-02T12:01:30Z");
    let jobs = h.get_json(&format!("/actions/runs/{id}/jobs")).await;
    assert_eq!(jobs["jobs"][1]["conclusion"], "success");
    assert_eq!(jobs["jobs"][0]["run_attempt"], 1, "the passing job was not re-run");
}

#[tokio::test]
async fn every_answer_carries_rate_limit_headers_and_the_budget_runs_out() {
    let h = Harness::new().await;
    h.github.set_rate_limit(3);
    let first = h.get("/actions/workflows").await;
    let headers = first.headers();
    assert_eq!(headers["x-ratelimit-limit"], "3");
    assert_eq!(headers["x-ratelimit-remaining"], "2");
    assert_eq!(headers["x-ratelimit-used"], "1");
    assert_eq!(headers["x-ratelimit-resource"], "core");
    let reset: i64 = headers["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    assert_eq!(reset, at("2024-05-02T13:00:00Z").timestamp());

    assert_eq!(h.get("/actions/workflows/ci.yml").await.status(), StatusCode::OK);
    let not_found = h.get("/actions/runs/1").await;
    assert_eq!(not_found.status(), StatusCode::NOT_FOUND, "errors spend the budget too");
    assert_eq!(not_found.headers()["x-ratelimit-remaining"], "0");

    let exhausted = h.get("/actions/workflows").await;
    assert_eq!(exhausted.status(), StatusCode::FORBIDDEN);
    assert_eq!(exhausted.headers()["x-ratelimit-remaining"], "0");
    assert!(message(exhausted).await.starts_with("API rate limit exceeded for user ID"));

    // /rate_limit is free and still answers.
    let limits =
        h.http.get(format!("{}/rate_limit", h.server.api_url)).bearer_auth(DEFAULT_TOKEN).send().await.unwrap();
    assert_eq!(limits.status(), StatusCode::OK);
    let body: Value = limits.json().await.unwrap();
    assert_eq!(body["resources"]["core"]["remaining"], 0);
    assert_eq!(body["rate"]["used"], 3);

    h.github.reset();
    assert_eq!(h.github.rate_limit_remaining(), 3);
    assert_eq!(h.get("/actions/workflows").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn scripted_failures_and_outages_look_like_githubs() {
    let h = Harness::new().await;
    h.github.fail_next(endpoint::LIST_WORKFLOWS, Failure::SecondaryRateLimit { retry_after_secs: 60 });
    h.github.fail_next(endpoint::LIST_WORKFLOWS, Failure::ServerError);
    h.github.fail_next(endpoint::LIST_WORKFLOWS, Failure::NotFound);
    h.github.fail_next(endpoint::LIST_WORKFLOWS, Failure::HttpStatus(502));

    let secondary = h.get("/actions/workflows").await;
    assert_eq!(secondary.status(), StatusCode::FORBIDDEN);
    assert_eq!(secondary.headers()["retry-after"], "60");
    assert_eq!(secondary.headers()["x-ratelimit-remaining"], "5000", "the primary budget is not the problem");
    assert!(message(secondary).await.starts_with("You have exceeded a secondary rate limit."));
    let server_error = h.get("/actions/workflows").await;
    assert_eq!(server_error.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(message(server_error).await, "Server Error");
    assert_eq!(h.get("/actions/workflows").await.status(), StatusCode::NOT_FOUND);
    let proxy = h.get("/actions/workflows").await;
    assert_eq!(proxy.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(proxy.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(h.get("/actions/workflows").await.status(), StatusCode::OK);

    h.github.fail_next(endpoint::LIST_WORKFLOWS, Failure::ServerError);
    h.github.set_unavailable(true);
    assert_eq!(h.get("/actions/workflows").await.status(), StatusCode::SERVICE_UNAVAILABLE);
    h.github.set_unavailable(false);
    assert_eq!(h.get("/actions/workflows").await.status(), StatusCode::INTERNAL_SERVER_ERROR, "kept for later");
    assert_eq!(h.github.calls(endpoint::LIST_WORKFLOWS), 7);
}

#[tokio::test]
async fn the_router_nests_under_a_prefix_and_links_follow_it() {
    let github = FakeGitHub::new();
    github.add_repo(REPO, "main");
    let ci = github.add_workflow(REPO, "CI", ".github/workflows/ci.yml");
    for hour in 0..3 {
        let started = at("2024-05-01T00:00:00Z") + chrono::TimeDelta::hours(hour);
        github.add_run(REPO, ci, RunSpec::completed("main", Conclusion::Success, started, Duration::from_secs(60)));
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().nest("/sandbox/github", github.router());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{addr}/sandbox/github/repos/{REPO}/actions/runs?per_page=1");
    let res = reqwest::Client::new().get(&url).bearer_auth(DEFAULT_TOKEN).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let link = res.headers()["link"].to_str().unwrap();
    assert!(link.starts_with(&format!("<http://{addr}/sandbox/github/repos/{REPO}/actions/runs?")), "{link}");
}

/// What the webhook receiver in the test got.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(HeaderMap, Bytes)>>>);

async fn receiver() -> (String, Received) {
    let received = Received::default();
    let store = received.clone();
    let app = axum::Router::new().route(
        "/github/webhook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let store = store.clone();
            async move {
                store.0.lock().unwrap().push((headers, body));
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/github/webhook"), received)
}

#[tokio::test]
async fn completing_a_run_delivers_a_signed_workflow_run_event() {
    let h = Harness::new().await;
    let (url, received) = receiver().await;
    let secret = "It's a Secret to Everybody";
    h.github.deliver_to(&url, secret);
    let seeded = h.completed("main", Conclusion::Success, "2024-05-01T09:00:00Z");
    let run = h.github.add_run(REPO, h.ci, RunSpec::in_progress("main", at("2024-05-02T11:58:00Z")).actor("bob"));
    assert!(h.github.complete_run(run, Conclusion::Failure));

    let delivery =
        h.github.wait_for(Duration::from_secs(5), |g| g.deliveries().into_iter().next()).await.expect("a delivery");
    assert_eq!(delivery.status, Some(204), "{delivery:?}");
    assert_eq!(
        (delivery.event.as_str(), delivery.action.as_str(), delivery.run_id),
        ("workflow_run", "completed", run)
    );

    let got = received.0.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "seeded history sends nothing, run {seeded}");
    let (headers, body) = &got[0];
    assert_eq!(headers["x-github-event"], "workflow_run");
    assert_eq!(headers["x-github-delivery"], delivery.id.as_str());
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers["user-agent"].to_str().unwrap().starts_with("GitHub-Hookshot/"));
    assert!(headers.contains_key("x-github-hook-id"));
    let id = delivery.id.as_str();
    assert_eq!(id.len(), 36);
    assert_eq!(id.split('-').map(str::len).collect::<Vec<_>>(), [8, 4, 4, 4, 12]);

    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(headers["x-hub-signature-256"], expected.as_str());

    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(payload["action"], "completed");
    assert_eq!(payload["workflow_run"]["id"], run);
    assert_eq!(payload["workflow_run"]["conclusion"], "failure");
    assert_eq!(payload["workflow_run"]["status"], "completed");
    assert_eq!(payload["workflow_run"]["updated_at"], "2024-05-02T12:00:00Z");
    assert_eq!(payload["workflow_run"]["actor"]["login"], "bob");
    assert_eq!(payload["workflow"]["path"], ".github/workflows/ci.yml");
    assert_eq!(payload["repository"]["full_name"], REPO);
    assert_eq!(payload["repository"]["default_branch"], "main");
    assert_eq!(payload["sender"]["login"], "bob");
}

#[test]
fn signature_matches_githubs_test_vector() {
    // From GitHub's "Validating webhook deliveries" docs
    // (/work/shared/fixtures/github/signature_test_vector.json).
    assert_eq!(
        opsbot_fake_github::signature("It's a Secret to Everybody", b"Hello, World!"),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    );
}

#[tokio::test]
async fn an_unreachable_receiver_is_recorded_not_retried() {
    let h = Harness::new().await;
    // A port nothing listens on: bind, note it, close it.
    let addr = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap().local_addr().unwrap();
    h.github.deliver_to(&format!("http://{addr}/hook"), "s");
    let run = h.github.add_run(REPO, h.ci, RunSpec::in_progress("main", at("2024-05-02T11:00:00Z")));
    h.github.complete_run(run, Conclusion::Success);
    let delivery =
        h.github.wait_for(Duration::from_secs(5), |g| g.deliveries().into_iter().next()).await.expect("recorded");
    assert_eq!(delivery.status, None);
    assert!(delivery.error.is_some());
}

#[test]
fn a_clock_running_ahead_keeps_running_and_moves_further_when_pushed() {
    let github = FakeGitHub::new();
    github.run_ahead(chrono::TimeDelta::hours(2));
    let ahead = github.now() - Utc::now();
    assert!((chrono::TimeDelta::minutes(119)..=chrono::TimeDelta::hours(2)).contains(&ahead), "{ahead}");
    let before = github.now();
    std::thread::sleep(Duration::from_millis(20));
    assert!(github.now() > before, "time passes on a clock running ahead");

    github.advance(Duration::from_secs(30 * 60));
    let ahead = github.now() - Utc::now();
    assert!((chrono::TimeDelta::minutes(149)..=chrono::TimeDelta::minutes(150)).contains(&ahead), "{ahead}");

    github.set_now(at("2024-05-02T12:00:00Z"));
    github.advance(Duration::from_secs(60));
    assert_eq!(github.now(), at("2024-05-02T12:01:00Z"), "a frozen clock stays frozen");
}

#[tokio::test]
async fn compare_walks_the_history_of_branches_tags_and_shas() {
    let h = Harness::new().await;
    let root = h.github.commit(REPO, "main").expect("the first commit").sha;
    let release = h.github.add_branch(REPO, "release/1.4");
    assert_eq!(release, root, "a new branch starts at the default branch's head");
    let fix = h.github.add_commit(REPO, "release/1.4", "Hotfix totals", "alice");
    let feature = h.github.add_commit(REPO, "main", "Add wishlists", "bob");
    h.github.add_tag(REPO, "v1.4.0", &root);

    let diverged = h.get_json("/compare/release/1.4...main").await;
    assert_eq!(diverged["status"], "diverged");
    assert_eq!((diverged["ahead_by"].as_u64(), diverged["behind_by"].as_u64()), (Some(1), Some(1)));
    assert_eq!(diverged["commits"][0]["sha"], feature.as_str());
    assert_eq!(diverged["merge_base_commit"]["sha"], root.as_str());
    assert_eq!(diverged["base_commit"]["sha"], fix.as_str());

    let identical = h.get_json(&format!("/compare/refs/tags/v1.4.0...{root}")).await;
    assert_eq!(identical["status"], "identical");
    assert_eq!(identical["total_commits"], 0);
    let own_owner = h.get_json("/compare/octo-org:v1.4.0...octo-org:refs/heads/main").await;
    assert_eq!(own_owner["status"], "ahead");

    for missing in ["/compare/v1.4.0...nope", "/compare/v1.4.0..main", "/compare/someone-else:main...main"] {
        let res = h.get(missing).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(message(res).await, "Not Found");
    }

    let commit = h.get_json(&format!("/commits/{}", &fix[..10])).await;
    assert_eq!(commit["sha"], fix.as_str());
    assert_eq!(commit["commit"]["message"], "Hotfix totals");
    assert_eq!(commit["commit"]["author"]["date"], "2024-05-02T12:00:00Z");
    assert_eq!(commit["author"]["login"], "alice");
    assert_eq!(commit["parents"][0]["sha"], root.as_str());
    assert_eq!(commit["stats"]["total"], 0);
    assert_eq!(h.get_json("/commits/refs/heads/release/1.4").await["sha"], fix.as_str());

    // An unknown ref is a validation error on this endpoint, not a 404.
    let unknown = h.get("/commits/deadbeefcafe").await;
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(message(unknown).await, "No commit found for SHA: deadbeefcafe");
    let nope = h.http.get(format!("{}/repos/octo-org/nope/commits/main", h.server.api_url));
    assert_eq!(nope.bearer_auth(DEFAULT_TOKEN).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn compare_pages_its_commits_and_caps_an_unpaged_list_at_250() {
    let h = Harness::new().await;
    let base = h.github.add_commit(REPO, "main", "Release 1.0", "alice");
    let shas: Vec<String> =
        (0..251).map(|i| h.github.add_commit(REPO, "main", &format!("Change {i}"), "bob")).collect();

    let unpaged = h.get_json(&format!("/compare/{base}...main")).await;
    assert_eq!(unpaged["total_commits"], 251);
    let listed = unpaged["commits"].as_array().unwrap();
    assert_eq!(listed.len(), 250);
    assert_eq!(listed[0]["sha"], shas[1].as_str(), "the newest 250, oldest first");
    assert_eq!(listed[249]["sha"], shas[250].as_str());

    let res = h.get(&format!("/compare/{base}...main?per_page=100&page=3")).await;
    let link = res.headers()["link"].to_str().unwrap().to_owned();
    assert!(link.contains(r#"page=2>; rel="prev""#), "{link}");
    let page: Value = res.json().await.unwrap();
    assert_eq!(page["commits"].as_array().unwrap().len(), 51);
    assert_eq!(page["commits"][0]["sha"], shas[200].as_str());
    assert_eq!(page["ahead_by"], 251);
}

#[tokio::test]
async fn the_repository_answers_in_full() {
    let h = Harness::new().await;
    let repo = h.get_json("").await;
    assert_eq!(repo["full_name"], REPO);
    assert_eq!(repo["default_branch"], "main");
    assert_eq!(repo["html_url"], format!("https://github.com/{REPO}"));
    assert_eq!(repo["owner"]["login"], "octo-org");
    assert_eq!(repo["private"], true);
    assert_eq!(repo["permissions"]["push"], true);
    h.github.fail_next(endpoint::GET_REPO, Failure::SecondaryRateLimit { retry_after_secs: 30 });
    h.github.fail_next(endpoint::COMPARE, Failure::HttpStatus(502));
    h.github.fail_next(endpoint::GET_COMMIT, Failure::ServerError);
    assert_eq!(h.get("").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(h.get("/compare/main...main").await.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(h.get("/commits/main").await.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(h.get("/compare/main...main").await.status(), StatusCode::OK);
    assert_eq!(
        (h.github.calls(endpoint::GET_REPO), h.github.calls(endpoint::COMPARE), h.github.calls(endpoint::GET_COMMIT)),
        (2, 2, 1)
    );
}

#[tokio::test]
async fn deployment_statuses_validate_move_environments_and_retire_older_deploys() {
    let h = Harness::new().await;
    let mut changes = h.github.subscribe();
    let create = |environment: &str| json!({"ref": "main", "environment": environment, "payload": "{\"id\": 7}"});
    let first = h.post("/deployments", create("review-app")).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["payload"]["id"], 7, "a string payload is JSON");
    assert_eq!(first["task"], "deploy");
    assert_eq!(first["original_environment"], "review-app");
    let first_id = first["id"].as_u64().unwrap();
    assert_eq!(changes.recv().await.unwrap(), Change::DeploymentCreated { deployment_id: first_id });

    let statuses = |id: u64| format!("/deployments/{id}/statuses");
    let ok = h.post(&statuses(first_id), json!({"state": "success"})).await;
    assert_eq!(ok.status(), StatusCode::CREATED);
    let second: Value = h.post("/deployments", create("review-app")).await.json().await.unwrap();
    let second_id = second["id"].as_u64().unwrap();
    assert_eq!(h.post(&statuses(second_id), json!({"state": "success"})).await.status(), StatusCode::CREATED);
    // auto_inactive: the older successful deploy to that environment retires.
    let older = h.get_json(&statuses(first_id)).await;
    assert_eq!(older[0]["state"], "inactive");
    assert_eq!(older[1]["state"], "success");

    // A status may move the deployment to another environment.
    let moved = h.post(&statuses(second_id), json!({"state": "in_progress", "environment": "qa"})).await;
    assert_eq!(moved.status(), StatusCode::CREATED);
    let deployment = h.get_json(&format!("/deployments/{second_id}")).await;
    assert_eq!(
        (deployment["environment"].as_str(), deployment["original_environment"].as_str()),
        (Some("qa"), Some("review-app"))
    );
    let qa: Value = h.get_json("/deployments?environment=qa").await;
    assert_eq!(qa.as_array().unwrap().len(), 1);

    let bad = h.post(&statuses(second_id), json!({"state": "done"})).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(bad).await.contains(r#""done" is not a member of"#));
    let missing = h.post(&statuses(second_id), json!({})).await;
    assert_eq!(message(missing).await, "Invalid request.\n\n\"state\" wasn't supplied.");
    assert_eq!(h.post(&statuses(42), json!({"state": "success"})).await.status(), StatusCode::NOT_FOUND);
    let no_ref = h.post("/deployments", json!({"ref": "nope"})).await;
    assert_eq!(no_ref.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(message(no_ref).await, "No ref found for: nope");

    // Another repository's deployment is not found through this one.
    h.github.add_repo("octo-org/other", "main");
    let other = h.http.get(format!("{}/repos/octo-org/other/deployments/{first_id}", h.server.api_url));
    assert_eq!(other.bearer_auth(DEFAULT_TOKEN).send().await.unwrap().status(), StatusCode::NOT_FOUND);

    h.github.fail_next(endpoint::CREATE_DEPLOYMENT, Failure::ServerError);
    h.github.fail_next(endpoint::GET_DEPLOYMENT, Failure::NotFound);
    assert_eq!(h.post("/deployments", create("x")).await.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(h.get(&format!("/deployments/{first_id}")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(h.github.deployments(REPO).len(), 2);
}

#[tokio::test]
async fn dispatch_can_name_its_run_and_takes_tags() {
    let h = Harness::new().await;
    let deploy = h.github.add_workflow(REPO, "Deploy", ".github/workflows/deploy.yml");
    h.github.set_inputs(deploy, vec![Input::required("opsbot_id"), Input::required("environment").default("staging")]);
    h.github.set_run_name(deploy, "Deploy {opsbot_id} ({environment})");
    let tagged = h.github.add_commit(REPO, "main", "Release 1.4.2", "alice");
    h.github.add_tag(REPO, "v1.4.2", "main");
    h.github.add_commit(REPO, "main", "Next", "bob");

    let res = h
        .post(
            "/actions/workflows/deploy.yml/dispatches",
            json!({"ref": "refs/tags/v1.4.2", "inputs": {"opsbot_id": "DEP-9"}, "return_run_details": true}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "return_run_details asks for a body");
    let details: Value = res.json().await.unwrap();
    let id = details["workflow_run_id"].as_u64().expect("run id");
    assert_eq!(details["run_url"], format!("https://api.github.com/repos/{REPO}/actions/runs/{id}"));
    assert_eq!(details["html_url"], format!("https://github.com/{REPO}/actions/runs/{id}"));
    let run = h.github.run(id).unwrap();
    assert_eq!(run.display_title, "Deploy DEP-9 (staging)", "the default fills the title");
    assert_eq!((run.head_branch.as_str(), run.head_sha.as_str()), ("v1.4.2", tagged.as_str()));
    assert_eq!(run.inputs.len(), 1, "inputs are kept as sent");

    let plain =
        h.post("/actions/workflows/deploy.yml/dispatches", json!({"ref": "main", "inputs": {"opsbot_id": "x"}}));
    assert_eq!(plain.await.status(), StatusCode::NO_CONTENT);
    let bad = h.post("/actions/workflows/deploy.yml/dispatches", json!({"ref": "main", "return_run_details": "yes"}));
    assert_eq!(
        message(bad.await).await,
        "Invalid request.\n\nFor 'properties/return_run_details', \"yes\" is not a boolean."
    );
    assert_eq!(h.github.runs(REPO).len(), 2);
}

/// Every endpoint added for `/pipeline`, as (method, path, endpoint name);
/// paths starting with `/app` are absolute, the others under the repository.
fn pipeline_endpoints(deployment: u64) -> Vec<(&'static str, String, &'static str)> {
    vec![
        ("GET", String::new(), endpoint::GET_REPO),
        ("GET", "/commits/main".into(), endpoint::GET_COMMIT),
        ("GET", "/compare/main...main".into(), endpoint::COMPARE),
        ("GET", format!("/deployments/{deployment}"), endpoint::GET_DEPLOYMENT),
        ("POST", "/deployments".into(), endpoint::CREATE_DEPLOYMENT),
        ("GET", format!("/deployments/{deployment}/statuses"), endpoint::LIST_DEPLOYMENT_STATUSES),
        ("POST", format!("/deployments/{deployment}/statuses"), endpoint::CREATE_DEPLOYMENT_STATUS),
        ("GET", "/installation".into(), endpoint::GET_REPO_INSTALLATION),
        ("GET", "/app/installations/1".into(), endpoint::GET_INSTALLATION),
        ("POST", "/app/installations/1/access_tokens".into(), endpoint::CREATE_INSTALLATION_TOKEN),
    ]
}

#[tokio::test]
async fn scripted_failures_and_the_rate_limit_apply_to_every_new_endpoint() {
    let h = Harness::new().await;
    let deployment = h.github.add_deployment(
        REPO,
        opsbot_fake_github::DeploymentSpec {
            environment: "production".into(),
            git_ref: "main".into(),
            sha: h.github.commit(REPO, "main").unwrap().sha,
            creator: "alice".into(),
            created_at: at("2024-05-02T11:00:00Z"),
            statuses: vec!["success".into()],
        },
    );
    let send = |method: &str, path: &str| {
        let url = if path.starts_with("/app") { format!("{}{path}", h.server.api_url) } else { h.url(path) };
        let request = if method == "POST" {
            h.http.post(url).json(&json!({"ref": "main", "state": "success"}))
        } else {
            h.http.get(url)
        };
        request.bearer_auth(DEFAULT_TOKEN).send()
    };
    for (method, path, name) in pipeline_endpoints(deployment) {
        h.github.fail_next(name, Failure::SecondaryRateLimit { retry_after_secs: 7 });
        h.github.fail_next(name, Failure::ServerError);
        h.github.fail_next(name, Failure::NotFound);
        h.github.fail_next(name, Failure::HttpStatus(503));
        let secondary = send(method, &path).await.unwrap();
        assert_eq!(secondary.status(), StatusCode::FORBIDDEN, "{name}");
        assert_eq!(secondary.headers()["retry-after"], "7", "{name}");
        assert_eq!(send(method, &path).await.unwrap().status(), StatusCode::INTERNAL_SERVER_ERROR, "{name}");
        assert_eq!(send(method, &path).await.unwrap().status(), StatusCode::NOT_FOUND, "{name}");
        assert_eq!(send(method, &path).await.unwrap().status(), StatusCode::SERVICE_UNAVAILABLE, "{name}");
        assert_eq!(h.github.calls(name), 4, "{name}");
    }

    // The primary budget runs out for all of them (the App endpoints refuse
    // a personal token before it counts; see the App tests).
    h.github.set_rate_limit(0);
    let repository_endpoints = pipeline_endpoints(deployment)
        .into_iter()
        .filter(|(_, path, name)| *name != endpoint::GET_REPO_INSTALLATION && !path.starts_with("/app"));
    for (method, path, name) in repository_endpoints {
        let res = send(method, &path).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{name}");
        assert_eq!(res.headers()["x-ratelimit-remaining"], "0", "{name}");
        let reset: i64 = res.headers()["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
        assert_eq!(reset, at("2024-05-02T13:00:00Z").timestamp(), "{name}");
        assert!(message(res).await.starts_with("API rate limit exceeded for user ID"), "{name}");
    }
}
