//! GitHub App authentication as GitHub does it: an App signs a short-lived
//! JWT (RS256) with its private key; with it, it finds a repository's
//! installation and mints installation access tokens, which expire an hour
//! later and act on the installation's repositories only.
//!
//! The JWT's times and the tokens' expiry are checked against the wall
//! clock, not the fake's test clock: clients stamp their JWTs with the
//! system time, and a test clock set in the past would refuse every one.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use rsa::RsaPublicKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::api::{error, json_body, not_found, ok, serve, Access, ApiError, Caller, Reply};
use crate::endpoint;
use crate::json;
use crate::state::State as FakeState;
use crate::FakeGitHub;

const FIRST_INSTALLATION_ID: u64 = 50_000_001;
/// GitHub refuses a JWT that expires more than ten minutes from now.
const JWT_MAX_LIFETIME_SECS: i64 = 600;
/// Installation tokens expire an hour after they are minted.
const TOKEN_LIFETIME: TimeDelta = TimeDelta::hours(1);
const DOCS: &str = "https://docs.github.com/rest";
const TOKEN_DOCS: &str = "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app";

// GitHub's own words for a JWT it refuses, all with 401.
const JWT_UNDECODABLE: &str = "A JSON web token could not be decoded";
const JWT_NO_ISSUER: &str = "Missing 'issuer' claim ('iss') in assertion";
const JWT_ISSUER_NOT_INTEGER: &str = "'Issuer' claim ('iss') must be an Integer";
const JWT_BAD_IAT: &str =
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued";
const JWT_EXPIRED: &str =
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires";
const JWT_TOO_LONG: &str = "'Expiration time' claim ('exp') is too far in the future";

/// A registered GitHub App: its id (the JWT's `iss`) and public key.
#[derive(Clone, Debug)]
pub(crate) struct App {
    pub id: u64,
    pub slug: String,
    pub key: RsaPublicKey,
}

/// An App installed on an account, on all its repositories or on some.
#[derive(Clone, Debug)]
pub(crate) struct Installation {
    pub id: u64,
    pub app_id: u64,
    pub account: String,
    /// `None`: every repository of the account; else full names.
    pub repos: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
}

impl Installation {
    fn covers(&self, repo: &str) -> bool {
        in_scope(&self.account, self.repos.as_deref(), repo)
    }
}

/// Whether `repo` (`owner/name`) is `account`'s and, when `repos` narrows
/// the scope, one of them.
pub(crate) fn in_scope(account: &str, repos: Option<&[String]>, repo: &str) -> bool {
    let owner = repo.split('/').next().unwrap_or_default();
    owner.eq_ignore_ascii_case(account) && repos.is_none_or(|list| list.iter().any(|r| r.eq_ignore_ascii_case(repo)))
}

/// An installation access token as minted.
#[derive(Clone, Debug)]
pub(crate) struct IssuedToken {
    pub installation: u64,
    /// Narrower than the installation when the App asked for that.
    pub repos: Option<Vec<String>>,
    pub expires_at: DateTime<Utc>,
}

/// Apps, their installations and the tokens minted for them.
#[derive(Debug, Default)]
pub(crate) struct Apps {
    pub apps: Vec<App>,
    pub installations: Vec<Installation>,
    pub tokens: HashMap<String, IssuedToken>,
    minted: u64,
}

impl Apps {
    pub fn add_app(&mut self, id: u64, slug: &str, public_key_pem: &str) -> Result<(), String> {
        let key = RsaPublicKey::from_public_key_pem(public_key_pem)
            .or_else(|_| RsaPublicKey::from_pkcs1_pem(public_key_pem))
            .map_err(|e| format!("not an RSA public key in PEM: {e}"))?;
        self.apps.retain(|a| a.id != id);
        self.apps.push(App { id, slug: slug.to_owned(), key });
        Ok(())
    }

    pub fn install(&mut self, app_id: u64, account: &str, repos: Option<Vec<String>>) -> Result<u64, String> {
        if self.installations.iter().any(|i| i.app_id == app_id && i.account.eq_ignore_ascii_case(account)) {
            return Err(format!("app {app_id} is already installed on {account}"));
        }
        let id = FIRST_INSTALLATION_ID + self.installations.len() as u64;
        self.installations.push(Installation {
            id,
            app_id,
            account: account.to_owned(),
            repos,
            created_at: Utc::now(),
        });
        Ok(id)
    }

    /// Ends the life of every token minted so far, as an hour passing would.
    pub fn expire_tokens(&mut self) {
        let past = Utc::now() - TimeDelta::seconds(1);
        for token in self.tokens.values_mut() {
            token.expires_at = past;
        }
    }

    fn mint(&mut self, installation: u64, repos: Option<Vec<String>>) -> (String, DateTime<Utc>) {
        self.minted += 1;
        let seed = format!("{installation}:{}:{:?}", self.minted, std::time::SystemTime::now());
        let token = format!("ghs_{}", &hex::encode(Sha256::digest(seed))[..36]);
        // GitHub states expiry to the second.
        let expires_at = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap_or_else(Utc::now) + TOKEN_LIFETIME;
        self.tokens.insert(token.clone(), IssuedToken { installation, repos, expires_at });
        (token, expires_at)
    }

    fn slug(&self, app_id: u64) -> &str {
        self.apps.iter().find(|a| a.id == app_id).map_or("app", |a| a.slug.as_str())
    }

    /// Who `token` is, if it is a live installation token.
    pub fn installation_caller(&self, token: &str) -> Option<Result<Caller, ApiError>> {
        let issued = self.tokens.get(token)?;
        if issued.expires_at <= Utc::now() {
            return Some(Err(error(StatusCode::UNAUTHORIZED, "Bad credentials", DOCS)));
        }
        let installation = self.installations.iter().find(|i| i.id == issued.installation)?;
        Some(Ok(Caller::Installation {
            installation: installation.id,
            account: installation.account.clone(),
            repos: issued.repos.clone().or_else(|| installation.repos.clone()),
            bot: format!("{}[bot]", self.slug(installation.app_id)),
        }))
    }

    /// The App a JWT proves to be, or GitHub's 401 for it.
    pub fn verify_jwt(&self, jwt: &str) -> Result<Caller, ApiError> {
        self.app_of(jwt)
            .map(|app_id| Caller::App { app_id })
            .map_err(|message| error(StatusCode::UNAUTHORIZED, message, DOCS))
    }

    fn app_of(&self, jwt: &str) -> Result<u64, &'static str> {
        let mut parts = jwt.split('.');
        let (Some(header), Some(claims), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JWT_UNDECODABLE);
        };
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).map_err(|_| JWT_UNDECODABLE);
        let header: Value = serde_json::from_slice(&decode(header)?).map_err(|_| JWT_UNDECODABLE)?;
        let claims: Value = serde_json::from_slice(&decode(claims)?).map_err(|_| JWT_UNDECODABLE)?;
        if header["alg"] != "RS256" || !claims.is_object() {
            return Err(JWT_UNDECODABLE);
        }
        let app_id = match &claims["iss"] {
            Value::Null => return Err(JWT_NO_ISSUER),
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
        .ok_or(JWT_ISSUER_NOT_INTEGER)?;
        // An unknown App and a key that is not the App's look the same:
        // the signature cannot be checked against the App's key.
        let app = self.apps.iter().find(|a| a.id == app_id).ok_or(JWT_UNDECODABLE)?;
        let signed = &jwt[..jwt.rfind('.').unwrap_or_default()];
        let signature = Signature::try_from(decode(signature)?.as_slice()).map_err(|_| JWT_UNDECODABLE)?;
        VerifyingKey::<Sha256>::new(app.key.clone())
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| JWT_UNDECODABLE)?;
        let now = Utc::now().timestamp();
        claims["iat"].as_i64().filter(|&iat| iat <= now).ok_or(JWT_BAD_IAT)?;
        let exp = claims["exp"].as_i64().filter(|&exp| exp > now).ok_or(JWT_EXPIRED)?;
        if exp > now + JWT_MAX_LIFETIME_SECS {
            return Err(JWT_TOO_LONG);
        }
        Ok(app_id)
    }
}

fn app_id(caller: &Caller) -> u64 {
    match caller {
        Caller::App { app_id } => *app_id,
        // `Access::App` lets nothing else through.
        _ => unreachable!("an App endpoint was served to {caller:?}"),
    }
}

pub(crate) async fn get_repo_installation(
    State(fake): State<FakeGitHub>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let full = format!("{owner}/{repo}");
    serve(&fake, endpoint::GET_REPO_INSTALLATION, &headers, Access::App, |caller| {
        let state = fake.inner.lock();
        let repo = state.repo(&full).ok_or_else(not_found)?.full_name();
        let app = app_id(caller);
        let installation =
            state.apps.installations.iter().find(|i| i.app_id == app && i.covers(&repo)).ok_or_else(not_found)?;
        Ok(ok(installation_json(&state, installation)))
    })
}

pub(crate) async fn get_installation(
    State(fake): State<FakeGitHub>,
    Path(installation): Path<String>,
    headers: HeaderMap,
) -> Response {
    serve(&fake, endpoint::GET_INSTALLATION, &headers, Access::App, |caller| {
        let state = fake.inner.lock();
        let installation = find_installation(&state, &installation, app_id(caller))?;
        Ok(ok(installation_json(&state, installation)))
    })
}

/// The App's own installation `id`; another App's is not found.
fn find_installation<'a>(state: &'a FakeState, id: &str, app: u64) -> Result<&'a Installation, ApiError> {
    let id: u64 = id.parse().map_err(|_| not_found())?;
    state.apps.installations.iter().find(|i| i.id == id && i.app_id == app).ok_or_else(not_found)
}

pub(crate) async fn create_installation_token(
    State(fake): State<FakeGitHub>,
    Path(installation): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    serve(&fake, endpoint::CREATE_INSTALLATION_TOKEN, &headers, Access::App, |caller| {
        let mut state = fake.inner.lock();
        let installation = find_installation(&state, &installation, app_id(caller))?.clone();
        let body = if body.is_empty() { json!({}) } else { json_body(&body, TOKEN_DOCS)? };
        let inaccessible = || {
            let message =
                "There is at least one repository that does not exist or is not accessible to the parent installation.";
            error(StatusCode::UNPROCESSABLE_ENTITY, message, TOKEN_DOCS)
        };
        // A token may be narrowed to some of the installation's repositories,
        // by name (within the account) or id.
        let mut scope: Option<Vec<String>> = None;
        for name in body["repositories"].as_array().into_iter().flatten() {
            let full = format!("{}/{}", installation.account, name.as_str().unwrap_or_default());
            let repo = state.repo(&full).filter(|r| installation.covers(&r.full_name())).ok_or_else(inaccessible)?;
            scope.get_or_insert_with(Vec::new).push(repo.full_name());
        }
        for id in body["repository_ids"].as_array().into_iter().flatten() {
            let repo = state.repos.iter().find(|r| Some(r.id) == id.as_u64() && installation.covers(&r.full_name()));
            scope.get_or_insert_with(Vec::new).push(repo.ok_or_else(inaccessible)?.full_name());
        }
        let (token, expires_at) = state.apps.mint(installation.id, scope.clone());
        let selection = if scope.is_some() || installation.repos.is_some() { "selected" } else { "all" };
        let mut answer = json!({
            "token": token,
            "expires_at": json::time(expires_at),
            "permissions": permissions(),
            "repository_selection": selection,
        });
        if let Some(scope) = scope {
            let repos: Vec<Value> = scope.iter().filter_map(|r| state.repo(r)).map(json::repository).collect();
            answer["repositories"] = Value::Array(repos);
        }
        Ok(Reply { status: StatusCode::CREATED, ..ok(answer) })
    })
}

/// What the fake's Apps are granted: what `/pipeline` uses.
fn permissions() -> Value {
    json!({"actions": "write", "contents": "read", "deployments": "write", "metadata": "read"})
}

fn installation_json(state: &FakeState, i: &Installation) -> Value {
    let mut account = json::user(&i.account);
    account["type"] = json!("Organization");
    let account_id = account["id"].clone();
    json!({
        "id": i.id,
        "client_id": format!("Iv1.{:016x}", i.app_id),
        "account": account,
        "repository_selection": if i.repos.is_some() { "selected" } else { "all" },
        "access_tokens_url": format!("{}/app/installations/{}/access_tokens", json::API, i.id),
        "repositories_url": format!("{}/installation/repositories", json::API),
        "html_url": format!("{}/organizations/{}/settings/installations/{}", json::WEB, i.account, i.id),
        "app_id": i.app_id,
        "app_slug": state.apps.slug(i.app_id),
        "target_id": account_id,
        "target_type": "Organization",
        "permissions": permissions(),
        "events": ["deployment_status", "workflow_run"],
        "created_at": json::time(i.created_at),
        "updated_at": json::time(i.created_at),
        "single_file_name": null,
        "has_multiple_single_files": false,
        "single_file_paths": [],
        "suspended_by": null,
        "suspended_at": null,
    })
}
