//! A one-call entry point for operator binaries, like `kopf run`.

use crate::{Operator, Result};
use std::process::ExitCode;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

// The macro reads `interval = "1m30s"` with this very code; flags read durations the same way.
#[path = "../../memo-macros/src/duration_text.rs"]
mod duration_text;

const USAGE: &str = "\
usage: OPERATOR [--namespace NS]... [--source FILE|-] [--workers N] [--shutdown-timeout DURATION]
                [--redis URL] [--name NAME] [--shard I/N] [-v|-vv] [-q]

  (no --source)               watch the Kubernetes API, connecting as kubectl does (KUBECONFIG,
                              ~/.kube/config, or the in-cluster service account): every kind a
                              handler selects; needs the `kube` feature
  -n, --namespace NS          watch only namespace NS (repeat for more; default: all namespaces)
  --source FILE|-             read Kubernetes watch events from FILE (or a FIFO), or from standard
                              input with `-`, as
                              `kubectl get KIND -A --watch --output-watch-events -o json` prints them
  --workers N                 run up to N handlers at once (default: the number of cores)
  --shutdown-timeout DURATION on SIGTERM/SIGINT, how long running handlers may take to finish
                              before they are abandoned: seconds (`30`, `2.5`) or `250ms`, `10s`,
                              `1m`, `1h30m` (default: 30s); a second signal stops at once
  --redis URL                 keep shared memory in Redis (`redis://127.0.0.1:6379/`), shared by
                              every replica of the bot; needs the `redis` feature
                              [env: MEMO_REDIS_URL]
  --name NAME                 the bot's name: its keys, locks and preparation in the store live
                              under it (default: this executable's file name)
  --shard I/N                 be replica I of N (counted from 0): handle only the resources whose
                              key hashes to I modulo N; N replicas on one source split it
                              [env: MEMO_SHARD]
  -v, -vv                     more logging (debug, trace); RUST_LOG overrides
  -q                          less logging (errors only)
  -h, --help                  show this help

exit codes: 0 after a stop by the end of the input or by a signal; 1 when the source, the
cluster's API, a startup handler or the store (at start) failed; 2 for bad flags; 130/143 when a
second SIGINT/SIGTERM cut the stop short";

/// What `run()` without `--source` says when memo-runtime was built without the `kube` feature.
const NO_KUBE: &str = "error: no `--source` given, and watching a cluster needs memo-runtime's `kube` feature: memo-runtime = { version = \"0.1\", features = [\"kube\"] } (or read a watch stream with `--source FILE|-`)";

/// Command-line settings of an operator binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cli {
    /// Where watch events come from: a file path, `-` for standard input, or empty (no
    /// `--source`, the default) for the Kubernetes API.
    pub source: String,
    /// `--namespace NS` flags, in order: the namespaces watched in the cluster (none: all).
    pub namespaces: Vec<String>,
    /// `--workers N`, if given.
    pub workers: Option<usize>,
    /// -1 for `-q`, 0 by default, 1 for `-v`, 2 for `-vv`.
    pub verbosity: i8,
    /// `--shutdown-timeout DURATION`, if given.
    pub shutdown_timeout: Option<Duration>,
    /// `--shard I/N`, if given (`run` falls back to the `MEMO_SHARD` variable).
    pub shard: Option<crate::shard::Shard>,
    /// `--redis URL`, if given (`run` falls back to the `MEMO_REDIS_URL` variable).
    pub redis: Option<String>,
    /// `--name NAME`, if given (`run` falls back to the executable's file name).
    pub name: Option<String>,
}

impl Cli {
    /// Parses flags (without the program name).
    ///
    /// ```
    /// use memo_runtime::cli::Cli;
    /// let cli = Cli::parse(["--source", "events.json", "--workers", "4", "-v"]).unwrap();
    /// assert_eq!(cli.source, "events.json");
    /// assert_eq!(cli.workers, Some(4));
    /// assert_eq!(cli.verbosity, 1);
    /// assert!(Cli::parse(["--wrokers", "4"]).unwrap_err().contains("unknown flag `--wrokers`"));
    ///
    /// let cli = Cli::parse(["--shutdown-timeout", "1m30s"]).unwrap();
    /// assert_eq!(cli.shutdown_timeout, Some(std::time::Duration::from_secs(90)));
    /// assert_eq!(Cli::parse(["--shutdown-timeout=2.5"]).unwrap().shutdown_timeout.unwrap().as_millis(), 2500);
    /// assert_eq!(Cli::parse(["--shard", "1/3"]).unwrap().shard.map(|s| s.to_string()), Some("1/3".into()));
    /// let cli = Cli::parse(["--redis", "redis://127.0.0.1:6379/", "--name", "message-counter"]).unwrap();
    /// assert_eq!(cli.redis.as_deref(), Some("redis://127.0.0.1:6379/"));
    /// assert_eq!(cli.name.as_deref(), Some("message-counter"));
    ///
    /// // No `--source`: the cluster, in the namespaces given (none: all of them).
    /// let cli = Cli::parse(["--namespace", "default", "-n", "staging"]).unwrap();
    /// assert_eq!(cli.source, "");
    /// assert_eq!(cli.namespaces, ["default", "staging"]);
    /// ```
    pub fn parse<I, S>(args: I) -> std::result::Result<Cli, String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut cli = Cli {
            source: String::new(),
            namespaces: Vec::new(),
            workers: None,
            verbosity: 0,
            shutdown_timeout: None,
            shard: None,
            redis: None,
            name: None,
        };
        let mut args = args.into_iter().map(Into::into);
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => (flag.to_owned(), Some(value.to_owned())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| format!("`{name}` needs a value\n\n{USAGE}"))
            };
            match flag.as_str() {
                "--source" => {
                    let source = value("--source")?;
                    if source.is_empty() {
                        return Err("`--source` needs a file path, or `-` for standard input".to_owned());
                    }
                    cli.source = source;
                }
                "-n" | "--namespace" => {
                    let namespace = value("--namespace")?;
                    if namespace.trim().is_empty() {
                        return Err("`--namespace` must not be empty".to_owned());
                    }
                    cli.namespaces.push(namespace);
                }
                "--workers" => {
                    let text = value("--workers")?;
                    let workers: usize = text
                        .parse()
                        .ok()
                        .filter(|&n| n > 0)
                        .ok_or_else(|| format!("`--workers` must be a positive number, not `{text}`"))?;
                    cli.workers = Some(workers);
                }
                "--shutdown-timeout" => {
                    let text = value("--shutdown-timeout")?;
                    cli.shutdown_timeout = Some(parse_duration(&text).map_err(|reason| {
                        format!("`--shutdown-timeout {text}` is not a duration: {reason}; write e.g. `30`, `10s`, `1m` or `1h30m`")
                    })?);
                }
                "--redis" => cli.redis = Some(value("--redis")?),
                "--name" => {
                    let name = value("--name")?;
                    if name.trim().is_empty() {
                        return Err("`--name` must not be empty".to_owned());
                    }
                    cli.name = Some(name);
                }
                "--shard" => {
                    let text = value("--shard")?;
                    cli.shard =
                        Some(crate::shard::Shard::parse(&text).map_err(|err| format!("`--shard {text}`: {err}"))?);
                }
                "-v" | "--verbose" => cli.verbosity = cli.verbosity.max(0) + 1,
                "-vv" => cli.verbosity = 2,
                "-q" | "--quiet" => cli.verbosity = -1,
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unknown flag `{other}`\n\n{USAGE}")),
            }
        }
        Ok(cli)
    }

    /// Refuses what needs a feature memo-runtime was built without, saying how to enable it.
    fn check_features(&self, redis: bool, kube: bool) -> std::result::Result<(), String> {
        if self.redis.is_some() && !redis {
            return Err(
                "`--redis` needs memo-runtime's `redis` feature: memo-runtime = { version = \"0.1\", features = [\"redis\"] }"
                    .to_owned(),
            );
        }
        if self.source.is_empty() && !kube {
            return Err(NO_KUBE.to_owned());
        }
        Ok(())
    }

    fn filter(&self) -> EnvFilter {
        if let Ok(filter) = EnvFilter::try_from_default_env() {
            return filter;
        }
        EnvFilter::new(match self.verbosity {
            ..=-1 => "error",
            0 => "info",
            1 => "debug",
            _ => "trace",
        })
    }

    async fn source(&self) -> Result<crate::source::EventSource> {
        if self.source.is_empty() {
            return cluster_source(&self.namespaces).await;
        }
        if !self.namespaces.is_empty() {
            tracing::warn!(target: "memo", "`--namespace` applies to watching a cluster; `--source` streams are read whole");
        }
        if self.source == "-" {
            tracing::info!(target: "memo", "reading watch events from standard input");
            return Ok(crate::source::json_reader(std::io::stdin()));
        }
        // Opening waits for a FIFO's writer, so the reading thread opens it; whether it exists
        // can be said before any handler runs.
        std::fs::metadata(&self.source).map_err(|err| {
            crate::Error::Io(std::io::Error::new(
                err.kind(),
                format!("cannot open `{}`: {err}", self.source),
            ))
        })?;
        tracing::info!(target: "memo", "reading watch events from `{}`", self.source);
        Ok(crate::source::json_file(&self.source))
    }
}

/// The Kubernetes API as the source, connected as kubectl connects.
#[cfg(feature = "kube")]
async fn cluster_source(namespaces: &[String]) -> Result<crate::source::EventSource> {
    let client = kube::Client::try_default().await.map_err(|err| {
        crate::Error::Kubernetes(format!(
            "cannot connect to the cluster: {err} (set KUBECONFIG, or give `--source FILE|-` to read a watch stream)"
        ))
    })?;
    crate::source::kubernetes(client, namespaces.iter().cloned()).await
}

#[cfg(not(feature = "kube"))]
async fn cluster_source(_namespaces: &[String]) -> Result<crate::source::EventSource> {
    // `run_with` refuses an empty `--source` before it gets here; say the same if it ever does.
    Err(crate::Error::Kubernetes(
        NO_KUBE.trim_start_matches("error: ").to_owned(),
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
) -> Result<Operator<M>> {
    Ok(match redis {
        Some(url) => {
            let store = crate::store::RedisStore::connect(url).await?;
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
) -> Result<Operator<M>> {
    Ok(operator)
}

/// Seconds as a number (`30`, `2.5`), or a duration string (`250ms`, `1h30m`).
fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| "it must be a non-negative number of seconds".to_owned());
    }
    duration_text::parse_text(text).map(Duration::from_nanos)
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
/// signal, 1 when the source or a startup handler failed, 2 for bad flags, 130 or 143 when a
/// second SIGINT or SIGTERM cut the stop short.
pub fn run_with<M: Clone + Send + Sync + 'static>(operator: Operator<M>) -> ExitCode {
    let parsed = Cli::parse(std::env::args().skip(1)).and_then(|mut cli| {
        if cli.redis.is_none() {
            cli.redis = std::env::var("MEMO_REDIS_URL").ok().filter(|url| !url.is_empty());
        }
        cli.check_features(cfg!(feature = "redis"), cfg!(feature = "kube"))?;
        if cli.shard.is_none() {
            if let Ok(text) = std::env::var("MEMO_SHARD") {
                cli.shard = Some(crate::shard::Shard::parse(&text).map_err(|err| format!("MEMO_SHARD={text}: {err}"))?);
            }
        }
        Ok(cli)
    });
    let cli = match parsed {
        Ok(cli) => cli,
        Err(message) => {
            eprintln!("{message}");
            return if message == USAGE {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(cli.filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
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
        let source = cli.source().await?;
        let operator = match cli.workers {
            Some(workers) => operator.workers(workers),
            None => operator,
        };
        let operator = match cli.shutdown_timeout {
            Some(timeout) => operator.shutdown_timeout(timeout),
            None => operator,
        };
        let operator = match cli.shard {
            Some(shard) => operator.shard(shard.index(), shard.count()),
            None => operator,
        };
        let operator = match (&cli.name, operator.shared().bot() == crate::DEFAULT_BOT_NAME) {
            (Some(name), _) => operator.name(name.as_str()),
            // A name set in code stays; otherwise the bot is named after its program.
            (None, true) => match program_name() {
                Some(name) => operator.name(name),
                None => operator,
            },
            (None, false) => operator,
        };
        let operator = with_store(operator, cli.redis.as_deref()).await?;
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

#[cfg(test)]
mod tests {
    use super::{Cli, NO_KUBE};

    #[test]
    fn without_the_kube_feature_no_source_says_how_to_enable_it() {
        let cli = Cli::parse(["--workers", "2"]).unwrap();
        let message = cli.check_features(true, false).unwrap_err();
        assert_eq!(message, NO_KUBE);
        assert_eq!(message.lines().count(), 1, "one line");
        assert!(message.contains(r#"features = ["kube"]"#), "{message}");
        assert!(message.contains("--source FILE|-"), "{message}");
        // With the feature, or with a `--source`, nothing is refused.
        assert!(cli.check_features(true, true).is_ok());
        assert!(Cli::parse(["--source", "-"])
            .unwrap()
            .check_features(true, false)
            .is_ok());
    }

    #[test]
    fn without_the_redis_feature_redis_is_refused() {
        let cli = Cli::parse(["--source", "-", "--redis", "redis://127.0.0.1:1/"]).unwrap();
        assert!(cli
            .check_features(false, true)
            .unwrap_err()
            .contains(r#"features = ["redis"]"#));
        assert!(cli.check_features(true, true).is_ok());
    }
}
