//! `declare_storm`: how many `/incident p1 …` declares per second the real
//! `opsbot serve` binary acknowledges, how fast, in how much memory, and
//! whether every declared incident's alert then reaches Slack exactly once.
//!
//! ```text
//! cargo run --release --example declare_storm
//! cargo run --release --example declare_storm -- --seconds 15 --connections 64
//! ```
//!
//! What runs:
//! - `target/release/opsbot` (built first with `cargo build --release --bin
//!   opsbot`), as a child process exactly as deployed: `opsbot serve`;
//! - a private `redis-server` on a free port, without persistence;
//! - the fake Slack Web API (`opsbot-fake-slack`) in this process, on its
//!   own small runtime so the load generator never starves it;
//! - the load generator: `--connections` keep-alive HTTP/1.1 connections,
//!   each sending signed slash commands back to back for `--seconds`.
//!
//! What it measures:
//! - throughput of acknowledged declares (HTTP 200 whose text says
//!   "declared") and the latency of every answered request, from sending
//!   it to having the whole response body;
//! - the bot's peak RSS (`VmRSS` sampled every 100 ms, and `VmHWM`);
//! - the drain: how long after the load stops the last alert is posted to
//!   `#devops-alerts` and the outbox is empty, and each alert's lag from
//!   its declare being sent to its post (the fake's `ts` is wall-clock).
//!   The run fails (exit code 1) unless there is exactly one alert per
//!   acknowledged declare;
//! - where the CPU went (bot, Redis, load generator, fake Slack) and what
//!   Redis was asked per declare, to tell which of them is the limit.
//!
//! Everything shares one machine, so on few cores the parties compete for
//! CPU: read the throughput together with the CPU line.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{header, Request, StatusCode};
use hyper_util::rt::TokioIo;
use opsbot::slack::signature::sign;
use opsbot_fake_slack::FakeSlack;
use opsbot_test_redis::{Persistence, RedisServer};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SIGNING_SECRET: &str = "declare-storm-bench-signing-secret";
const BOT_TOKEN: &str = "xoxb-bench-token";
const REDIS_PREFIX: &str = "bench";
const ALERTS_CHANNEL: &str = "#devops-alerts";
/// Every declare's title starts with this, so alerts can be matched back
/// to the request that declared them.
const TITLE_PREFIX: &str = "storm-";
/// Users the fake Slack knows, so the "your alert is up" ephemerals are
/// accepted and the drain is the real, complete one.
const USERS: [&str; 4] = ["U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"];
const DRAIN_LIMIT: Duration = Duration::from_secs(120);
/// Every method the fake serves, for the call count.
const FAKE_METHODS: [&str; 9] = [
    "chat.postMessage",
    "chat.postEphemeral",
    "chat.update",
    "views.open",
    "auth.test",
    "users.info",
    "users.list",
    "conversations.list",
    "conversations.info",
];

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

struct Args {
    seconds: u64,
    connections: usize,
}

fn parse_args() -> Result<Args> {
    let mut args = Args { seconds: 15, connections: 64 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| it.next()).ok_or_else(|| format!("{name} needs a value"));
        match name.as_str() {
            "--seconds" => args.seconds = value()?.parse()?,
            "--connections" => args.connections = value()?.parse()?,
            "-h" | "--help" => {
                println!("usage: cargo run --release --example declare_storm -- [--seconds 15] [--connections 64]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)").into()),
        }
    }
    if args.seconds == 0 || args.connections == 0 {
        return Err("--seconds and --connections must be at least 1".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("declare_storm: FAILED: alerts missing, duplicated or not delivered (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("declare_storm: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the benchmark; `Ok(false)` when it ran but alerts were missing or
/// duplicated. Every process it starts is owned by a guard, so an early
/// return or a panic still stops them.
fn run() -> Result<bool> {
    let args = parse_args()?;
    if cfg!(debug_assertions) {
        eprintln!("declare_storm: warning: the load generator is a debug build; use --release");
    }
    let binary = build_bot()?;
    // Persistence is a deployment choice, not what is measured here.
    let redis = RedisServer::try_start(Persistence::InMemory)?;
    let redis_url = redis.url();

    // The fake gets its own runtime: on the load generator's it would
    // queue behind 64 busy connections and look slower than it is.
    let fake_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("fake-slack").enable_all().build()?;
    let fake = FakeSlack::with_token(BOT_TOKEN);
    let fake_server = fake_rt.block_on(fake.spawn())?;

    let bot_port = free_port()?;
    let log_path = std::env::temp_dir().join(format!("opsbot-declare-storm-{}.log", std::process::id()));
    let bot = Guard::new(
        "opsbot",
        Command::new(&binary)
            .arg("serve")
            .env("OPSBOT_BIND", format!("127.0.0.1:{bot_port}"))
            .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
            .env("SLACK_BOT_TOKEN", BOT_TOKEN)
            .env("SLACK_API_URL", &fake_server.api_url)
            .env("REDIS_URL", &redis_url)
            .env("OPSBOT_REDIS_PREFIX", REDIS_PREFIX)
            .env("RUST_LOG", "warn")
            // The bench measures the embedded runbook; settings from the
            // caller's shell must not change what runs.
            .env_remove("SLACK_APP_TOKEN")
            .env_remove("OPSBOT_RUNBOOK")
            .env_remove("GITHUB_WEBHOOK_SECRET")
            .env_remove("OPSBOT_ALERTMANAGER_TOKEN")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path)?)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?,
        true,
    );

    let load_rt = tokio::runtime::Builder::new_multi_thread().thread_name("load-gen").enable_all().build()?;
    let addr: SocketAddr = ([127, 0, 0, 1], bot_port).into();
    let result = load_rt.block_on(storm(&args, addr, bot, &fake, &redis_url, &log_path));
    drop(fake_server);
    fake_rt.shutdown_timeout(Duration::from_secs(1));
    drop(redis);
    let passed = result?;
    let _ = std::fs::remove_file(&log_path);
    Ok(passed)
}

/// Everything from "bot started" to the printed report.
async fn storm(
    args: &Args,
    addr: SocketAddr,
    mut bot: Guard,
    fake: &FakeSlack,
    redis_url: &str,
    log_path: &Path,
) -> Result<bool> {
    wait_until_ready(addr, &mut bot, log_path).await?;
    let bot_pid = bot.child.id();
    let mut redis = redis::Client::open(redis_url)?.get_multiplexed_async_connection().await?;
    let redis_pid = redis_pid(&mut redis).await?;
    // Count only what the storm asks of Redis, not start-up.
    redis::cmd("CONFIG").arg("RESETSTAT").query_async::<()>(&mut redis).await?;

    let sampler = RssSampler::start(bot_pid);
    let cpu_before = CpuTimes::take(bot_pid, redis_pid);
    let fake_calls_before = fake_calls(fake);

    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let workers: Vec<_> = (0..args.connections).map(|id| tokio::spawn(worker(id, addr, deadline))).collect();
    let mut totals = WorkerResult::default();
    for w in workers {
        totals.merge(w.await?);
    }
    let load_stopped = Instant::now();
    let load_stopped_unix_us = unix_micros();
    let secs = (load_stopped - started).as_secs_f64();
    let cpu_load = CpuTimes::take(bot_pid, redis_pid).since(&cpu_before);
    let fake_calls_load = fake_calls(fake) - fake_calls_before;
    let backlog = outbox_len(&mut redis).await?;

    let cpu_at_stop = CpuTimes::take(bot_pid, redis_pid);
    let outbox_empty_after = drain(&mut redis, load_stopped).await?;
    let drain_secs = load_stopped.elapsed().as_secs_f64();
    let cpu_drain = CpuTimes::take(bot_pid, redis_pid).since(&cpu_at_stop);
    let alerts = check_alerts(fake, &totals.titles);
    let commandstats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut redis).await?;
    // The backlog waits in Redis, not in the bot: its memory is the other half.
    let memory: String = redis::cmd("INFO").arg("memory").query_async(&mut redis).await?;
    let redis_peak = memory.lines().find_map(|l| l.strip_prefix("used_memory_peak_human:")).unwrap_or("?").trim();
    let sampled_peak_kb = sampler.stop();
    // VmHWM is kept lazily by the kernel and can trail a sample; take both.
    let peak_kb = proc_status_kb(bot_pid, "VmHWM:").unwrap_or(0).max(sampled_peak_kb);
    let rss_end_kb = proc_status_kb(bot_pid, "VmRSS:").unwrap_or(0);
    let stop_took = bot.stop();

    // --- The report ---------------------------------------------------------
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "declare_storm: {} connections, {} s, machine: {cores} cores, {}",
        args.connections,
        args.seconds,
        cpu_model()
    );
    println!(
        "requests: {} ok, {} failed → {:.0} declares/s (over {secs:.2} s)",
        totals.ok,
        totals.failed,
        totals.ok as f64 / secs
    );
    let mut failures: Vec<_> = totals.failures.into_iter().collect();
    failures.sort_by_key(|f| std::cmp::Reverse(f.1));
    for (why, n) in failures.iter().take(5) {
        println!("  {n} × {why}");
    }
    let mut lat = totals.latencies_us;
    lat.sort_unstable();
    println!("ack latency: {}", percentiles(&lat));
    println!("bot peak RSS: {} ({} after the drain)", mib(peak_kb), mib(rss_end_kb));
    let last_alert_after = alerts.last_posted_unix_us.map(|t| t.saturating_sub(load_stopped_unix_us) as f64 / 1e6);
    println!(
        "alerts delivered to fake Slack: {} / {} ({})",
        alerts.top_level,
        totals.ok,
        match (last_alert_after, outbox_empty_after) {
            (Some(last), Some(empty)) => format!(
                "drained {:.2} s after load stopped; outbox empty after {:.2} s",
                last.max(0.0),
                empty.as_secs_f64()
            ),
            _ => format!("outbox NOT empty {drain_secs:.0} s after load stopped"),
        }
    );
    if alerts.missing > 0 || alerts.duplicates > 0 || alerts.strangers > 0 {
        println!(
            "  MISMATCH: {} missing, {} duplicated, {} not from this run",
            alerts.missing, alerts.duplicates, alerts.strangers
        );
    }
    println!("alert lag (declare sent → alert posted): {}", percentiles(&alerts.lags_us));
    println!(
        "outbox backlog when load stopped: {backlog} entries; thread replies in {ALERTS_CHANNEL}: {}",
        alerts.replies
    );
    let per_method: Vec<String> = FAKE_METHODS
        .iter()
        .map(|m| (m, fake.calls(m)))
        .filter(|(_, n)| *n > 0)
        .map(|(m, n)| format!("{m} {n}"))
        .collect();
    println!(
        "fake Slack: {} calls ({}); during load {:.0} calls/s, after it {:.0} calls/s",
        fake_calls(fake),
        per_method.join(", "),
        fake_calls_load as f64 / secs,
        (fake_calls(fake) - fake_calls_before - fake_calls_load) as f64 / drain_secs
    );
    println!("CPU during load  (cores busy, of {cores}): {}", cpu_load.per_sec(secs));
    println!("CPU during drain (cores busy, of {cores}): {}", cpu_drain.per_sec(drain_secs));
    println!("redis: peak memory {redis_peak}; {}", redis_summary(&commandstats, totals.ok));
    match stop_took {
        Some(d) => println!("bot stopped {:.2} s after SIGTERM", d.as_secs_f64()),
        None => println!("bot did NOT stop within 10 s of SIGTERM; killed"),
    }
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    if !lines.is_empty() {
        println!("bot log (RUST_LOG=warn): {} lines, first ones:", lines.len());
        for line in lines.iter().take(5) {
            println!("  {}", strip_ansi(line));
        }
    }
    Ok(totals.ok > 0
        && alerts.top_level as u64 == totals.ok
        && alerts.missing == 0
        && alerts.duplicates == 0
        && alerts.strangers == 0)
}

// --- Processes ----------------------------------------------------------------

/// A child process stopped when dropped: SIGTERM first for the bot (it
/// should shut down gracefully), a plain kill otherwise.
struct Guard {
    name: &'static str,
    child: Child,
    graceful: bool,
    stopped: bool,
}

impl Guard {
    fn new(name: &'static str, child: Child, graceful: bool) -> Guard {
        Guard { name, child, graceful, stopped: false }
    }

    /// Stops the process: how long a graceful stop took, `None` if it had
    /// to be killed.
    fn stop(&mut self) -> Option<Duration> {
        if self.stopped {
            return Some(Duration::ZERO);
        }
        self.stopped = true;
        let started = Instant::now();
        if let Ok(Some(_)) = self.child.try_wait() {
            return Some(Duration::ZERO);
        }
        if self.graceful {
            // `kill` rather than libc: no extra dependency for one signal.
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            while started.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return Some(started.elapsed());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            eprintln!("declare_storm: {} ignored SIGTERM for 10 s; killing it", self.name);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        (!self.graceful).then(|| started.elapsed())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `cargo build --release --bin opsbot` (a no-op when it is up to date),
/// then the path of the binary.
fn build_bot() -> Result<PathBuf> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--bin", "opsbot"])
        .current_dir(manifest_dir)
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build --release --bin opsbot failed: {status}").into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { manifest_dir.join(t) })
        .unwrap_or_else(|| manifest_dir.join("target"));
    let binary = target.join("release").join("opsbot");
    if !binary.is_file() {
        return Err(format!("{} is missing after the build", binary.display()).into());
    }
    Ok(binary)
}

async fn redis_pid(redis: &mut redis::aio::MultiplexedConnection) -> Result<u32> {
    let info: String = redis::cmd("INFO").arg("server").query_async(redis).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "redis INFO has no process_id".into())
}

/// Polls `GET /readyz` until it answers 200 (Redis reachable, fake Slack
/// accepted the token), or gives up with the bot's log.
async fn wait_until_ready(addr: SocketAddr, bot: &mut Guard, log_path: &Path) -> Result<()> {
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/readyz");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(status)) = bot.child.try_wait() {
            let log = std::fs::read_to_string(log_path).unwrap_or_default();
            return Err(format!("opsbot exited at start-up ({status}):\n{log}").into());
        }
        let last = match client.get(&url).send().await {
            Ok(r) if r.status() == StatusCode::OK => return Ok(()),
            Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
            Err(e) => e.to_string(),
        };
        if Instant::now() > deadline {
            return Err(format!("opsbot not ready within 30 s: {last}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// --- The load -----------------------------------------------------------------

#[derive(Default)]
struct WorkerResult {
    ok: u64,
    failed: u64,
    /// Every answered request's latency, ok or not, in µs.
    latencies_us: Vec<u64>,
    /// Titles of the declares the bot acknowledged, with the wall-clock
    /// time (unix µs) each was sent, to compare with its alert's `ts`.
    titles: Vec<(String, u64)>,
    /// Failure description → count.
    failures: HashMap<String, u64>,
}

impl WorkerResult {
    fn fail(&mut self, why: String) {
        self.failed += 1;
        *self.failures.entry(why).or_default() += 1;
    }

    fn merge(&mut self, other: WorkerResult) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.latencies_us.extend(other.latencies_us);
        self.titles.extend(other.titles);
        for (why, n) in other.failures {
            *self.failures.entry(why).or_default() += n;
        }
    }
}

/// One keep-alive HTTP/1.1 connection, as a Slack edge node would hold,
/// on plain hyper so the generator takes as little CPU as possible from
/// the bot it shares the machine with.
async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// The form Slack posts for a slash command.
fn slash_form(user: &str, text: &str) -> String {
    serde_urlencoded::to_string([
        ("token", "deprecated-verification-token"),
        ("team_id", "T0OPSBOT"),
        ("team_domain", "opsbot-sandbox"),
        ("channel_id", "C0GENERAL"),
        ("channel_name", "general"),
        ("user_id", user),
        ("user_name", "someone"),
        ("command", "/incident"),
        ("text", text),
        ("response_url", "https://hooks.slack.com/commands/T0OPSBOT/1/x"),
        ("trigger_id", "1.2.3"),
    ])
    .expect("a form of strings encodes")
}

fn unix_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Sends declares back to back on one connection until `deadline`; a
/// request in flight at the deadline is finished and counted.
async fn worker(id: usize, addr: SocketAddr, deadline: Instant) -> WorkerResult {
    let mut result = WorkerResult::default();
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    let user = USERS[id % USERS.len()];
    let host = addr.to_string();
    let mut seq = 0u64;
    while Instant::now() < deadline {
        let sender = match &mut conn {
            Some(sender) => sender,
            None => match connect(addr).await {
                Ok(sender) => conn.insert(sender),
                Err(e) => {
                    result.fail(format!("cannot connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        seq += 1;
        let title = format!("{TITLE_PREFIX}{id:03}-{seq:07}");
        let body = slash_form(user, &format!("p1 {title}"));
        let sent_unix_us = unix_micros();
        let ts = (sent_unix_us / 1_000_000) as i64;
        let request = Request::post("/slack/commands")
            .header(header::HOST, &host)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", sign(SIGNING_SECRET.as_bytes(), ts, body.as_bytes()))
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        let sent = Instant::now();
        let answer = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        }
        .await;
        let took = sent.elapsed().as_micros() as u64;
        match answer {
            Ok((status, body)) => {
                result.latencies_us.push(took);
                let text = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["text"].as_str().map(str::to_owned));
                match text {
                    Some(text) if status == StatusCode::OK && text.contains("declared") => {
                        result.ok += 1;
                        result.titles.push((title, sent_unix_us));
                    }
                    _ => {
                        let shown: String = String::from_utf8_lossy(&body).chars().take(120).collect();
                        result.fail(format!("HTTP {}: {shown}", status.as_u16()));
                    }
                }
            }
            Err(e) => {
                // A connection is unusable after a transport error.
                conn = None;
                result.fail(format!("transport error: {e}"));
            }
        }
    }
    result
}

// --- The drain ----------------------------------------------------------------

async fn outbox_len(redis: &mut redis::aio::MultiplexedConnection) -> Result<u64> {
    Ok(redis::cmd("XLEN").arg(format!("{REDIS_PREFIX}:outbox")).query_async(redis).await?)
}

/// Waits until the outbox stream is empty (entries leave it once delivered
/// or dead-lettered), up to [`DRAIN_LIMIT`]; how long that took, counted
/// from the end of the load. Only Redis is polled: listing the fake's
/// messages clones all of them under its lock and would slow the very
/// deliveries being waited for.
async fn drain(redis: &mut redis::aio::MultiplexedConnection, load_stopped: Instant) -> Result<Option<Duration>> {
    loop {
        if outbox_len(redis).await? == 0 {
            return Ok(Some(load_stopped.elapsed()));
        }
        if load_stopped.elapsed() > DRAIN_LIMIT {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct AlertCheck {
    top_level: usize,
    replies: usize,
    missing: usize,
    duplicates: usize,
    /// Alerts whose title no acknowledged declare of this run had.
    strangers: usize,
    /// Declare sent → alert posted, in µs, sorted.
    lags_us: Vec<u64>,
    last_posted_unix_us: Option<u64>,
}

/// Matches the top-level alerts back to the acknowledged declares by
/// title: each must be there exactly once.
fn check_alerts(fake: &FakeSlack, declared: &[(String, u64)]) -> AlertCheck {
    let sent_at: HashMap<&str, u64> = declared.iter().map(|(t, at)| (t.as_str(), *at)).collect();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut check = AlertCheck {
        top_level: 0,
        replies: 0,
        missing: 0,
        duplicates: 0,
        strangers: 0,
        lags_us: Vec::with_capacity(declared.len()),
        last_posted_unix_us: None,
    };
    for m in fake.messages(ALERTS_CHANNEL) {
        if m.thread_ts.is_some() {
            check.replies += 1;
            continue;
        }
        check.top_level += 1;
        // The alert's text is "P1 INC-n: <title> (declared)".
        let title = m.text.split_whitespace().find(|w| w.starts_with(TITLE_PREFIX));
        match title.and_then(|t| sent_at.get_key_value(t)) {
            Some((title, sent_us)) => {
                *seen.entry(title).or_default() += 1;
                if let Some(posted_us) = ts_micros(&m.ts) {
                    check.lags_us.push(posted_us.saturating_sub(*sent_us));
                    check.last_posted_unix_us = check.last_posted_unix_us.max(Some(posted_us));
                }
            }
            None => check.strangers += 1,
        }
    }
    check.lags_us.sort_unstable();
    check.missing = sent_at.len() - seen.len();
    check.duplicates = seen.values().map(|n| n - 1).sum();
    check
}

/// A Slack ts, "seconds.micros", as unix µs.
fn ts_micros(ts: &str) -> Option<u64> {
    let (secs, micros) = ts.split_once('.')?;
    Some(secs.parse::<u64>().ok()? * 1_000_000 + micros.parse::<u64>().ok()?)
}

// --- Measuring ----------------------------------------------------------------

fn fake_calls(fake: &FakeSlack) -> usize {
    FAKE_METHODS.iter().map(|m| fake.calls(m)).sum()
}

/// A `kB` line of `/proc/<pid>/status`, e.g. `VmRSS:`.
fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(field))?.split_whitespace().next()?.parse().ok()
}

/// Samples the bot's `VmRSS` every 100 ms on a plain thread, off the
/// runtimes being measured.
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("rss-sampler".into())
            .spawn(move || {
                let mut peak = 0;
                while !flag.load(Ordering::Relaxed) {
                    peak = peak.max(proc_status_kb(pid, "VmRSS:").unwrap_or(0));
                    std::thread::sleep(Duration::from_millis(100));
                }
                peak
            })
            .expect("a thread starts");
        RssSampler { stop, thread }
    }

    /// The peak VmRSS seen, in kB.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// CPU seconds (user + system) used so far, per party, and by the whole
/// machine: what others ran meanwhile (a build, a test) and what the
/// hypervisor took (steal) skew the figures, so the report shows both.
#[derive(Default)]
struct CpuTimes {
    bot: f64,
    redis: f64,
    load: f64,
    fake: f64,
    machine: f64,
    steal: f64,
}

impl CpuTimes {
    fn take(bot_pid: u32, redis_pid: u32) -> CpuTimes {
        let mut times = CpuTimes {
            bot: stat_cpu(&format!("/proc/{bot_pid}/stat")).map_or(0.0, |(_, s)| s),
            redis: stat_cpu(&format!("/proc/{redis_pid}/stat")).map_or(0.0, |(_, s)| s),
            ..CpuTimes::default()
        };
        if let Some((busy, steal)) = machine_cpu() {
            (times.machine, times.steal) = (busy, steal);
        }
        // This process's threads, told apart by their runtime's name.
        for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
            let Some((name, secs)) = stat_cpu(&task.path().join("stat").to_string_lossy()) else { continue };
            if name.starts_with("fake-slack") {
                times.fake += secs;
            } else if name.starts_with("load-gen") {
                times.load += secs;
            }
        }
        times
    }

    fn since(&self, before: &CpuTimes) -> CpuTimes {
        CpuTimes {
            bot: self.bot - before.bot,
            redis: self.redis - before.redis,
            load: self.load - before.load,
            fake: self.fake - before.fake,
            machine: self.machine - before.machine,
            steal: self.steal - before.steal,
        }
    }

    fn per_sec(&self, secs: f64) -> String {
        let ours = self.bot + self.redis + self.load + self.fake;
        format!(
            "bot {:.2}, redis {:.2}, load generator {:.2}, fake Slack {:.2}; machine {:.2} (others {:.2}), steal {:.2}",
            self.bot / secs,
            self.redis / secs,
            self.load / secs,
            self.fake / secs,
            self.machine / secs,
            ((self.machine - ours) / secs).max(0.0),
            self.steal / secs
        )
    }
}

/// A `stat` file's command name and user + system CPU seconds.
fn stat_cpu(path: &str) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // The name is in parentheses and may contain spaces; fields follow it.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // utime and stime are fields 14 and 15; `fields` starts at field 3.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((stat[open + 1..close].to_owned(), ticks as f64 / clock_ticks_per_sec()))
}

/// The machine's busy and stolen CPU seconds so far, from `/proc/stat`.
fn machine_cpu() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> =
        stat.lines().next()?.strip_prefix("cpu ")?.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal …
    let busy = ticks.first()? + ticks.get(1)? + ticks.get(2)? + ticks.get(5)? + ticks.get(6)?;
    let steal = *ticks.get(7)?;
    Some((busy as f64 / clock_ticks_per_sec(), steal as f64 / clock_ticks_per_sec()))
}

fn clock_ticks_per_sec() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The busiest Redis commands of the storm and its drain, per declare.
fn redis_summary(commandstats: &str, declares: u64) -> String {
    let mut stats: Vec<(&str, u64, f64)> = commandstats
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let field = |key: &str| rest.split(',').find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='));
            Some((name, field("calls")?.parse().ok()?, field("usec_per_call")?.parse().ok()?))
        })
        .collect();
    stats.sort_by_key(|s| std::cmp::Reverse(s.1));
    let total: u64 = stats.iter().map(|s| s.1).sum();
    let per = |n: u64| n as f64 / declares.max(1) as f64;
    let top: Vec<String> =
        stats.iter().take(10).map(|(name, calls, us)| format!("{name} {:.2} ({us:.1} µs)", per(*calls))).collect();
    format!("{total} commands, {:.1} per declare: {}", per(total), top.join(", "))
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

fn percentiles(sorted_us: &[u64]) -> String {
    let Some(max) = sorted_us.last() else { return "none".to_owned() };
    let at = |q: f64| ms(sorted_us[((sorted_us.len() - 1) as f64 * q).round() as usize]);
    format!("p50 {}, p90 {}, p99 {}, p99.9 {}, max {}", at(0.5), at(0.9), at(0.99), at(0.999), ms(*max))
}

fn ms(us: u64) -> String {
    match us {
        0..10_000 => format!("{:.2} ms", us as f64 / 1e3),
        10_000..10_000_000 => format!("{:.1} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// The bot's log colours even a file; the report shows plain text.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // Skip "ESC [ … letter".
            chars.by_ref().find(|c| c.is_ascii_alphabetic());
        } else {
            out.push(c);
        }
    }
    out
}

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}
