//! The `opsbot` command line: `opsbot serve` runs the bot; `opsbot runbook
//! print` and `opsbot runbook check FILE` help a team write its own runbook;
//! `opsbot redis`, `opsbot outbox` and `opsbot report` work on its Redis.

use clap::{Parser, Subcommand};
use opsbot::config::{Config, ServeArgs};
use opsbot_handlers::incident::decide::STATS_WINDOW;
use opsbot_handlers::runbook::{self, Runbook};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc rather than glibc's malloc: under load glibc's took a quarter
/// to a third of the bot's CPU, and its per-thread arenas kept what a storm
/// had grown them to.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "opsbot",
    version,
    about = "The team's CI/CD runbook, live in Slack: incidents, escalation, checklists."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the bot: Slack endpoints, Redis-backed state and the outbox worker.
    Serve(ServeArgs),
    /// Write out or check a runbook file.
    #[command(subcommand)]
    Runbook(RunbookCommand),
    /// Operate on opsbot's Redis (REDIS_URL).
    #[command(subcommand)]
    Redis(RedisCommand),
    /// See and act on the outbox's dead letters: what Slack refused for
    /// good, or what waited too long (REDIS_URL).
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Print an incident's post-incident report as Markdown, read from Redis
    /// (REDIS_URL, OPSBOT_REDIS_PREFIX; targets from OPSBOT_RUNBOOK or the seed).
    Report {
        /// The incident: INC-42 or 42.
        id: String,
        /// Key prefix, as the bot uses it.
        #[arg(long, env = "OPSBOT_REDIS_PREFIX", default_value = "opsbot")]
        redis_prefix: String,
        /// The runbook whose targets to report against.
        #[arg(long, env = "OPSBOT_RUNBOOK")]
        runbook: Option<String>,
    },
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// The dead letters, newest first: entry, when, why and what.
    List {
        #[arg(long, env = "OPSBOT_REDIS_PREFIX", default_value = "opsbot")]
        redis_prefix: String,
    },
    /// Puts a dead letter's message back in the outbox, to be tried again.
    Retry {
        /// The entry, as `list` shows it.
        entry: String,
        #[arg(long, env = "OPSBOT_REDIS_PREFIX", default_value = "opsbot")]
        redis_prefix: String,
    },
    /// Forgets a dead letter.
    Drop {
        /// The entry, as `list` shows it.
        entry: String,
        #[arg(long, env = "OPSBOT_REDIS_PREFIX", default_value = "opsbot")]
        redis_prefix: String,
    },
}

#[derive(Subcommand)]
enum RedisCommand {
    /// Take on a Redis that lost opsbot's data (it came back empty, or is
    /// another database): numbering continues from what you give, and the
    /// replicas, which refuse to write meanwhile, write again by themselves.
    Adopt {
        /// Where a numbering continues, as it shows in Slack: `INC-43` makes
        /// the next incident INC-43. Repeat for RUN, ALR, DEP, HND, OVR, SWP.
        #[arg(long = "next", value_name = "ID", required = true)]
        next: Vec<String>,
        /// Key prefix, as the bot uses it.
        #[arg(long, env = "OPSBOT_REDIS_PREFIX", default_value = "opsbot")]
        redis_prefix: String,
    },
    /// Rebuild the per-day tallies `/incident stats` reads from the
    /// incidents themselves: after an upgrade from a version without them,
    /// or to repair one. Safe while the bot runs.
    RebuildTallies {
        /// How many UTC days to rebuild: today and the ones before it, at
        /// most 3660.
        #[arg(
            long,
            default_value_t = STATS_WINDOW.num_days(),
            value_parser = clap::value_parser!(i64).range(1..=MAX_REBUILD_DAYS)
        )]
        days: i64,
        /// Key prefix, as the bot uses it.
        #[arg(long, env = "OPSBOT_REDIS_PREFIX", default_value = "opsbot")]
        redis_prefix: String,
        /// The runbook whose targets the incidents are counted against, as
        /// the bot runs with.
        #[arg(long, env = "OPSBOT_RUNBOOK")]
        runbook: Option<String>,
    },
}

/// Ten years of days: far past any window, and a bound that keeps a typo
/// from walking back to the start of the calendar.
const MAX_REBUILD_DAYS: i64 = 3660;

#[derive(Subcommand)]
enum RunbookCommand {
    /// Write the default runbook (YAML) to stdout, to copy and edit.
    Print,
    /// Check a runbook file and report every mistake as FILE:LINE:COLUMN:
    /// message; exits 2 if there is any.
    Check {
        /// The runbook YAML to check.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Runbook(RunbookCommand::Print) => print_runbook(),
        Command::Runbook(RunbookCommand::Check { file }) => check_runbook(&file),
        Command::Report { id, redis_prefix, runbook } => print_report(&id, &redis_prefix, runbook.as_deref()),
        Command::Redis(RedisCommand::Adopt { next, redis_prefix }) => adopt(&next, &redis_prefix),
        Command::Redis(RedisCommand::RebuildTallies { days, redis_prefix, runbook }) => {
            rebuild_tallies(days, &redis_prefix, runbook.as_deref())
        }
        Command::Outbox(command) => outbox(command),
        Command::Serve(args) => {
            let config = match Config::from_env(&args) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("opsbot: {e}");
                    return ExitCode::from(2);
                }
            };
            opsbot::telemetry::init();
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("opsbot: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(opsbot::app::serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("opsbot: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Writes the embedded runbook byte for byte, so `print > f && check f` is
/// the team's starting point.
fn print_runbook() -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(Runbook::SEED_YAML.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // `opsbot runbook print | head` closing the pipe early is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("opsbot: cannot write the runbook: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Exit 0 with a one-line summary, or 2 with every mistake on stderr in the
/// `FILE:LINE:COLUMN: message` form that editors and CI logs link to.
fn check_runbook(file: &std::path::Path) -> ExitCode {
    let name = file.display();
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("{name}: cannot read: {e}");
            return ExitCode::from(2);
        }
    };
    match runbook::check(&text) {
        Ok(runbook::Checked { runbook: rb, warnings }) => {
            // Warnings go where errors go, in the same linkable form, but
            // do not fail the check: the runbook works as it is.
            for w in &warnings {
                eprintln!("{name}:{}:{}: warning: {}", w.line, w.column, w.message);
            }
            let warned = match warnings.len() {
                0 => String::new(),
                1 => ", 1 warning".to_owned(),
                n => format!(", {n} warnings"),
            };
            println!(
                "{name}: ok ({} roles, {} severities, {} checklists{warned})",
                rb.roles.len(),
                rb.severities.len(),
                rb.checklists.len()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{name}:{e}");
            }
            ExitCode::from(2)
        }
    }
}

/// `opsbot outbox list|retry|drop`: exit 2 for a letter that is not
/// there or a bad setting, 1 when Redis fails.
fn outbox(command: OutboxCommand) -> ExitCode {
    let prefix = match &command {
        OutboxCommand::List { redis_prefix } | OutboxCommand::Retry { redis_prefix, .. } => redis_prefix,
        OutboxCommand::Drop { redis_prefix, .. } => redis_prefix,
    };
    let (url, runtime) = match redis_and_runtime("the dead letters are in the bot's Redis") {
        Ok(both) => both,
        Err(code) => return code,
    };
    let done = runtime.block_on(async {
        let store = opsbot::store::Store::connect(&url, prefix)?;
        let outbox = &store.outbox;
        Ok::<_, opsbot::store::StoreError>(match &command {
            OutboxCommand::List { .. } => {
                let letters = outbox.dead_letters().await?;
                if letters.is_empty() {
                    println!("no dead letters");
                }
                // Newest first; a message that others hang under (an
                // incident's alert) is retried before them.
                for l in letters {
                    let what = opsbot_handlers::text::truncate(&l["effect"].to_string(), 120);
                    let at = l["at"].as_str().unwrap_or("-");
                    println!(
                        "{}\t{at}\t{}\t{what}",
                        l["entry"].as_str().unwrap_or("?"),
                        l["error"].as_str().unwrap_or("")
                    );
                }
                Ok(())
            }
            OutboxCommand::Retry { entry, .. } => match outbox.take_dead_letter(entry).await? {
                None => Err(format!("there is no dead letter {entry}")),
                Some(letter) => match outbox.retry_dead_letter(&letter).await? {
                    Ok(()) => {
                        println!("{entry}: back in the outbox");
                        Ok(())
                    }
                    Err(why) => {
                        // Not retried: the letter goes back where it was.
                        outbox.bury(letter).await?;
                        Err(format!("{entry} cannot be retried: {why}"))
                    }
                },
            },
            OutboxCommand::Drop { entry, .. } => match outbox.take_dead_letter(entry).await? {
                None => Err(format!("there is no dead letter {entry}")),
                Some(_) => {
                    println!("{entry}: dropped");
                    Ok(())
                }
            },
        })
    });
    match done {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(why)) => {
            eprintln!("opsbot: {why}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("opsbot: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `opsbot redis adopt --next INC-43 …`: exit 2 for a bad id or setting,
/// 1 when Redis fails.
fn adopt(next: &[String], prefix: &str) -> ExitCode {
    let mut numbers = Vec::new();
    for id in next {
        let parsed = id.split_once('-').and_then(|(kind, n)| Some((kind.to_ascii_uppercase(), n.parse::<u64>().ok()?)));
        match parsed {
            Some((kind, n)) if n > 0 && opsbot::store::NUMBERINGS.contains(&kind.as_str()) => numbers.push((kind, n)),
            _ => {
                let kinds = opsbot::store::NUMBERINGS.join(", ");
                eprintln!("opsbot: `{id}` is not an id such as INC-43 (the next number to hand out; kinds: {kinds})");
                return ExitCode::from(2);
            }
        }
    }
    let (url, runtime) = match redis_and_runtime("adopt works on the bot's Redis") {
        Ok(both) => both,
        Err(code) => return code,
    };
    let done = runtime.block_on(async { opsbot::store::Store::connect(&url, prefix)?.adopt(&numbers).await });
    match done {
        Ok(lines) => {
            for line in lines {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("opsbot: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `opsbot redis rebuild-tallies`: each day's tally, oldest first, one line
/// each, then a summary. Exit 2 for a bad setting, 1 when Redis fails or a
/// day kept changing under every attempt (running it again is as safe).
fn rebuild_tallies(days: i64, prefix: &str, runbook_path: Option<&str>) -> ExitCode {
    use opsbot::store::TallyRebuild;
    use opsbot_handlers::text::plural;
    let runbook = match runbook_or_seed(runbook_path) {
        Ok(runbook) => runbook,
        Err(code) => return code,
    };
    let (url, runtime) = match redis_and_runtime("the tallies are rebuilt in the bot's Redis") {
        Ok(both) => both,
        Err(code) => return code,
    };
    if let Err(why) = opsbot::store::check_url(&url) {
        eprintln!("opsbot: REDIS_URL: {why}");
        return ExitCode::from(2);
    }
    let mut window = opsbot_handlers::incident::stats::window(chrono::Utc::now(), days);
    window.reverse();
    let (mut rebuilt, mut incidents, mut unsettled) = (0u64, 0u64, 0u64);
    let done = runtime.block_on(async {
        let store = opsbot::store::Store::connect(&url, prefix)?;
        for day in &window {
            let day_name = day.format("%Y-%m-%d");
            match store.subjects.rebuild_incident_tally(*day, &runbook).await? {
                TallyRebuild::Rebuilt { incidents: n } => {
                    println!("{day_name}: {}", plural(n as u64, "incident", "incidents"));
                    rebuilt += 1;
                    incidents += n as u64;
                }
                TallyRebuild::KeptChanging { attempts } => {
                    println!("{day_name}: not rebuilt: its incidents changed during each of {attempts} attempts");
                    unsettled += 1;
                }
            }
        }
        Ok::<_, opsbot::store::StoreError>(())
    });
    if done.is_ok() {
        println!(
            "rebuilt the tallies of {rebuilt} of {} ({})",
            plural(window.len() as u64, "day", "days"),
            plural(incidents, "incident", "incidents")
        );
    }
    match done {
        Ok(()) if unsettled == 0 => ExitCode::SUCCESS,
        Ok(()) => {
            let days = plural(unsettled, "day was", "days were");
            eprintln!("opsbot: {days} not rebuilt, their incidents busy with commits; run it again later");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("opsbot: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The runbook at `path` (`OPSBOT_RUNBOOK`), else the seed; exit 2 when it
/// cannot be read or is not a runbook.
fn runbook_or_seed(path: Option<&str>) -> Result<Runbook, ExitCode> {
    match path {
        None => Ok(Runbook::seed()),
        Some(path) => opsbot::config::load_runbook(path).map_err(|e| {
            eprintln!("opsbot: {e}");
            ExitCode::from(2)
        }),
    }
}

/// What the commands that read the bot's Redis need: `REDIS_URL` (exit 2
/// without it, saying `why` it is needed) and a runtime to talk to it on.
fn redis_and_runtime(why: &str) -> Result<(String, tokio::runtime::Runtime), ExitCode> {
    let Some(url) = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("opsbot: REDIS_URL is not set: {why}");
        return Err(ExitCode::from(2));
    };
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => Ok((url, runtime)),
        Err(e) => {
            eprintln!("opsbot: cannot start the async runtime: {e}");
            Err(ExitCode::FAILURE)
        }
    }
}

/// `opsbot report <id>`: the same report `/incident report` posts, as
/// Markdown on stdout. Exit 2 for a bad id or setting, 1 when Redis fails.
fn print_report(id: &str, prefix: &str, runbook_path: Option<&str>) -> ExitCode {
    let Ok(id) = id.parse::<opsbot_handlers::IncidentId>() else {
        eprintln!("opsbot: `{id}` is not an incident id; ids look like INC-42 or 42");
        return ExitCode::from(2);
    };
    let (url, runtime) = match redis_and_runtime("the report is read from the bot's Redis") {
        Ok(both) => both,
        Err(code) => return code,
    };
    let runbook = match runbook_or_seed(runbook_path) {
        Ok(runbook) => runbook,
        Err(code) => return code,
    };
    let loaded = runtime.block_on(async {
        let store = opsbot::store::Store::connect(&url, prefix)?;
        let Some(incident) = store.subjects.load_incident(id).await? else { return Ok(None) };
        let timeline = store.subjects.load_timeline(id).await?;
        Ok::<_, opsbot::store::StoreError>(Some((incident.value, timeline)))
    });
    match loaded {
        Ok(Some((incident, timeline))) => {
            let text = opsbot_handlers::incident::report::report(
                &incident,
                &timeline,
                &runbook,
                opsbot_handlers::incident::report::Style::Markdown,
            );
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("opsbot: cannot write the report: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Ok(None) => {
            eprintln!("opsbot: there is no incident {id} under the prefix `{prefix}`");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("opsbot: {e}");
            ExitCode::FAILURE
        }
    }
}
