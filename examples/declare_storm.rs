//! `declare_storm`: how many `/incident p1 …` declares per second the real
//! `opsbot serve` binary acknowledges, how fast, in how much memory, and
//! whether every declared incident's alert then reaches Slack exactly once.
//!
//! ```text
//! cargo run --release --example declare_storm
//! cargo run --release --example declare_storm -- --seconds 15 --connections 64
//! cargo run --release --example declare_storm -- --history 1000000
//! cargo run --release --example declare_storm -- --bot /tmp/opsbot-before
//! ```
//!
//! `--history N` first stores N resolved incidents, declared over the last
//! year, as the bot would have left them (`bench_support/history.rs`), and
//! prints how long that took; `/incident list` and `/incident stats` are
//! timed before and after the storm in every run.
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
//!   its declare being acknowledged to its post (the fake's `ts` is
//!   wall-clock). The run fails (exit code 1) unless there is exactly one
//!   alert per acknowledged declare;
//! - declares fully delivered per second, end to end: every acknowledged
//!   declare's messages (alert, page, playbook, link) in Slack, over the
//!   time from the first request to the outbox being empty;
//! - where the CPU went (bot, Redis, load generator, fake Slack), the bot's
//!   CPU per fully delivered declare, and what Redis was asked per declare
//!   (`INFO commandstats`, reset just before the load: everything, the
//!   commands scripts run included), to tell which of them is the limit.
//!
//! Everything shares one machine, so on few cores the parties compete for
//! CPU: read the throughput together with the CPU line.

mod bench_support;
#[path = "bench_support/history.rs"]
mod history;

use bench_support::{
    bot_command, build_bot, connect, cpu_model, fake_calls, free_port, mib, percentiles, print_bot_log, proc_status_kb,
    redis_pid, redis_summary, ts_micros, unix_micros, wait_until_ready, BotSetup, CpuTimes, Guard, Result, RssSampler,
    FAKE_METHODS,
};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{header, Request, StatusCode};
use opsbot::slack::signature::sign;
use opsbot_fake_slack::FakeSlack;
use opsbot_test_redis::{Persistence, RedisServer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

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

struct Args {
    seconds: u64,
    connections: usize,
    /// Resolved incidents stored before the load (`--history`).
    history: u64,
    /// A binary to measure instead of building this tree's (an earlier
    /// build kept aside), so that two versions run on the same machine
    /// minutes apart.
    bot: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Args> {
    let mut args = Args { seconds: 15, connections: 64, history: 0, bot: None };
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
            "--history" => args.history = value()?.parse()?,
            "--bot" => args.bot = Some(value()?.into()),
            "-h" | "--help" => {
                println!(
                    "usage: cargo run --release --example declare_storm -- [--seconds 15] [--connections 64] \
                     [--history 0] [--bot PATH]"
                );
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
    let binary = match &args.bot {
        Some(path) => path.clone(),
        None => build_bot()?,
    };
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
    // The bench measures the embedded runbook, without the webhook routes.
    let setup = BotSetup {
        port: bot_port,
        signing_secret: SIGNING_SECRET,
        bot_token: BOT_TOKEN,
        slack_api_url: &fake_server.api_url,
        redis_url: &redis_url,
        redis_prefix: REDIS_PREFIX,
        log_path: &log_path,
    };
    let child = bot_command(&binary, &setup)?.spawn().map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let bot = Guard::new("opsbot", child, true);

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
    let reads_before = with_history(args, addr, redis_url, bot_pid).await?;
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
    let reads_after = history::probe_reads(addr, SIGNING_SECRET, READ_PROBES).await?;
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
    println!("alert lag (declare acknowledged → alert in Slack): {}", percentiles(&alerts.lags_us));
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
    if let Some(empty) = outbox_empty_after {
        // Everything the declares owed Slack is there once the outbox is
        // empty: from the first request to then is the end-to-end time.
        let end_to_end = secs + empty.as_secs_f64();
        let whole = both(&cpu_load, &cpu_drain);
        let per = |cpu: f64| cpu * 1e3 / totals.ok.max(1) as f64;
        println!(
            "fully delivered: {:.0} declares/s end to end ({} in {end_to_end:.2} s); CPU per fully delivered declare: \
             bot {:.3} ms, redis {:.3} ms, fake Slack {:.3} ms, load generator {:.3} ms; others {:.2} of a core",
            totals.ok as f64 / end_to_end,
            totals.ok,
            per(whole.bot),
            per(whole.redis),
            per(whole.fake),
            per(whole.load),
            (whole.machine - (whole.bot + whole.redis + whole.load + whole.fake)).max(0.0) / end_to_end,
        );
    }
    println!("redis: peak memory {redis_peak}; {}", redis_summary(&commandstats, totals.ok, "declare"));
    for (when, probes) in [("before", &reads_before), ("after", &reads_after)] {
        for probe in probes {
            println!("{when} the storm, {}", probe.line());
        }
    }
    match stop_took {
        Some(d) => println!("bot stopped {:.2} s after SIGTERM", d.as_secs_f64()),
        None => println!("bot did NOT stop within 10 s of SIGTERM; killed"),
    }
    print_bot_log(log_path);
    Ok(totals.ok > 0
        && alerts.top_level as u64 == totals.ok
        && alerts.missing == 0
        && alerts.duplicates == 0
        && alerts.strangers == 0)
}

/// How many times each reading command is sent, before and after the storm.
const READ_PROBES: usize = 5;

/// Seeds `--history` resolved incidents (if any), then times `/incident
/// list` and `/incident stats` once the bot is up, before the storm.
async fn with_history(args: &Args, addr: SocketAddr, redis_url: &str, bot_pid: u32) -> Result<Vec<history::Probe>> {
    if args.history > 0 {
        let seeded = history::seed(redis_url, REDIS_PREFIX, args.history, chrono::Utc::now()).await?;
        println!(
            "history: {} resolved incidents over {} days seeded in {:.1} s; redis memory {}, bot RSS {}",
            seeded.incidents,
            history::HISTORY_DAYS,
            seeded.took.as_secs_f64(),
            history::redis_memory(redis_url).await?,
            mib(proc_status_kb(bot_pid, "VmRSS:").unwrap_or(0))
        );
    }
    history::probe_reads(addr, SIGNING_SECRET, READ_PROBES).await
}

/// Two periods' CPU times together.
fn both(a: &CpuTimes, b: &CpuTimes) -> CpuTimes {
    CpuTimes {
        bot: a.bot + b.bot,
        redis: a.redis + b.redis,
        load: a.load + b.load,
        fake: a.fake + b.fake,
        machine: a.machine + b.machine,
        steal: a.steal + b.steal,
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
    /// time (unix µs) each was acknowledged, to compare with its alert's
    /// `ts`: the lag people see after the bot answered them.
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
        let ts = (unix_micros() / 1_000_000) as i64;
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
                        result.titles.push((title, unix_micros()));
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
    /// Declare acknowledged → alert posted, in µs, sorted.
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
