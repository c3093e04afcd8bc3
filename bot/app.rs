//! Assembling and running the bot: the engine, the HTTP server, the outbox,
//! hook and timer workers, the scheduler and the heartbeat, each given only
//! what it uses, with a graceful shutdown bounded in time: stop accepting,
//! finish in-flight requests, stop the workers after their current attempt,
//! then say this replica left, so other replicas take over at once what it
//! still holds.

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::config::HookSecrets;
use crate::engine::Engine;
use crate::hooks::worker::{HookSettings, HookWorker};
use crate::inbound::socket_mode::SocketModeSettings;
use crate::outbox::{self, Outbox, WorkerSettings};
use crate::slack::client::SlackApi;
use crate::state::AppState;
use crate::store::Store;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Knobs that tests and the sandbox turn; production uses the defaults.
pub struct AppOptions {
    pub clock: Arc<dyn Clock>,
    pub worker: WorkerSettings,
    /// How often due timers are looked for.
    pub timer_tick: Duration,
    /// How Socket Mode connections are kept (with `SLACK_APP_TOKEN`).
    pub socket_mode: SocketModeSettings,
    /// How many requests may be in flight on the work routes, and for how long.
    pub admission: crate::admission::Admission,
}

impl AppOptions {
    pub fn for_config(config: &Config) -> AppOptions {
        let clock: Arc<dyn Clock> =
            if config.sandbox { Arc::new(crate::clock::OffsetClock::default()) } else { Arc::new(SystemClock) };
        AppOptions {
            clock,
            worker: WorkerSettings::new(config.replica.clone()),
            timer_tick: Duration::from_millis(500),
            socket_mode: SocketModeSettings::default(),
            admission: crate::admission::Admission::new(config.max_in_flight, crate::admission::REQUEST_TIMEOUT),
        }
    }
}

/// A running bot.
pub struct App {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    replica: String,
    /// How long [`App::stop`] waits for requests and deliveries in flight.
    shutdown_grace: Duration,
    shutdown: CancellationToken,
    /// The server and the workers, by name for the log.
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    /// Stopped last, so the replica is alive until its work is done.
    heartbeat_stop: CancellationToken,
    heartbeat: JoinHandle<()>,
}

impl App {
    pub async fn start(config: &Config, options: AppOptions) -> anyhow::Result<App> {
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("cannot listen on {}", config.bind))?;
        let addr = listener.local_addr()?;
        let store = match &config.redis_url {
            Some(url) => {
                let store = Store::connect_with_ca(url.expose(), &config.redis_prefix, config.redis_ca.as_deref())
                    .context("REDIS_URL")?;
                match config.redis_wait {
                    Some((replicas, timeout)) => store.wait_for_replicas(replicas, timeout),
                    None => store,
                }
            }
            None => Store::memory(),
        };
        if !store.is_persistent() {
            tracing::warn!(
                "REDIS_URL is not set: using the embedded in-memory store. NOTHING PERSISTS across restarts, and only ONE replica may run. Set REDIS_URL for production."
            );
        }
        // The sandbox is this server's own Slack and GitHub; a configured
        // bot talks to the ones it was given.
        let base = format!("http://127.0.0.1:{}", addr.port());
        let sandbox = config.sandbox.then(|| crate::sandbox::Fakes::new(options.clock.as_ref()));
        let (api_url, github, github_webhook_secret) = match &sandbox {
            Some(fakes) => {
                if config.github.auth.is_some() || config.github_webhook_secret.is_some() {
                    tracing::warn!("sandbox mode: the GITHUB_* settings are ignored; /pipeline and the GitHub webhook use the sandbox's own GitHub");
                }
                let secret = fakes.github.webhook_secret().clone();
                (format!("{base}/sandbox/api"), fakes.github.settings(&base), Some(secret))
            }
            None => (config.slack_api_url.clone(), config.github.clone(), config.github_webhook_secret.clone()),
        };
        let slack = SlackApi::new(&api_url, &config.bot_token)?;
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let github = crate::github::GitHub::new(&github, options.clock.clone(), metrics.clone());
        let runbook = match &sandbox {
            Some(_) => crate::sandbox::with_rotation(config.runbook.clone()),
            None => config.runbook.clone(),
        };
        let engine = Arc::new(Engine::new(
            store.clone(),
            Arc::new(runbook),
            options.clock.clone(),
            metrics,
            github.context("GitHub")?,
            crate::slack::usergroups::UserGroups::new(slack.clone(), options.clock.clone()),
        ));
        let hooks = HookSecrets { github: github_webhook_secret, alertmanager: config.alertmanager_token.clone() };
        let socket_mode = config.app_token.is_some();
        let mut state = AppState::new(engine.clone(), slack.clone(), config.signing_secret.clone(), socket_mode, hooks);
        state.admission = options.admission.clone();
        let state = Arc::new(state);
        let shutdown = CancellationToken::new();
        let mut router = crate::routes::router(state.clone());
        if let Some(fakes) = sandbox {
            router = router.merge(crate::sandbox::router(fakes, state.clone(), base, shutdown.clone()));
            tracing::warn!("no Slack is configured: sandbox mode. Open http://127.0.0.1:{}/sandbox/ to try opsbot in a local Slack.", addr.port());
        }
        // Alive before any worker reads: a replica restarted under its name
        // keeps what it held, rather than lose it to one that saw it silent.
        // The name the workers hold entries under is the one that beats.
        let replica = options.worker.consumer.clone();
        let (every, lasts) = (options.worker.heartbeat_every, options.worker.heartbeat_lasts);
        let liveness = Arc::new(crate::heartbeat::Liveness::default());
        crate::heartbeat::beat(&store.replicas, &replica, lasts, &liveness).await;
        let heartbeat_stop = CancellationToken::new();
        let heartbeat = tokio::spawn(crate::heartbeat::run(
            store.replicas.clone(),
            replica.clone(),
            (every, lasts),
            liveness.clone(),
            heartbeat_stop.clone(),
        ));
        let stop = shutdown.clone();
        let server = tokio::spawn(async move {
            let served = axum::serve(listener, router).with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(e) = served.await {
                tracing::error!(error = %e, "server stopped with an error");
            }
        });
        let hook_worker = HookWorker {
            inbox: store.inbox.clone(),
            engine: engine.clone(),
            metrics: engine.metrics.clone(),
            settings: HookSettings::like(&options.worker),
        };
        let hook_worker = tokio::spawn(crate::hooks::worker::run(hook_worker, shutdown.clone()));
        let outbox = Outbox {
            queue: store.outbox.clone(),
            subjects: store.subjects.clone(),
            slack: slack.clone(),
            github: engine.github.clone(),
            timers: store.timers.clone(),
            runbook: engine.runbook.clone(),
            clock: options.clock,
            metrics: engine.metrics.clone(),
            liveness,
            settings: options.worker,
        };
        let worker = tokio::spawn(outbox::run(outbox, shutdown.clone()));
        let socket_mode = config.app_token.clone().map(|token| {
            tokio::spawn(crate::inbound::socket_mode::run(state.clone(), token, options.socket_mode, shutdown.clone()))
        });
        let timers = tokio::spawn(crate::timers::run(engine.clone(), options.timer_tick, shutdown.clone()));
        let roster = tokio::spawn(crate::roster::run(
            engine.roster.clone(),
            store.clone(),
            engine.clock.clone(),
            shutdown.clone(),
        ));
        let epoch = tokio::spawn(crate::epoch::run(
            store.clone(),
            slack,
            engine.runbook.channels.team.clone(),
            shutdown.clone(),
        ));
        let home = tokio::spawn(crate::home::run(state.home.clone(), shutdown.clone()));
        let scheduler = tokio::spawn(crate::scheduler::run(engine, shutdown.clone()));
        tracing::info!(%addr, replica = %config.replica, "opsbot is listening");
        let mut tasks = vec![("server", server)];
        if let Some(socket_mode) = socket_mode {
            tasks.push(("Socket Mode", socket_mode));
        }
        tasks.extend([
            ("outbox worker", worker),
            ("hook worker", hook_worker),
            ("timer worker", timers),
            ("scheduler", scheduler),
            ("on-call overrides reloader", roster),
            ("epoch watcher", epoch),
            ("Home publisher", home),
        ]);
        Ok(App {
            addr,
            state,
            replica,
            shutdown_grace: config.shutdown_grace,
            shutdown,
            tasks,
            heartbeat_stop,
            heartbeat,
        })
    }

    /// Stops taking work (new connections, new entries), lets requests and
    /// deliveries in flight finish for up to `shutdown_grace`, abandons what
    /// has not by then, and says this replica left, so other replicas take
    /// over at once what it still holds (queued entries, and any it
    /// abandoned: those look in Slack before posting again).
    pub async fn stop(self) {
        self.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + self.shutdown_grace;
        for (name, mut task) in self.tasks {
            match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "{name} failed"),
                Err(_) => {
                    tracing::warn!(grace = ?self.shutdown_grace, "{name} had not finished in time; abandoned");
                    task.abort();
                }
            }
        }
        self.heartbeat_stop.cancel();
        let _ = self.heartbeat.await;
        crate::heartbeat::leave(&self.state.store.replicas, &self.replica).await;
        tracing::info!("opsbot stopped");
    }

    /// Stops everything at once, as a SIGKILL would: nothing in flight
    /// finishes, nothing is recorded, and the heartbeat is not withdrawn but
    /// lapses. For tests of what other replicas do after a crash.
    pub fn kill(self) {
        for (_, task) in &self.tasks {
            task.abort();
        }
        self.heartbeat.abort();
    }
}

/// `opsbot serve`: runs until SIGTERM or Ctrl-C, then stops within
/// `shutdown_grace` (a second signal stops at once).
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let app = App::start(&config, AppOptions::for_config(&config)).await?;
    shutdown_signal().await;
    tracing::info!(grace = ?config.shutdown_grace, "shutting down: finishing what is in flight");
    tokio::select! {
        () = app.stop() => {}
        () = shutdown_signal() => tracing::warn!("stopped at once by a second signal"),
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
