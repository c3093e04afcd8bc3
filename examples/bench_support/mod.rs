//! What the benchmarks in `examples/` share: the release binary started
//! as deployed and stopped gracefully, keep-alive connections to it, and
//! the measuring (RSS, CPU per party, Redis commands, latency figures).
//! Each benchmark includes it with `mod bench_support;`; it is not an
//! example of its own (Cargo only takes `examples/*.rs` and
//! `examples/*/main.rs`).

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::StatusCode;
use hyper_util::rt::TokioIo;
use opsbot_fake_slack::FakeSlack;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The benchmarks' own allocator, as the bot's: the fake Slack and the
/// load generator run in this process, and under glibc's malloc a quarter
/// of the fake's CPU went to allocating (a profile of a declare storm),
/// which the figures would then charge to the machine, not to the bot.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T, E = BoxError> = std::result::Result<T, E>;

/// Every method the fake serves, for the call count.
pub const FAKE_METHODS: [&str; 9] = [
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

// --- Processes ----------------------------------------------------------------

/// A child process stopped when dropped: SIGTERM first for the bot (it
/// should shut down gracefully), a plain kill otherwise.
pub struct Guard {
    pub name: &'static str,
    pub child: Child,
    graceful: bool,
    stopped: bool,
}

impl Guard {
    pub fn new(name: &'static str, child: Child, graceful: bool) -> Guard {
        Guard { name, child, graceful, stopped: false }
    }

    /// Stops the process: how long a graceful stop took, `None` if it had
    /// to be killed.
    pub fn stop(&mut self) -> Option<Duration> {
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
            eprintln!("{} ignored SIGTERM for 10 s; killing it", self.name);
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

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `cargo build --release --bin opsbot` (a no-op when it is up to date),
/// then the path of the binary.
pub fn build_bot() -> Result<PathBuf> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    // `cargo run` hands the example its package's variables
    // (CARGO_PKG_NAME, CARGO_MANIFEST_DIR, …). ring's build script asks to
    // rerun when those change, so passing them on rebuilds ring and all
    // above it (minutes) here, and again at the next build from a shell.
    const FROM_CARGO_RUN: [&str; 5] =
        ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_CRATE_NAME", "CARGO_BIN_NAME", "CARGO_PRIMARY_PACKAGE"];
    for (name, _) in std::env::vars_os() {
        if FROM_CARGO_RUN.iter().any(|prefix| name.to_string_lossy().starts_with(prefix)) {
            command.env_remove(name);
        }
    }
    let status = command
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

/// What the bot is configured with in every benchmark.
pub struct BotSetup<'a> {
    pub port: u16,
    pub signing_secret: &'a str,
    pub bot_token: &'a str,
    pub slack_api_url: &'a str,
    pub redis_url: &'a str,
    pub redis_prefix: &'a str,
    pub log_path: &'a Path,
}

/// `opsbot serve` as deployed, against the fake Slack and the private
/// Redis, its log appended to `log_path` (appended, so a replica the soak
/// restarts keeps the story of its earlier lives). Settings from the caller's shell must not
/// change what runs, so the optional ones are removed; a benchmark that
/// wants one sets it on the returned command.
pub fn bot_command(binary: &Path, setup: &BotSetup) -> Result<Command> {
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .env("OPSBOT_BIND", format!("127.0.0.1:{}", setup.port))
        .env("SLACK_SIGNING_SECRET", setup.signing_secret)
        .env("SLACK_BOT_TOKEN", setup.bot_token)
        .env("SLACK_API_URL", setup.slack_api_url)
        .env("REDIS_URL", setup.redis_url)
        .env("OPSBOT_REDIS_PREFIX", setup.redis_prefix)
        .env("RUST_LOG", "warn")
        .env_remove("SLACK_APP_TOKEN")
        .env_remove("OPSBOT_RUNBOOK")
        .env_remove("GITHUB_WEBHOOK_SECRET")
        .env_remove("OPSBOT_ALERTMANAGER_TOKEN")
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(setup.log_path)?);
    Ok(command)
}

pub async fn redis_pid(redis: &mut redis::aio::MultiplexedConnection) -> Result<u32> {
    let info: String = redis::cmd("INFO").arg("server").query_async(redis).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "redis INFO has no process_id".into())
}

/// Polls `GET /readyz` until it answers 200 (Redis reachable, fake Slack
/// accepted the token), or gives up with the bot's log.
pub async fn wait_until_ready(addr: SocketAddr, bot: &mut Guard, log_path: &Path) -> Result<()> {
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

/// The first lines of the bot's log (it runs with `RUST_LOG=warn`, so any
/// line is worth a look), without the colours.
pub fn print_bot_log(log_path: &Path) {
    let log = std::fs::read_to_string(log_path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    if !lines.is_empty() {
        println!("bot log (RUST_LOG=warn): {} lines, first ones:", lines.len());
        for line in lines.iter().take(5) {
            println!("  {}", strip_ansi(line));
        }
    }
}

// --- The load -----------------------------------------------------------------

/// One keep-alive HTTP/1.1 connection, as a Slack edge node would hold,
/// on plain hyper so the generator takes as little CPU as possible from
/// the bot it shares the machine with.
pub async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

pub fn unix_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// A Slack ts, "seconds.micros", as unix µs.
pub fn ts_micros(ts: &str) -> Option<u64> {
    let (secs, micros) = ts.split_once('.')?;
    Some(secs.parse::<u64>().ok()? * 1_000_000 + micros.parse::<u64>().ok()?)
}

// --- Measuring ----------------------------------------------------------------

pub fn fake_calls(fake: &FakeSlack) -> usize {
    FAKE_METHODS.iter().map(|m| fake.calls(m)).sum()
}

/// A `kB` line of `/proc/<pid>/status`, e.g. `VmRSS:`.
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(field))?.split_whitespace().next()?.parse().ok()
}

/// Samples the bot's `VmRSS` every 100 ms on a plain thread, off the
/// runtimes being measured.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl RssSampler {
    pub fn start(pid: u32) -> RssSampler {
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
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// CPU seconds (user + system) used so far, per party, and by the whole
/// machine: what others ran meanwhile (a build, a test) and what the
/// hypervisor took (steal) skew the figures, so the report shows both.
#[derive(Default)]
pub struct CpuTimes {
    pub bot: f64,
    pub redis: f64,
    pub load: f64,
    pub fake: f64,
    pub machine: f64,
    pub steal: f64,
}

impl CpuTimes {
    /// The load generator's and the fake's threads are told apart by their
    /// runtime's thread name: `load-gen…` and `fake-slack…`.
    pub fn take(bot_pid: u32, redis_pid: u32) -> CpuTimes {
        let mut times = CpuTimes {
            bot: stat_cpu(&format!("/proc/{bot_pid}/stat")).map_or(0.0, |(_, s)| s),
            redis: stat_cpu(&format!("/proc/{redis_pid}/stat")).map_or(0.0, |(_, s)| s),
            ..CpuTimes::default()
        };
        if let Some((busy, steal)) = machine_cpu() {
            (times.machine, times.steal) = (busy, steal);
        }
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

    pub fn since(&self, before: &CpuTimes) -> CpuTimes {
        CpuTimes {
            bot: self.bot - before.bot,
            redis: self.redis - before.redis,
            load: self.load - before.load,
            fake: self.fake - before.fake,
            machine: self.machine - before.machine,
            steal: self.steal - before.steal,
        }
    }

    pub fn per_sec(&self, secs: f64) -> String {
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

/// The busiest Redis commands of a run (after `CONFIG RESETSTAT`), per
/// `unit` of work (`declare`, `webhook`): what each one asked of Redis.
pub fn redis_summary(commandstats: &str, units: u64, unit: &str) -> String {
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
    let per = |n: u64| n as f64 / units.max(1) as f64;
    let top: Vec<String> =
        stats.iter().take(10).map(|(name, calls, us)| format!("{name} {:.2} ({us:.1} µs)", per(*calls))).collect();
    format!("{total} commands, {:.1} per {unit}: {}", per(total), top.join(", "))
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// The value at quantile `q` of sorted samples (nearest rank).
pub fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    let last = sorted.len().checked_sub(1)?;
    Some(sorted[(last as f64 * q).round() as usize])
}

pub fn percentiles(sorted_us: &[u64]) -> String {
    let Some(max) = sorted_us.last() else { return "none".to_owned() };
    let at = |q: f64| ms(percentile(sorted_us, q).unwrap_or(0));
    format!("p50 {}, p90 {}, p99 {}, p99.9 {}, max {}", at(0.5), at(0.9), at(0.99), at(0.999), ms(*max))
}

pub fn ms(us: u64) -> String {
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

pub fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}
