//! `soak`: three `opsbot serve` replicas on one Redis, followed through
//! Sentinel, under a mixed load for minutes while a chaos loop kills a
//! replica every minute and fails Redis over once; then it checks, from
//! the fake Slack's record, that nothing was lost or doubled.
//!
//! ```text
//! cargo run --release --example soak                 # 10 minutes
//! cargo run --release --example soak -- --minutes 3  # a shorter look
//! ```
//!
//! What runs:
//! - a Redis primary (append-only), two replicas and three Sentinels
//!   (quorum two), all private `redis-server` processes on free ports, set
//!   up as "Running in production" advises (`min-replicas-to-write 1`, and
//!   the bot's commits wait for a replica);
//! - three replicas of `target/release/opsbot`, with
//!   `REDIS_URL=redis+sentinel://…` and a runbook whose morning health
//!   check runs every minute (so slots come due during the run);
//! - the fake Slack Web API in this process.
//!
//! The load: a declare every 250 ms (P0 or P2, to a replica chosen in
//! turn among those alive), and every second an **Acknowledge** click on
//! one of the alerts; unacknowledged P0s escalate after five minutes. The
//! chaos: every minute a replica chosen in turn is killed with SIGKILL and
//! started again 5 seconds later; at half time Sentinel fails the Redis
//! primary over to one of its replicas.
//!
//! At the end (once every acknowledged declare has its alert and the
//! outbox is empty, or after the drain limit) it checks: every acknowledged
//! declare has exactly one alert; every accepted click shows on its alert;
//! no escalation and no scheduled run is posted twice, and every minute's
//! run is there; the dead-letter stream is empty. It prints the figures
//! and exits 1 when a check fails.

// The benchmarks' helpers; the soak uses the process and readiness ones.
#[allow(dead_code)]
mod bench_support;

use bench_support::{bot_command, build_bot, free_port, wait_until_ready, BotSetup, Guard, Result};
use opsbot::slack::signature::sign;
use opsbot_fake_slack::{FakeSlack, Message};
use opsbot_test_redis::{Persistence, RedisSentinel, RedisServer};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const SIGNING_SECRET: &str = "soak-signing-secret";
const BOT_TOKEN: &str = "xoxb-soak-token";
const REDIS_PREFIX: &str = "soak";
const MASTER: &str = "soak";
const REPLICAS: usize = 3;
const TITLE_PREFIX: &str = "soak-";
const DRAIN_LIMIT: Duration = Duration::from_secs(180);

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("soak: FAILED (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}

fn minutes() -> Result<u64> {
    let mut minutes = 10;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--minutes" => minutes = args.next().ok_or("--minutes needs a value")?.parse()?,
            "-h" | "--help" => {
                println!("usage: cargo run --release --example soak -- [--minutes 10]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    if minutes < 2 {
        return Err("--minutes must be at least 2: the chaos loop acts once a minute".into());
    }
    Ok(minutes)
}

/// One replica of the bot: its port, its process (when running), its log.
struct Replica {
    name: String,
    port: u16,
    log: PathBuf,
    guard: Option<Guard>,
}

impl Replica {
    fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }
}

struct World {
    binary: PathBuf,
    api_url: String,
    redis_url: String,
    runbook: PathBuf,
}

impl World {
    fn start(&self, replica: &mut Replica) -> Result<()> {
        let setup = BotSetup {
            port: replica.port,
            signing_secret: SIGNING_SECRET,
            bot_token: BOT_TOKEN,
            slack_api_url: &self.api_url,
            redis_url: &self.redis_url,
            redis_prefix: REDIS_PREFIX,
            log_path: &replica.log,
        };
        let mut command = bot_command(&self.binary, &setup)?;
        // As "Running in production" advises: each commit waits for the
        // Redis replica, so the failover cannot take back what was answered.
        // The outbox's story is logged, to follow any message the checks miss.
        command
            .env("OPSBOT_REPLICA", &replica.name)
            .env("OPSBOT_RUNBOOK", &self.runbook)
            .env("OPSBOT_REDIS_WAIT_REPLICAS", "1")
            .env("RUST_LOG", "warn,opsbot=info,opsbot::outbox=debug");
        replica.guard = Some(Guard::new("opsbot", command.spawn()?, true));
        Ok(())
    }
}

fn run() -> Result<bool> {
    let minutes = minutes()?;
    let binary = build_bot()?;
    let primary = RedisServer::try_start(Persistence::AppendOnly)?;
    // Two replicas, so the new primary still has one after the failover.
    let standbys = [RedisServer::start_replica_of(&primary), RedisServer::start_replica_of(&primary)];
    let sentinels: Vec<RedisSentinel> = (0..3).map(|_| RedisSentinel::start(MASTER, &primary, 2)).collect();
    // As "Running in production" advises: a primary without a replica in
    // sync refuses writes, so the old primary, cut off from its replicas by
    // the failover, cannot take writes that the new one never sees.
    let setup_rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let servers = [&primary, &standbys[0], &standbys[1]];
    for server in servers {
        setup_rt.block_on(require_a_replica(&server.url()))?;
    }
    let hosts: Vec<String> = sentinels.iter().map(|s| format!("127.0.0.1:{}", s.port())).collect();
    let redis_url = format!("redis+sentinel://{}/{MASTER}", hosts.join(","));

    let dir = std::env::temp_dir().join(format!("opsbot-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let runbook = dir.join("runbook.yml");
    let seed = opsbot_handlers::Runbook::SEED_YAML;
    if !seed.contains("schedule: \"0 9 * * *\"") {
        return Err("the seed's morning health check is no longer scheduled at 09:00".into());
    }
    std::fs::write(&runbook, seed.replacen("schedule: \"0 9 * * *\"", "schedule: \"* * * * *\"", 1))?;

    let fake_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("fake-slack").enable_all().build()?;
    let fake = FakeSlack::with_token(BOT_TOKEN);
    let fake_server = fake_rt.block_on(fake.spawn())?;
    let world = World { binary, api_url: fake_server.api_url.clone(), redis_url, runbook };
    let mut replicas: Vec<Replica> = (0..REPLICAS)
        .map(|i| {
            Ok(Replica {
                name: format!("soak-{i}"),
                port: free_port()?,
                log: dir.join(format!("replica-{i}.log")),
                guard: None,
            })
        })
        .collect::<Result<_>>()?;
    for replica in &mut replicas {
        world.start(replica)?;
    }
    let load_rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let passed = load_rt.block_on(soak(minutes, &world, &mut replicas, &fake, &sentinels, servers));
    for replica in &mut replicas {
        if let Some(mut guard) = replica.guard.take() {
            guard.stop();
        }
    }
    drop(fake_server);
    fake_rt.shutdown_timeout(Duration::from_secs(1));
    let passed = passed?;
    if passed {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("replicas' logs kept in {}", dir.display());
    }
    Ok(passed)
}

/// What the load was told: the declares acknowledged, the clicks accepted.
#[derive(Default)]
struct Load {
    declared: Vec<String>,
    /// For each acknowledged declare: its number, the replica that answered
    /// and when, to follow a missing alert in that replica's log.
    answered: HashMap<String, (String, String, f64)>,
    refused: u64,
    clicked: HashSet<String>,
    turned_away: u64,
}

async fn soak(
    minutes: u64,
    world: &World,
    replicas: &mut [Replica],
    fake: &FakeSlack,
    sentinels: &[RedisSentinel],
    servers: [&RedisServer; 3],
) -> Result<bool> {
    for replica in replicas.iter_mut() {
        let (addr, log) = (replica.addr(), replica.log.clone());
        let guard = replica.guard.as_mut().ok_or("a replica did not start")?;
        wait_until_ready(addr, guard, &log).await?;
    }
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
    let started = Instant::now();
    let until = started + Duration::from_secs(minutes * 60);
    let mut load = Load::default();
    let mut next_declare = Instant::now();
    let mut next_click = Instant::now();
    let mut next_kill = started + Duration::from_secs(60);
    let mut restart: Option<(usize, Instant)> = None;
    let mut killed = 0usize;
    let mut failed_over = false;
    let mut n = 0u64;
    println!("soak: {minutes} min, {REPLICAS} replicas, Sentinel {} ", sentinels.len());
    while Instant::now() < until {
        let now = Instant::now();
        if now >= next_kill {
            let victim = killed % REPLICAS;
            if let Some(mut guard) = replicas[victim].guard.take() {
                // SIGKILL, as a crash or an OOM kill: no chance to hand over.
                let _ = guard.child.kill();
                let _ = guard.child.wait();
            }
            println!("  {:>4} s: killed {}", started.elapsed().as_secs(), replicas[victim].name);
            restart = Some((victim, now + Duration::from_secs(5)));
            killed += 1;
            next_kill += Duration::from_secs(60);
        }
        if let Some((victim, at)) = restart {
            if now >= at {
                world.start(&mut replicas[victim])?;
                println!("  {:>4} s: restarted {}", started.elapsed().as_secs(), replicas[victim].name);
                restart = None;
            }
        }
        if !failed_over && now >= started + Duration::from_secs(minutes * 30) {
            let () =
                ask(&format!("redis://127.0.0.1:{}/", sentinels[0].port()), &["SENTINEL", "FAILOVER", MASTER]).await?;
            println!("  {:>4} s: Sentinel failover from :{}", started.elapsed().as_secs(), servers[0].port());
            failed_over = true;
        }
        let alive: Vec<SocketAddr> = replicas.iter().filter(|r| r.guard.is_some()).map(Replica::addr).collect();
        if now >= next_declare && !alive.is_empty() {
            n += 1;
            let severity = if n.is_multiple_of(4) { "p0" } else { "p2" };
            let title = format!("{TITLE_PREFIX}{n}");
            let chosen = replicas.iter().filter(|r| r.guard.is_some()).nth(n as usize % alive.len());
            let (addr, name) = chosen.map(|r| (r.addr(), r.name.clone())).ok_or("no replica alive")?;
            match declare(&http, addr, severity, &title).await {
                Ok(Some(number)) => {
                    load.answered.insert(title.clone(), (number, name, started.elapsed().as_secs_f64()));
                    load.declared.push(title);
                }
                Ok(None) => load.refused += 1,
                Err(_) => load.turned_away += 1,
            }
            next_declare += Duration::from_millis(250);
        }
        if now >= next_click && !alive.is_empty() {
            // Acknowledge one P0 in three, so the others escalate.
            let alert = fake.messages("#devops-alerts").into_iter().find(|m| {
                m.thread_ts.is_none()
                    && !load.clicked.contains(&m.ts)
                    && title_of(m)
                        .and_then(|t| t.strip_prefix(TITLE_PREFIX)?.parse::<u64>().ok())
                        .is_some_and(|k| k.is_multiple_of(12))
            });
            if let Some(alert) = alert {
                if click(&http, alive[n as usize % alive.len()], &alert, "incident.ack").await.unwrap_or(false) {
                    load.clicked.insert(alert.ts.clone());
                }
            }
            next_click += Duration::from_secs(1);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some((victim, _)) = restart {
        world.start(&mut replicas[victim])?;
    }
    let load_secs = started.elapsed().as_secs_f64();
    println!("load over after {load_secs:.0} s; draining");
    let drained = drain(fake, &load, Duration::from_secs(minutes * 60), servers).await;

    // --- Checks -----------------------------------------------------------
    let alerts: Vec<Message> =
        fake.all_messages().into_iter().filter(|m| m.thread_ts.is_none() && title_of(m).is_some()).collect();
    let mut per_title: HashMap<String, usize> = HashMap::new();
    for m in &alerts {
        *per_title.entry(title_of(m).unwrap_or_default()).or_default() += 1;
    }
    let missing = load.declared.iter().filter(|t| !per_title.contains_key(*t)).count();
    for title in load.declared.iter().filter(|t| !per_title.contains_key(*t)) {
        if let Some((number, replica, at)) = load.answered.get(title) {
            println!("  missing: {title} ({number}), acknowledged by {replica} at {at:.1} s");
        }
    }
    let doubled = per_title.values().filter(|n| **n > 1).count();
    let unreflected = load
        .clicked
        .iter()
        .filter(|ts| !fake.all_messages().iter().any(|m| &m.ts == *ts && m.blocks.to_string().contains("Acknowledged")))
        .count();
    let mut replies: HashMap<(String, String), usize> = HashMap::new();
    for m in fake.all_messages() {
        if let Some(thread) = &m.thread_ts {
            if m.text.contains("Escalating to") {
                *replies.entry((thread.clone(), m.text.clone())).or_default() += 1;
            }
        }
    }
    for ((thread, text), n) in replies.iter().filter(|(_, n)| **n > 1) {
        let times: Vec<String> = fake
            .all_messages()
            .iter()
            .filter(|m| m.thread_ts.as_ref() == Some(thread) && &m.text == text)
            .map(|m| m.ts.clone())
            .collect();
        println!("  escalation posted {n} times under {thread}, at {}: {text}", times.join(", "));
    }
    let escalations = replies.len();
    let escalations_doubled = replies.values().filter(|n| **n > 1).count();
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    for m in fake.all_messages() {
        if m.thread_ts.is_none() && m.text.contains("Morning Health Check") {
            if let Some(run) = m.text.split_whitespace().find(|w| w.trim_matches('*').starts_with("RUN-")) {
                *runs.entry(run.trim_matches(|c: char| !c.is_alphanumeric() && c != '-').to_owned()).or_default() += 1;
            }
        }
    }
    let runs_doubled = runs.values().filter(|n| **n > 1).count();
    let first = runs.len();
    let expected_runs = (load_secs / 60.0).floor() as usize;
    let dead: u64 = match on_the_primary(servers, &["LLEN", &format!("{REDIS_PREFIX}:outbox:dead")]).await {
        Ok(n) => n,
        Err(e) => {
            println!("  could not count dead letters: {e}");
            u64::MAX
        }
    };

    println!(
        "declares: {} acknowledged, {} refused, {} not answered (a replica killed mid-request)",
        load.declared.len(),
        load.refused,
        load.turned_away
    );
    println!("alerts: {} posted; {missing} missing, {doubled} posted twice", alerts.len());
    println!("clicks: {} accepted; {unreflected} not shown on their alert", load.clicked.len());
    println!("escalations: {escalations} posted; {escalations_doubled} posted twice");
    println!("scheduled runs: {first} posted for about {expected_runs} minutes; {runs_doubled} posted twice");
    println!("dead letters: {dead}");
    println!("replicas killed: {killed}; failover: {failed_over}; drained: {drained}");
    Ok(drained
        && missing == 0
        && doubled == 0
        && unreflected == 0
        && escalations_doubled == 0
        && runs_doubled == 0
        && first + 1 >= expected_runs
        && dead == 0)
}

/// The declare's title, from an alert's text (`… soak-17 …`).
fn title_of(m: &Message) -> Option<String> {
    let at = m.text.find(TITLE_PREFIX)?;
    let title: String = m.text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    Some(title)
}

/// Waits until every acknowledged declare has its alert and both outbox
/// streams have been empty for 5 s, or the limit. (Slack is never quiet
/// for long: the checklist runs every minute, and P0s keep escalating.)
async fn drain(fake: &FakeSlack, load: &Load, ran: Duration, servers: [&RedisServer; 3]) -> bool {
    let deadline = Instant::now() + DRAIN_LIMIT.max(ran / 4);
    let mut empty_since: Option<Instant> = None;
    loop {
        let posted: HashSet<String> = fake.all_messages().iter().filter_map(title_of).collect();
        let mut waiting = 0u64;
        for stream in ["outbox", "outbox:alerts"] {
            let key = format!("{REDIS_PREFIX}:{stream}");
            waiting += on_the_primary(servers, &["XLEN", &key]).await.unwrap_or(u64::MAX / 2);
        }
        if waiting > 0 {
            empty_since = None;
        } else if empty_since.is_none() {
            empty_since = Some(Instant::now());
        }
        let settled = empty_since.is_some_and(|since| since.elapsed() > Duration::from_secs(5));
        if load.declared.iter().all(|t| posted.contains(t)) && settled {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `min-replicas-to-write 1`: the server refuses writes while no replica
/// has acknowledged it within the last 10 s.
async fn require_a_replica(url: &str) -> Result<()> {
    let () = ask(url, &["CONFIG", "SET", "min-replicas-to-write", "1"]).await?;
    ask(url, &["CONFIG", "SET", "min-replicas-max-lag", "10"]).await
}

async fn ask<T: redis::FromRedisValue>(url: &str, args: &[&str]) -> Result<T> {
    let mut conn = redis::Client::open(url)?.get_multiplexed_async_connection().await?;
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    Ok(cmd.query_async(&mut conn).await?)
}

/// A count asked of whichever server is the primary now.
async fn on_the_primary(servers: [&RedisServer; 3], args: &[&str]) -> Result<u64> {
    for server in servers {
        let info: String = ask(&server.url(), &["INFO", "replication"]).await?;
        if info.contains("role:master") {
            return ask(&server.url(), args).await;
        }
    }
    Err("no primary after the failover".into())
}

/// Posts a form to `path` signed as Slack signs it, now.
async fn post_signed(http: &reqwest::Client, addr: SocketAddr, path: &str, form: String) -> Result<reqwest::Response> {
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let signature = sign(SIGNING_SECRET.as_bytes(), ts, form.as_bytes());
    Ok(http
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", signature)
        .body(form)
        .send()
        .await?)
}

/// `/incident <severity> <title>`; the incident's number when declared.
async fn declare(http: &reqwest::Client, addr: SocketAddr, severity: &str, title: &str) -> Result<Option<String>> {
    let form = serde_urlencoded::to_string([
        ("team_id", "T0OPSBOT"),
        ("team_domain", "opsbot-sandbox"),
        ("channel_id", "C0GENERAL"),
        ("user_id", "U0ALICE"),
        ("command", "/incident"),
        ("text", &format!("{severity} {title}")),
        ("trigger_id", "1.2.3"),
    ])?;
    let answer = post_signed(http, addr, "/slack/commands", form).await?;
    if answer.status() != 200 {
        return Ok(None);
    }
    let text = answer.text().await?;
    Ok(text.find("INC-").map(|at| text[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect()))
}

/// Clicks `action_id` on `message`; `Ok(true)` when Slack would be told 200.
async fn click(http: &reqwest::Client, addr: SocketAddr, message: &Message, action_id: &str) -> Result<bool> {
    let value = message.blocks.as_array().and_then(|blocks| {
        blocks.iter().find_map(|b| {
            let elements = b["elements"].as_array().into_iter().flatten();
            std::iter::once(&b["accessory"]).chain(elements).find(|e| e["action_id"] == action_id)?["value"]
                .as_str()
                .map(str::to_owned)
        })
    });
    let Some(value) = value else { return Ok(false) };
    let payload = serde_json::json!({
        "type": "block_actions",
        "user": {"id": "U0BOB", "username": "bob", "team_id": "T0OPSBOT"},
        "team": {"id": "T0OPSBOT", "domain": "opsbot-sandbox"},
        "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel},
        "channel": {"id": message.channel},
        "trigger_id": "1.2.3",
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": value, "action_ts": "1.2"}],
    });
    let form = serde_urlencoded::to_string([("payload", payload.to_string())])?;
    Ok(post_signed(http, addr, "/slack/interactions", form).await?.status() == 200)
}
