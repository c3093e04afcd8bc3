//! A private, real `redis-server` for opsbot's tests and load benchmark: one
//! process per test, on a free `127.0.0.1` port, with its data directory in
//! a temporary directory of its own, killed (and its directory removed) when
//! dropped. A test therefore never sees, or touches, another test's keys, and
//! tests run in parallel without sharing anything but the binary.
//!
//! Redis is real rather than faked because the store's guarantees (commit
//! checks in Lua, consumer groups, TTLs) are Redis's own; a fake would test
//! itself. `redis-server` must be on the `PATH` (`.ci/run` installs it).
//!
//! ```no_run
//! use opsbot_test_redis::{Persistence, RedisServer};
//!
//! let mut redis = RedisServer::start(Persistence::AppendOnly);
//! let url = redis.url(); // hand this to the code under test
//! redis.stop(); // Redis crashes...
//! redis.restart(); // ...and comes back on the same port, with its data
//! # drop(url);
//! ```

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a start may take before it is reported as a failure. Generous,
/// because a loaded CI machine starts processes slowly, and an append-only
/// file is replayed before Redis answers.
const START_DEADLINE: Duration = Duration::from_secs(10);

/// Whether the server keeps its data on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing on disk: the fastest, for tests that never restart the
    /// server and for measuring the bot rather than the disk.
    InMemory,
    /// An append-only file, fsynced on every write, as a production Redis
    /// for opsbot must keep: a server killed with SIGKILL and restarted
    /// comes back with every acknowledged write.
    AppendOnly,
}

/// A running private `redis-server`. Dropping it kills the process and
/// deletes its data directory.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    persistence: Persistence,
    /// The port of the primary this server replicates, if it is a replica.
    replica_of: Option<u16>,
    /// Its TLS port, beside the plain one, when it speaks TLS too.
    tls_port: Option<u16>,
    /// Whether it runs in cluster mode (see [`RedisServer::start_cluster`]).
    cluster: bool,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`.
    ///
    /// # Panics
    ///
    /// When it cannot: `redis-server` is not installed, or it did not
    /// answer within the deadline. The message says which.
    pub fn start(persistence: Persistence) -> RedisServer {
        RedisServer::try_start(persistence).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`RedisServer::start`] for callers that report errors instead of
    /// panicking, such as the benchmark.
    pub fn try_start(persistence: Persistence) -> io::Result<RedisServer> {
        RedisServer::launch(persistence, None, false, false)
    }

    fn launch(persistence: Persistence, replica_of: Option<u16>, tls: bool, cluster: bool) -> io::Result<RedisServer> {
        let dir = fresh_dir()?;
        if tls {
            make_certificates(&dir)?;
        }
        let mut server = RedisServer { port: 0, dir, persistence, replica_of, tls_port: None, cluster, child: None };
        // The port is free when the OS hands it out, but another process
        // can take it before redis-server binds it; redis-server then
        // exits at once, and another port is worth a try.
        let mut attempts = 3;
        loop {
            server.port = free_port()?;
            if tls {
                server.tls_port = Some(free_port()?);
            }
            match server.try_restart() {
                Err(e) if e.kind() == io::ErrorKind::AddrInUse && attempts > 1 => attempts -= 1,
                other => return other.map(|()| server),
            }
        }
    }

    /// A replica of `primary` (`replicaof`), in memory, answering `PING`
    /// once started; it has the primary's data once the first sync is done.
    ///
    /// # Panics
    ///
    /// As [`RedisServer::start`] does.
    pub fn start_replica_of(primary: &RedisServer) -> RedisServer {
        RedisServer::launch(Persistence::InMemory, Some(primary.port), false, false).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A server that also speaks TLS, on a port of its own, with a
    /// certificate for `127.0.0.1` signed by a certificate authority made
    /// for it ([`RedisServer::ca_pem`]), as a managed Redis with a private
    /// CA is. The certificates are made with the `openssl` command.
    ///
    /// # Panics
    ///
    /// As [`RedisServer::start`] does, or when `openssl` fails.
    pub fn start_tls() -> RedisServer {
        RedisServer::launch(Persistence::InMemory, None, true, false).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A Redis Cluster of one node that holds all 16,384 slots, in memory.
    /// A plain client can use it (no slot lives elsewhere, so there is no
    /// redirection to follow), and it enforces what Cluster demands of a
    /// client: every key of one command, transaction or script in one slot
    /// (`CROSSSLOT` otherwise).
    ///
    /// # Panics
    ///
    /// As [`RedisServer::start`] does, or when the cluster does not come up.
    pub fn start_cluster() -> RedisServer {
        RedisServer::launch(Persistence::InMemory, None, false, true).unwrap_or_else(|e| panic!("{e}"))
    }

    /// `rediss://127.0.0.1:<tls port>/` of a [`RedisServer::start_tls`] server.
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port.map(|port| format!("rediss://127.0.0.1:{port}/"))
    }

    /// The PEM of the certificate authority that signed its TLS certificate.
    pub fn ca_pem(&self) -> io::Result<Vec<u8>> {
        std::fs::read(self.dir.join("ca.pem"))
    }

    /// The port it listens on (on 127.0.0.1), the same across restarts.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`, for a Redis client or `REDIS_URL`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server with SIGKILL, as a crash or an OOM kill would:
    /// it gets no chance to flush anything, so only what
    /// [`Persistence::AppendOnly`] already put on disk survives. Does
    /// nothing if it is not running.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            // Reaped before returning so the port is free for a restart.
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and data directory (killing
    /// it first if it is still running), and waits until it answers `PING`:
    /// a Redis that comes back. With [`Persistence::AppendOnly`] it has its
    /// data back; with [`Persistence::InMemory`] it is empty.
    ///
    /// # Panics
    ///
    /// As [`RedisServer::start`] does.
    pub fn restart(&mut self) {
        self.try_restart().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`RedisServer::restart`], returning the error instead of panicking.
    pub fn try_restart(&mut self) -> io::Result<()> {
        self.stop();
        let log_path = self.dir.join("redis.log");
        let log = File::options().create(true).append(true).open(&log_path)?;
        let persistence: &[&str] = match self.persistence {
            Persistence::InMemory => &["--appendonly", "no"],
            Persistence::AppendOnly => &["--appendonly", "yes", "--appendfsync", "always"],
        };
        let mut options: Vec<String> = match self.replica_of {
            Some(port) => vec!["--replicaof".into(), "127.0.0.1".into(), port.to_string()],
            None => Vec::new(),
        };
        if self.cluster {
            let nodes = self.dir.join("nodes.conf").to_string_lossy().into_owned();
            options.extend(["--cluster-enabled".into(), "yes".into(), "--cluster-config-file".into(), nodes]);
        }
        if let Some(tls_port) = self.tls_port {
            let file = |name: &str| self.dir.join(name).to_string_lossy().into_owned();
            options.extend([
                "--tls-port".into(),
                tls_port.to_string(),
                "--tls-cert-file".into(),
                file("server.pem"),
                "--tls-key-file".into(),
                file("server.key"),
                "--tls-ca-cert-file".into(),
                file("ca.pem"),
                "--tls-auth-clients".into(),
                "no".into(),
            ]);
        }
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(&options)
            // No RDB snapshots: they would fork a copy of the server at
            // unpredictable moments, and the append-only file is the
            // durability that is being tested.
            .args(["--save", ""])
            .args(persistence)
            .arg("--dir")
            .arg(&self.dir)
            // Redis logs to stdout; a file keeps test output clean and still
            // explains a server that would not start.
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| {
                let why = "redis-server must be installed and on the PATH (.ci/run installs it)";
                io::Error::new(e.kind(), format!("cannot run redis-server: {e}; {why}"))
            })?;
        let child = self.child.insert(child);
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = child.try_wait()? {
                self.child = None;
                let log = log_tail(&log_path);
                // Only Redis's log says why it exited; this kind is what
                // lets `try_start` tell a lost port race from a real failure.
                let kind = if log.contains("Address already in use") {
                    io::ErrorKind::AddrInUse
                } else {
                    io::ErrorKind::Other
                };
                let port = self.port;
                let message = format!("redis-server on port {port} exited ({status}) before answering PING:\n{log}");
                return Err(io::Error::new(kind, message));
            }
            if Instant::now() > deadline {
                self.stop();
                // The log goes with the directory when the server is
                // dropped, so what it says is copied into the message.
                let (port, secs, log) = (self.port, START_DEADLINE.as_secs(), log_tail(&log_path));
                let message = format!(
                    "redis-server on port {port} did not answer PING within {secs} s; is redis-server installed \
                     and working?\n{log}"
                );
                return Err(io::Error::new(io::ErrorKind::TimedOut, message));
            }
            if answers_as(self.port, child.id()) {
                return if self.cluster { self.take_every_slot() } else { Ok(()) };
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl RedisServer {
    /// Gives this cluster node every slot, unless its `nodes.conf` (a
    /// restart) already did, and waits until the cluster says it is `ok`.
    fn take_every_slot(&mut self) -> io::Result<()> {
        let timeout = Duration::from_secs(2);
        let info = command(self.port, &["CLUSTER", "INFO"], timeout)?;
        if !info.contains("cluster_slots_assigned:16384") {
            let answer = command(self.port, &["CLUSTER", "ADDSLOTSRANGE", "0", "16383"], timeout)?;
            if !answer.starts_with("+OK") {
                return Err(io::Error::other(format!("CLUSTER ADDSLOTSRANGE answered {answer:?}")));
            }
        }
        let deadline = Instant::now() + START_DEADLINE;
        while !command(self.port, &["CLUSTER", "INFO"], timeout)?.contains("cluster_state:ok") {
            if Instant::now() > deadline {
                self.stop();
                return Err(io::Error::new(io::ErrorKind::TimedOut, "the one-node cluster did not reach state ok"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Sentinel watching one primary under a name, on a free port of
/// 127.0.0.1, quick to decide (a primary silent for a second is down);
/// killed, and its directory removed, when dropped.
#[derive(Debug)]
pub struct RedisSentinel {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisSentinel {
    /// Starts a Sentinel watching `primary` as `master`, with `quorum`
    /// Sentinels needed to agree it is down.
    ///
    /// # Panics
    ///
    /// When it cannot start, as [`RedisServer::start`] does.
    pub fn start(master: &str, primary: &RedisServer, quorum: u32) -> RedisSentinel {
        let start = || -> io::Result<RedisSentinel> {
            let dir = fresh_dir()?;
            let port = free_port()?;
            // Sentinel rewrites its configuration file, so it is its own.
            let conf = dir.join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor {master} 127.0.0.1 {} {quorum}\n\
                     sentinel down-after-milliseconds {master} 1000\nsentinel failover-timeout {master} 3000\n",
                    dir.display(),
                    primary.port
                ),
            )?;
            let log = File::create(dir.join("sentinel.log"))?;
            let child = Command::new("redis-server")
                .arg(&conf)
                .arg("--sentinel")
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?;
            let pid = child.id();
            let sentinel = RedisSentinel { port, dir, child: Some(child) };
            let deadline = Instant::now() + START_DEADLINE;
            while !answers_as(port, pid) {
                if Instant::now() > deadline {
                    let log = log_tail(&sentinel.dir.join("sentinel.log"));
                    return Err(io::Error::new(io::ErrorKind::TimedOut, format!("Sentinel did not start:\n{log}")));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(sentinel)
        };
        start().unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The last lines of a server's log, which say why it failed.
fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// A certificate authority (`ca.pem`) and a server certificate for
/// 127.0.0.1 it signed (`server.pem`, `server.key`), in `dir`.
fn make_certificates(dir: &Path) -> io::Result<()> {
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n")?;
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    let steps: [Vec<&str>; 3] = [
        [
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=opsbot test CA"],
        ]
        .concat(),
        [&["req"][..], &ec, &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"]].concat(),
        vec![
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    ];
    for args in steps {
        let out = Command::new("openssl").args(&args).current_dir(dir).output().map_err(|e| {
            io::Error::new(e.kind(), format!("cannot run openssl: {e}; it must be on the PATH (.ci/run installs it)"))
        })?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(io::Error::other(format!("openssl {} failed: {why}", args.join(" "))));
        }
    }
    Ok(())
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?.port())
}

/// A new, empty directory for one server's files. Empty matters: a directory
/// left by a killed test process whose pid came round again would otherwise
/// hand its old append-only file, and its keys, to a new server.
fn fresh_dir() -> io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("opsbot-test-redis-{}-{n}", std::process::id()));
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Whether the server on `port` is up and is the process `pid`. Accepting
/// connections is not enough: while Redis replays an append-only file it
/// answers `-LOADING`, and if another process took the port first (another
/// test's server, even), that one would answer instead of ours.
fn answers_as(port: u16, pid: u32) -> bool {
    let ours = || -> io::Result<bool> {
        // Short: a squatter that accepts and never answers must not hold
        // up noticing that our server has exited.
        let timeout = Duration::from_millis(500);
        Ok(command(port, &["PING"], timeout)? == "+PONG\r\n"
            && command(port, &["INFO", "server"], timeout)?.contains(&format!("\r\nprocess_id:{pid}\r\n")))
    };
    ours().unwrap_or(false)
}

/// Sends one command as a RESP array and returns the raw reply. Enough RESP
/// for a health check and the crate's tests: simple strings, errors,
/// integers and bulk strings, not arrays.
fn command(port: u16, args: &[&str], timeout: Duration) -> io::Result<String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request += &format!("${}\r\n{arg}\r\n", arg.len());
    }
    stream.write_all(request.as_bytes())?;
    let mut reply = Vec::new();
    let mut buf = [0; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        reply.extend_from_slice(&buf[..n]);
        let Some(line_end) = reply.windows(2).position(|w| w == b"\r\n") else { continue };
        let complete = match reply[0] {
            b'$' => {
                let len: i64 = std::str::from_utf8(&reply[1..line_end])
                    .ok()
                    .and_then(|l| l.parse().ok())
                    .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad bulk length"))?;
                len < 0 || reply.len() >= line_end + 2 + len as usize + 2
            }
            _ => true,
        };
        if complete {
            return String::from_utf8(reply).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(port: u16, args: &[&str]) -> String {
        super::command(port, args, Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn a_one_node_cluster_holds_every_slot_and_refuses_keys_from_two() {
        let redis = RedisServer::start_cluster();
        assert!(command(redis.port(), &["CLUSTER", "INFO"]).contains("cluster_slots_assigned:16384"));
        assert_eq!(command(redis.port(), &["MSET", "{a}:1", "x", "{a}:2", "y"]), "+OK\r\n");
        assert!(command(redis.port(), &["MSET", "a:1", "x", "b:2", "y"]).starts_with("-CROSSSLOT"));
    }

    #[test]
    fn starts_on_a_free_port_and_answers_ping() {
        let redis = RedisServer::start(Persistence::InMemory);
        assert_ne!(redis.port(), 0);
        assert_eq!(redis.url(), format!("redis://127.0.0.1:{}/", redis.port()));
        assert_eq!(command(redis.port(), &["PING"]), "+PONG\r\n");
    }

    #[test]
    fn servers_do_not_share_keys() {
        let a = RedisServer::start(Persistence::InMemory);
        let b = RedisServer::start(Persistence::InMemory);
        assert_ne!(a.port(), b.port());
        assert_eq!(command(a.port(), &["SET", "k", "a"]), "+OK\r\n");
        assert_eq!(command(b.port(), &["GET", "k"]), "$-1\r\n");
    }

    #[test]
    fn append_only_keeps_data_across_a_kill_and_restart() {
        let mut redis = RedisServer::start(Persistence::AppendOnly);
        let port = redis.port();
        assert_eq!(command(port, &["SET", "incident", "INC-1"]), "+OK\r\n");
        redis.stop();
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(), "still listening after stop");
        redis.restart();
        assert_eq!(redis.port(), port);
        assert_eq!(command(port, &["GET", "incident"]), "$5\r\nINC-1\r\n");
    }

    #[test]
    fn in_memory_comes_back_empty() {
        let mut redis = RedisServer::start(Persistence::InMemory);
        assert_eq!(command(redis.port(), &["SET", "k", "v"]), "+OK\r\n");
        redis.restart();
        assert_eq!(command(redis.port(), &["GET", "k"]), "$-1\r\n");
    }

    #[test]
    fn drop_kills_the_server_and_removes_its_directory() {
        let redis = RedisServer::start(Persistence::AppendOnly);
        let (port, dir) = (redis.port(), redis.dir.clone());
        assert!(dir.is_dir());
        drop(redis);
        assert!(TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err(), "still listening after drop");
        assert!(!dir.exists(), "{} left behind", dir.display());
    }

    #[test]
    fn a_taken_port_is_reported_not_mistaken_for_the_server() {
        let mut redis = RedisServer::start(Persistence::InMemory);
        redis.stop();
        // Listening, so connections succeed, but it never answers.
        let _squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, redis.port())).unwrap();
        let error = redis.try_restart().unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse, "{error}");
    }
}
