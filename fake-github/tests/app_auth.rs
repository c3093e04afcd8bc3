//! GitHub App authentication against the fake: octocrab as an App finds the
//! repository's installation, mints an installation token and uses it, and
//! mints another when the first expires; JWTs and tokens GitHub would refuse
//! are refused in GitHub's words.

use std::sync::LazyLock;

use chrono::Utc;
use octocrab::jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use octocrab::models::{AppId, InstallationId};
use octocrab::Octocrab;
use opsbot_fake_github::{endpoint, FakeGitHub, SpawnedFake, DEFAULT_TOKEN};
use reqwest::StatusCode;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{json, Value};

const REPO: &str = "octo-org/shop";
const APP_ID: u64 = 1_200_001;

/// The App's key pair as PEM (private PKCS#1, public SPKI). Generating an
/// RSA key takes seconds in a debug build, so the tests share one.
static KEYS: LazyLock<(String, String)> = LazyLock::new(|| {
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("generate RSA key");
    let private = key.to_pkcs1_pem(LineEnding::LF).expect("private PEM").to_string();
    let public = key.to_public_key().to_public_key_pem(LineEnding::LF).expect("public PEM");
    (private, public)
});

struct Harness {
    github: FakeGitHub,
    server: SpawnedFake,
    installation: u64,
}

async fn harness() -> Harness {
    let github = FakeGitHub::new();
    github.add_repo(REPO, "main");
    github.add_repo("octo-org/billing", "main");
    github.add_repo("someone-else/shop", "main");
    let ci = github.add_workflow(REPO, "Deploy", ".github/workflows/deploy.yml");
    github.declare_inputs(ci, &["opsbot_id"]);
    github.add_app(APP_ID, "opsbot", &KEYS.1);
    let installation = github.install_app(APP_ID, "octo-org");
    let server = github.spawn().await.expect("spawn fake");
    Harness { github, server, installation }
}

fn app_client(server: &SpawnedFake) -> Octocrab {
    let key = EncodingKey::from_rsa_pem(KEYS.0.as_bytes()).expect("octocrab reads the key");
    Octocrab::builder()
        .base_uri(server.api_url.as_str())
        .expect("base uri")
        .app(AppId(APP_ID), key)
        .build()
        .expect("octocrab as an App")
}

/// A JWT signed with the App's key, with whatever claims a test wants.
fn jwt(claims: Value) -> String {
    let key = EncodingKey::from_rsa_pem(KEYS.0.as_bytes()).expect("key");
    encode(&Header::new(Algorithm::RS256), &claims, &key).expect("sign JWT")
}

fn now() -> i64 {
    Utc::now().timestamp()
}

async fn message(res: reqwest::Response) -> String {
    let body: Value = res.json().await.expect("json error body");
    body["message"].as_str().expect("message").to_owned()
}

#[tokio::test]
async fn octocrab_authenticates_as_an_app_installation() {
    let h = harness().await;
    let app = app_client(&h.server);
    let installation = app.apps().get_repository_installation("octo-org", "shop").await.expect("installation");
    assert_eq!(installation.id.0, h.installation);
    assert_eq!(installation.app_id.map(|a| a.0), Some(APP_ID));
    assert_eq!(installation.account.login, "octo-org");

    let client = app.installation(InstallationId(h.installation)).expect("installation client");
    let repo = client.repos("octo-org", "shop").get().await.expect("repository with an installation token");
    assert_eq!(repo.default_branch.as_deref(), Some("main"));
    client
        .actions()
        .create_workflow_dispatch("octo-org", "shop", "deploy.yml", "main")
        .inputs(json!({"opsbot_id": "DEP-1"}))
        .send()
        .await
        .expect("dispatch as the App");
    assert_eq!(h.github.runs(REPO)[0].actor, "opsbot[bot]");
    assert_eq!(h.github.calls(endpoint::CREATE_INSTALLATION_TOKEN), 1, "the token is minted once and reused");

    // An hour later the token is refused; octocrab mints another and retries.
    h.github.expire_installation_tokens();
    let again = client.repos("octo-org", "shop").get().await.expect("after the token expired");
    assert_eq!(again.full_name.as_deref(), Some(REPO));
    assert_eq!(h.github.calls(endpoint::CREATE_INSTALLATION_TOKEN), 2);
    assert_eq!(h.github.calls(endpoint::GET_REPO), 3, "one refused, two answered");

    // The installation covers octo-org only.
    let err = client.repos("someone-else", "shop").get().await.expect_err("another account");
    let octocrab::Error::GitHub { source, .. } = err else { panic!("not a GitHub error: {err:?}") };
    assert_eq!(source.status_code, 404);
}

#[tokio::test]
async fn tokens_expire_in_an_hour_and_can_be_narrowed_to_some_repositories() {
    let h = harness().await;
    let http = reqwest::Client::new();
    let api = &h.server.api_url;
    let mint = |body: Value| {
        let claims = json!({"iat": now() - 60, "exp": now() + 540, "iss": APP_ID});
        http.post(format!("{api}/app/installations/{}/access_tokens", h.installation))
            .bearer_auth(jwt(claims))
            .json(&body)
            .send()
    };
    let res = mint(json!({"repositories": ["shop"]})).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let minted: Value = res.json().await.unwrap();
    let token = minted["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("ghs_"), "{token}");
    let expires: chrono::DateTime<Utc> = minted["expires_at"].as_str().unwrap().parse().unwrap();
    let lifetime = expires - Utc::now();
    assert!(lifetime > chrono::TimeDelta::minutes(59) && lifetime <= chrono::TimeDelta::hours(1), "{lifetime}");
    assert_eq!(minted["repository_selection"], "selected");
    assert_eq!(minted["repositories"][0]["full_name"], REPO);

    let get = |path: &str, token: &str| http.get(format!("{api}/repos/{path}")).bearer_auth(token).send();
    assert_eq!(get(REPO, &token).await.unwrap().status(), StatusCode::OK);
    assert_eq!(get("octo-org/billing", &token).await.unwrap().status(), StatusCode::NOT_FOUND, "outside the scope");

    let outside = mint(json!({"repositories": ["shop", "nope"]})).await.unwrap();
    assert_eq!(outside.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        message(outside).await,
        "There is at least one repository that does not exist or is not accessible to the parent installation."
    );

    h.github.expire_installation_tokens();
    let expired = get(REPO, &token).await.unwrap();
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(message(expired).await, "Bad credentials");

    // Installed on some repositories of an account, the App finds an
    // installation for those only.
    let claims = json!({"iat": now() - 60, "exp": now() + 540, "iss": APP_ID});
    let lookup =
        |repo: &str| http.get(format!("{api}/repos/{repo}/installation")).bearer_auth(jwt(claims.clone())).send();
    assert_eq!(lookup("someone-else/shop").await.unwrap().status(), StatusCode::NOT_FOUND);
    h.github.add_repo("someone-else/blog", "main");
    let selected = h.github.install_app_on(APP_ID, &["someone-else/shop"]);
    let found: Value = lookup("someone-else/shop").await.unwrap().json().await.unwrap();
    assert_eq!((found["id"].as_u64(), found["repository_selection"].as_str()), (Some(selected), Some("selected")));
    assert_eq!(lookup("someone-else/blog").await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn jwts_github_would_refuse_are_refused_in_its_words() {
    let h = harness().await;
    let http = reqwest::Client::new();
    let url = format!("{}/app/installations/{}/access_tokens", h.server.api_url, h.installation);
    let t = now();
    // A signature that does not match: its first byte changed.
    let good = jwt(json!({"iat": t - 60, "exp": t + 540, "iss": APP_ID}));
    let at = good.rfind('.').expect("three parts") + 1;
    let flipped = if good.as_bytes()[at] == b'A' { "B" } else { "A" };
    let tampered = format!("{}{flipped}{}", &good[..at], &good[at + 1..]);
    let cases = [
        (jwt(json!({"iat": t - 700, "exp": t - 60, "iss": APP_ID})),
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires"),
        (jwt(json!({"iat": t - 60, "exp": t + 3600, "iss": APP_ID})), "'Expiration time' claim ('exp') is too far in the future"),
        (jwt(json!({"iat": t + 120, "exp": t + 540, "iss": APP_ID})),
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"),
        (jwt(json!({"iat": t - 60, "exp": t + 540})), "Missing 'issuer' claim ('iss') in assertion"),
        (jwt(json!({"iat": t - 60, "exp": t + 540, "iss": "Iv1.not-an-app-id"})), "'Issuer' claim ('iss') must be an Integer"),
        // Another App's id: the key is not that App's.
        (jwt(json!({"iat": t - 60, "exp": t + 540, "iss": APP_ID + 1})), "A JSON web token could not be decoded"),
        (tampered, "A JSON web token could not be decoded"),
        (DEFAULT_TOKEN.to_owned(), "A JSON web token could not be decoded"),
    ];
    for (token, expected) in cases {
        let res = http.post(&url).bearer_auth(&token).json(&json!({})).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{expected}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["message"], expected);
        assert_eq!(body["documentation_url"], "https://docs.github.com/rest");
        assert_eq!(body["status"], "401");
    }
    assert_eq!(h.github.calls(endpoint::CREATE_INSTALLATION_TOKEN), 8);

    // A JWT is the App itself, not an installation: no repository access.
    let app_jwt = jwt(json!({"iat": t - 60, "exp": t + 540, "iss": APP_ID}));
    let repo = http.get(format!("{}/repos/{REPO}", h.server.api_url)).bearer_auth(&app_jwt).send().await.unwrap();
    assert_eq!(repo.status(), StatusCode::FORBIDDEN);
    assert_eq!(message(repo).await, "Resource not accessible by integration");
    let other = http.get(format!("{}/app/installations/999", h.server.api_url)).bearer_auth(&app_jwt).send();
    assert_eq!(other.await.unwrap().status(), StatusCode::NOT_FOUND);

    // The App endpoints answer scripted failures like the others.
    h.github.fail_next(endpoint::GET_REPO_INSTALLATION, opsbot_fake_github::Failure::ServerError);
    let app = app_client(&h.server);
    let found = app.apps().get_repository_installation("octo-org", "shop").await.expect("retried after a 500");
    assert_eq!(found.id.0, h.installation);
    assert_eq!(h.github.calls(endpoint::GET_REPO_INSTALLATION), 2);
}

#[tokio::test]
async fn the_primary_budget_runs_out_for_apps_and_installations_too() {
    let h = harness().await;
    let http = reqwest::Client::new();
    let api = &h.server.api_url;
    let claims = json!({"iat": now() - 60, "exp": now() + 540, "iss": APP_ID});
    let minted: Value = http
        .post(format!("{api}/app/installations/{}/access_tokens", h.installation))
        .bearer_auth(jwt(claims.clone()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = minted["token"].as_str().unwrap();

    h.github.set_rate_limit(0);
    let repo = http.get(format!("{api}/repos/{REPO}")).bearer_auth(token).send().await.unwrap();
    assert_eq!(repo.status(), StatusCode::FORBIDDEN);
    assert_eq!(repo.headers()["x-ratelimit-remaining"], "0");
    assert!(repo.headers().contains_key("x-ratelimit-reset"));
    let expected = format!("API rate limit exceeded for installation ID {}.", h.installation);
    assert!(message(repo).await.starts_with(&expected));
    for url in [format!("{api}/repos/{REPO}/installation"), format!("{api}/app/installations/{}", h.installation)] {
        let res = http.get(&url).bearer_auth(jwt(claims.clone())).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{url}");
        assert_eq!(res.headers()["x-ratelimit-remaining"], "0", "{url}");
    }
}
