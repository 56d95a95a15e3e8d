//! The command line of operator binaries, like `kopf run`: [`run`], [`run_with`] and
//! [`run_with_args`], and the flags they read, [`Args`] (a [`clap::Args`] to flatten into your own
//! parser).
//!
//! Exit codes: 0 after a stop by the end of the input or by a signal; 1 when the source, the
//! cluster's API, a startup handler or the store (at start) failed; 2 for bad flags; 130/143
//! when a second SIGINT/SIGTERM cut the stop short.

use crate::api::error::{Error, Result};
use crate::operator::Operator;
use crate::shared::DEFAULT_BOT_NAME;
use clap::Parser;
use std::process::ExitCode;

mod args;
mod logging;

pub use args::{Args, LogFormat};

mod duration_text;

/// The exit codes of [`run`], [`run_with`] and [`run_with_args`], as `run()`'s `--help` ends;
/// put them at the end of your own parser's help with
/// `#[command(after_help = memo_runtime::cli::EXIT_CODES)]`.
pub const EXIT_CODES: &str = "\
Exit codes: 0 after a stop by the end of the input or by a signal; 1 when the source, the
cluster's API, a startup handler or the store (at start) failed; 2 for bad flags; 130/143 when a
second SIGINT/SIGTERM cut the stop short.";

// The command line of `run` and `run_with`: the runtime's flags alone (a `//` comment: a doc
// comment would be its `about`).
#[derive(Parser)]
#[command(after_help = EXIT_CODES, disable_version_flag = true)]
struct RunFlags {
    #[command(flatten)]
    args: Args,
}

/// Parses the process's command line as [`RunFlags`], named after the executable; on an error
/// or `--help`, the exit code (clap's: 2, or 0 after the help).
fn parse_command_line() -> std::result::Result<Args, ExitCode> {
    use clap::{CommandFactory, FromArgMatches};
    let mut command = RunFlags::command();
    if let Some(name) = program_name() {
        // Once per process.
        command = command.name(&*Box::leak(name.into_boxed_str()));
    }
    let parsed = command
        .try_get_matches()
        .and_then(|matches| RunFlags::from_arg_matches(&matches));
    match parsed {
        Ok(flags) => Ok(flags.args),
        Err(err) => {
            let _ = err.print();
            Err(ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2)))
        }
    }
}

/// Where events come from, by `--source` and `--namespace`.
async fn event_source(args: &Args) -> Result<crate::source::EventSource> {
    let Some(source) = args.source.as_deref() else {
        return cluster_source(&args.namespaces).await;
    };
    if !args.namespaces.is_empty() {
        tracing::warn!(target: "memo", "`--namespace` applies to watching a cluster; `--source` streams are read whole");
    }
    if source == "-" {
        tracing::info!(target: "memo", "reading watch events from standard input");
        return Ok(crate::source::json_reader(std::io::stdin()));
    }
    // Opening waits for a FIFO's writer, so the reading thread opens it; whether it exists
    // can be said before any handler runs.
    std::fs::metadata(source).map_err(|err| {
        Error::Io(std::io::Error::new(
            err.kind(),
            format!("cannot open `{source}`: {err}"),
        ))
    })?;
    tracing::info!(target: "memo", "reading watch events from `{source}`");
    Ok(crate::source::json_file(source))
}

/// The Kubernetes API as the source, connected as kubectl connects.
#[cfg(feature = "kube")]
async fn cluster_source(namespaces: &[String]) -> Result<crate::source::EventSource> {
    let client = kube::Client::try_default().await.map_err(|err| {
        Error::Kubernetes(format!(
            "cannot connect to the cluster: {err} (set KUBECONFIG, or give `--source FILE|-` to read a watch stream)"
        ))
    })?;
    crate::source::kubernetes(client, namespaces.iter().cloned()).await
}

#[cfg(not(feature = "kube"))]
async fn cluster_source(_namespaces: &[String]) -> Result<crate::source::EventSource> {
    // `run_with` refuses an empty `--source` before it gets here; say the same if it ever does.
    Err(Error::Kubernetes(
        args::NO_KUBE.trim_start_matches("error: ").to_owned(),
    ))
}

/// The executable's file name, the default bot name.
fn program_name() -> Option<String> {
    let path = std::env::current_exe().ok()?;
    Some(path.file_stem()?.to_str()?.to_owned()).filter(|name| !name.is_empty())
}

/// Connects the store `--redis` names, if any; fails within the store's connect timeout.
#[cfg(feature = "redis")]
async fn with_store<M: Clone + Send + Sync + 'static>(
    operator: Operator<M>,
    redis: Option<&str>,
    lease: Option<std::time::Duration>,
) -> Result<Operator<M>> {
    Ok(match redis {
        Some(url) => {
            let store = crate::store::RedisStore::connect(url).await?;
            let store = match lease {
                Some(lease) => store.with_lease(lease),
                None => store,
            };
            tracing::info!(target: "memo", bot = operator.shared().bot(), "shared memory in Redis at {}", store.url());
            operator.store(store)
        }
        None => operator,
    })
}

#[cfg(not(feature = "redis"))]
async fn with_store<M: Clone + Send + Sync + 'static>(
    operator: Operator<M>,
    _redis: Option<&str>,
    _lease: Option<std::time::Duration>,
) -> Result<Operator<M>> {
    Ok(operator)
}

/// Runs the registered handlers as a command-line operator: parses the standard flags, sets up
/// logging, and runs an [`Operator`] with an empty [`Memo`](crate::Memo) on the chosen watch
/// stream until it ends or SIGINT/SIGTERM arrives.
///
/// ```no_run
/// use memo_runtime::prelude::*;
///
/// #[handler(event = "KopfExample")]
/// fn pinged(memo: &mut Memo) {
///     let n = memo.get::<u64>("counter").copied().unwrap_or(0);
///     memo.insert("counter", n + 1);
/// }
///
/// fn main() -> std::process::ExitCode {
///     memo_runtime::run()
/// }
/// ```
pub fn run() -> ExitCode {
    run_with(Operator::new())
}

/// [`run`] with an operator you configured (a custom memo, a memo filled in advance, a worker
/// count); the command line's flags still apply: `--source`, `--workers`,
/// `--shutdown-timeout`, `--shard`, `--redis` (a store set in code is replaced by it) and
/// `--name` (a name set in code stays unless `--name` is given).
///
/// The process's exit code says how the operator stopped: 0 after the end of its input or a
/// signal (and after `--help`), 1 when the source or a startup handler failed, 2 for bad flags,
/// 130 or 143 when a second SIGINT or SIGTERM cut the stop short.
pub fn run_with<M: Clone + Send + Sync + 'static>(operator: Operator<M>) -> ExitCode {
    match parse_command_line() {
        Ok(args) => run_with_args(args, operator),
        Err(code) => code,
    }
}

/// [`run_with`] on flags your own parser read: flatten [`Args`] into it beside your flags, and
/// hand them over. Flags of features memo-runtime was built without (`--redis` without `redis`,
/// no `--source` without `kube`) are refused here, with a one-line message and exit code 2.
///
/// ```no_run
/// use memo_runtime::clap::{self, Parser};
/// use memo_runtime::prelude::*;
///
/// #[derive(Parser)]
/// struct Flags {
///     #[command(flatten)]
///     memo: memo_runtime::cli::Args,
///     /// Where the database is.
///     #[arg(long, env = "DATABASE_URL")]
///     database_url: String,
/// }
///
/// fn main() -> std::process::ExitCode {
///     let flags = Flags::parse();
///     let mut memo = Memo::new();
///     memo.insert("database_url", flags.database_url);
///     memo_runtime::run_with_args(flags.memo, Operator::new().memo(memo))
/// }
/// ```
pub fn run_with_args<M: Clone + Send + Sync + 'static>(mut args: Args, operator: Operator<M>) -> ExitCode {
    // `MEMO_REDIS_URL=` (empty) means no Redis, as before the flags were clap's.
    args.redis = args.redis.filter(|url| !url.is_empty());
    if let Err(message) = args.check_features(cfg!(feature = "redis"), cfg!(feature = "kube")) {
        eprintln!("{message}");
        return ExitCode::from(2);
    }
    logging::init(args.log_format, args.verbosity());
    // At least two core threads: with one worker the event loop runs handlers on one of them,
    // and a handler that blocks it must leave another to hear signals and bound the stop.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.max(2))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let source = event_source(&args).await?;
        let operator = match args.workers {
            Some(workers) => operator.workers(workers),
            None => operator,
        };
        let operator = match args.shutdown_timeout {
            Some(timeout) => operator.shutdown_timeout(timeout),
            None => operator,
        };
        let operator = match args.lease_duration {
            Some(lease) => operator.lease_duration(lease),
            None => operator,
        };
        #[cfg(feature = "kube")]
        let operator = match &args.lease_namespace {
            Some(namespace) => operator.lease_namespace(namespace),
            None => operator,
        };
        let operator = match args.shard {
            Some(shard) if shard.is_auto() => operator.shard_auto(),
            Some(shard) => operator.shard(shard.index(), shard.count()),
            None => operator,
        };
        let operator = operator.post_events(args.post_events).progress_in(args.progress_store);
        let operator = match &args.progress_prefix {
            Some(prefix) => operator.progress_prefix(prefix),
            None => operator,
        };
        let operator = match &args.finalizer {
            Some(name) => operator.finalizer(name),
            None => operator,
        };
        let operator = match &args.liveness {
            Some(address) => operator.liveness(address),
            None => operator,
        };
        let operator = match (&args.name, operator.shared().bot() == DEFAULT_BOT_NAME) {
            (Some(name), _) => operator.name(name.as_str()),
            // A name set in code stays; otherwise the bot is named after its program.
            (None, true) => match program_name() {
                Some(name) => operator.name(name),
                None => operator,
            },
            (None, false) => operator,
        };
        let operator = with_store(operator, args.redis.as_deref(), args.lease_duration).await?;
        operator.source(source).run().await
    });
    // Work the stop left behind (a handler stuck in a blocking call, a read of a silent stdin)
    // must not keep the process alive.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
