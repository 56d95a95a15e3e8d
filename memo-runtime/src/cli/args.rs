//! The runtime's flags as a `clap::Args` struct, and the value parsers they use.

use crate::api::post_events::PostEvents;
use crate::api::shard::Shard;
use crate::operator::ProgressIn;
use clap::builder::TypedValueParser;
use std::ffi::OsStr;
use std::time::Duration;

/// What `run()` without `--source` says when memo-runtime was built without the `kube` feature.
pub(crate) const NO_KUBE: &str = "error: no `--source` given, and watching a cluster needs memo-runtime's `kube` feature: memo-runtime = { version = \"0.1\", features = [\"kube\"] } (or read a watch stream with `--source FILE|-`)";

/// What `--redis` says when memo-runtime was built without the `redis` feature.
pub(crate) const NO_REDIS: &str =
    "`--redis` needs memo-runtime's `redis` feature: memo-runtime = { version = \"0.1\", features = [\"redis\"] }";

/// Every flag of the runtime, as a [`clap::Args`]: flatten it into your own parser and hand it to
/// [`run_with_args`](crate::run_with_args); [`run`](crate::run) and
/// [`run_with`](crate::run_with) parse it alone.
///
/// | flag | meaning |
/// | --- | --- |
/// | `--source FILE\|-` | read watch events from a file, a FIFO or standard input (`-`); without it, watch the cluster (feature `kube`) |
/// | `-n, --namespace NS` | watch only these namespaces (repeatable) |
/// | `--workers N` | run up to N handlers at once |
/// | `--shutdown-timeout DURATION` | how long running handlers may take to finish after a signal (`30`, `2.5`, `250ms`, `1m30s`) |
/// | `--redis URL` | shared memory in Redis (feature `redis`) `[env: MEMO_REDIS_URL]` |
/// | `--name NAME` | the bot's name in the store |
/// | `--shard I/N` | be replica I of N `[env: MEMO_SHARD]` |
/// | `--log-format text\|json` | log lines as text or JSON `[env: MEMO_LOG_FORMAT]` |
/// | `--liveness HOST:PORT` | serve `/healthz` and Prometheus `/metrics` there `[env: MEMO_LIVENESS]` |
/// | `--post-events none\|warning\|all` | which handler outcomes become Kubernetes Events `[env: MEMO_POST_EVENTS]` |
/// | `--shard auto`, `--lease-duration D`, `--lease-namespace NS` | leased buckets, in Redis or as Kubernetes Leases `[env: MEMO_LEASE_*]` |
/// | `--progress-store annotations\|shared` | where progress on objects is kept `[env: MEMO_PROGRESS_STORE]` |
/// | `--progress-prefix PREFIX` | the prefix of memo's annotations (`memo.dev`) `[env: MEMO_PROGRESS_PREFIX]` |
/// | `--finalizer NAME` | memo's finalizer (`memo.dev/finalizer`) `[env: MEMO_FINALIZER]` |
/// | `-v`, `-vv`, `-q` | more or less logging |
///
/// Flags of features memo-runtime was built without still parse (so `--help` is the same for
/// every build); [`run_with_args`](crate::run_with_args) refuses them with exit code 2.
///
/// ```
/// use memo_runtime::clap::{self, Parser};
///
/// /// My operator.
/// #[derive(Parser)]
/// struct Flags {
///     #[command(flatten)]
///     memo: memo_runtime::cli::Args,
///     /// Where my database is.
///     #[arg(long, env = "DATABASE_URL")]
///     database_url: String,
/// }
///
/// fn main() {
///     let flags = Flags::try_parse_from(["op", "--workers", "4", "-vv", "--database-url", "postgres://db/"]).unwrap();
///     assert_eq!(flags.memo.workers, Some(4));
///     assert_eq!(flags.memo.verbosity(), 2);
///     assert_eq!(flags.database_url, "postgres://db/");
///     // In a real `main`: `memo_runtime::run_with_args(flags.memo, Operator::new())`.
/// }
/// ```
#[derive(clap::Args, Clone, Debug, PartialEq)]
// This text is rustdoc's, not the `about` of the parser it is flattened into.
#[command(about = None, long_about = None)]
// Its own group id: a program's parser is often called `Args` too.
#[group(id = "memo-runtime")]
#[non_exhaustive]
pub struct Args {
    /// Read Kubernetes watch events from FILE (or a FIFO), or from standard input with `-`, as
    /// `kubectl get KIND -A --watch --output-watch-events -o json` prints them. Without
    /// `--source`, watch the Kubernetes API, connecting as kubectl does (KUBECONFIG,
    /// ~/.kube/config, or the in-cluster service account): every kind a handler selects; that
    /// needs memo-runtime's `kube` feature.
    #[arg(long, value_name = "FILE|-", value_parser = source_path)]
    pub source: Option<String>,

    /// Watch only namespace NS in the cluster (repeat for more; default: all namespaces).
    #[arg(short = 'n', long = "namespace", value_name = "NS", value_parser = non_blank)]
    pub namespaces: Vec<String>,

    /// Run up to N handlers at once (default: the number of cores).
    #[arg(long, value_name = "N", value_parser = positive)]
    pub workers: Option<usize>,

    /// On SIGTERM/SIGINT, how long running handlers may take to finish before they are abandoned:
    /// seconds (`30`, `2.5`) or `250ms`, `10s`, `1m`, `1h30m` (default: 30s). A second signal
    /// stops at once.
    #[arg(long, value_name = "DURATION", value_parser = DurationParser)]
    pub shutdown_timeout: Option<Duration>,

    /// Keep shared memory in Redis (`redis://127.0.0.1:6379/`), shared by every replica of the
    /// bot; needs memo-runtime's `redis` feature.
    // The URL may hold a password: `--help` names the variable without its value.
    #[arg(long, value_name = "URL", env = "MEMO_REDIS_URL", hide_env_values = true)]
    pub redis: Option<String>,

    /// The bot's name: its keys, locks and preparation in the store live under it (default: this
    /// executable's file name).
    #[arg(long, value_name = "NAME", value_parser = non_blank)]
    pub name: Option<String>,

    /// Be replica I of N (counted from 0): handle only the resources whose key hashes to I modulo
    /// N; N replicas on one source split it. `auto`: join the replicas with the same `--name`
    /// and store (`--redis`), sharing the buckets of the hash space through leases.
    #[arg(long, value_name = "I/N", env = "MEMO_SHARD", value_parser = shard)]
    pub shard: Option<Shard>,

    /// How long a lease (a lock, a bucket of `--shard auto`) lasts unless renewed, in Redis:
    /// seconds or `15s`, `500ms` (default 15 s). A replica killed outright loses its buckets
    /// after it, plus a renewal period (a third of it).
    #[arg(long, value_name = "DURATION", env = "MEMO_LEASE_DURATION", value_parser = lease_duration)]
    pub lease_duration: Option<Duration>,

    /// With `--shard auto` against a cluster: keep the shard leases as Lease objects in this
    /// namespace (the operator's own) instead of in Redis.
    #[arg(long, value_name = "NS", env = "MEMO_LEASE_NAMESPACE", value_parser = non_blank)]
    pub lease_namespace: Option<String>,

    /// How log lines are written to standard error: `text` for people, `json` for log collectors
    /// (one object a line: timestamp, level, target, and `fields` with the message and the
    /// event's fields such as handler, kind, namespace, name).
    #[arg(long, value_name = "FORMAT", value_enum, env = "MEMO_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Serve a liveness probe on `http://HOST:PORT/healthz` (200 while the event loop runs and
    /// the source is connected, 503 otherwise) and Prometheus metrics on `/metrics`, as kopf's
    /// `--liveness` (port 0 picks a free port, logged).
    #[arg(long, value_name = "HOST:PORT", env = "MEMO_LIVENESS", value_parser = host_port)]
    pub liveness: Option<String>,

    /// Which handler outcomes are posted as Kubernetes Events on their object: `none`,
    /// `warning` (a handler failed, temporarily or for good) or `all` (also a handler that
    /// succeeded); at most one per object every 10 s.
    #[arg(long, value_name = "WHICH", env = "MEMO_POST_EVENTS", default_value_t = PostEvents::Warning,
          value_parser = clap::builder::PossibleValuesParser::new(["none", "warning", "all"]).map(|text| text.parse::<PostEvents>().unwrap_or_default()))]
    pub post_events: PostEvents,

    /// Where memo keeps its progress on each object, so that a restart runs no handler twice
    /// and misses no change: `annotations` on the object (watching a cluster), or `shared`, in
    /// the shared-memory store (`--redis`), for any source.
    #[arg(long, value_name = "WHERE", env = "MEMO_PROGRESS_STORE", default_value = "annotations",
          value_parser = clap::builder::PossibleValuesParser::new(["annotations", "shared"]).map(|text| text.parse::<ProgressIn>().unwrap_or_default()))]
    pub progress_store: ProgressIn,

    /// The prefix of the annotations memo keeps its progress in (`PREFIX/last-handled`,
    /// `PREFIX/progress`).
    #[arg(long, value_name = "PREFIX", env = "MEMO_PROGRESS_PREFIX", value_parser = annotation_prefix)]
    pub progress_prefix: Option<String>,

    /// The finalizer memo holds on objects whose kind has delete handlers (not `optional`).
    #[arg(long, value_name = "NAME", env = "MEMO_FINALIZER", value_parser = finalizer_name)]
    pub finalizer: Option<String>,

    /// More logging: `-v` debug, `-vv` trace (RUST_LOG overrides).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Less logging: errors only (wins over `-v`; RUST_LOG overrides).
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
}

/// How [`run_with_args`](crate::run_with_args) writes its log lines (`--log-format`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFormat {
    /// Human-readable lines, colored on a terminal.
    #[default]
    Text,
    /// One JSON object a line: `timestamp`, `level`, `target`, and `fields` holding `message`
    /// and the event's fields.
    Json,
}

impl Default for Args {
    /// What an empty command line gives, without reading environment variables: the cluster as
    /// the source, all namespaces, defaults for everything else.
    fn default() -> Self {
        Args {
            source: None,
            namespaces: Vec::new(),
            workers: None,
            shutdown_timeout: None,
            redis: None,
            name: None,
            shard: None,
            log_format: LogFormat::Text,
            liveness: None,
            post_events: PostEvents::Warning,
            progress_store: ProgressIn::Annotations,
            lease_duration: None,
            lease_namespace: None,
            progress_prefix: None,
            finalizer: None,
            verbose: 0,
            quiet: false,
        }
    }
}

impl Args {
    /// -1 for `-q`, 0 by default, 1 for `-v`, 2 for `-vv` (and more for more `-v`s).
    ///
    /// ```
    /// let args = memo_runtime::cli::Args::default();
    /// assert_eq!(args.verbosity(), 0);
    /// ```
    pub fn verbosity(&self) -> i8 {
        if self.quiet {
            -1
        } else {
            i8::try_from(self.verbose).unwrap_or(i8::MAX)
        }
    }

    /// Refuses what needs a feature memo-runtime was built without, saying how to enable it.
    pub(crate) fn check_features(&self, redis: bool, kube: bool) -> Result<(), &'static str> {
        if self.redis.is_some() && !redis {
            return Err(NO_REDIS);
        }
        if (self.source.is_none() || self.lease_namespace.is_some()) && !kube {
            return Err(NO_KUBE);
        }
        Ok(())
    }
}

/// `--source`: a path, or `-`; not empty.
fn source_path(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("give a file path, or `-` for standard input".to_owned());
    }
    Ok(text.to_owned())
}

/// `--lease-duration`: a duration of at least 300 ms (renewed every third of it).
fn lease_duration(text: &str) -> Result<Duration, String> {
    let duration = super::duration_text::parse_text(text).map(Duration::from_nanos)?;
    if duration < Duration::from_millis(300) {
        return Err(format!("`{text}` is too short for a lease: give at least 300ms"));
    }
    Ok(duration)
}

/// `--progress-prefix`: a DNS subdomain (`memo.dev`, `example.com`), as annotation prefixes are.
fn annotation_prefix(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text.len() <= 253
        && text.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!("`{text}` is not a DNS subdomain such as `memo.dev`"))
    }
}

/// `--finalizer`: a qualified name, `DOMAIN/NAME`, as the API server expects of finalizers.
fn finalizer_name(text: &str) -> Result<String, String> {
    match text.split_once('/') {
        Some((domain, name))
            if annotation_prefix(domain).is_ok()
                && !name.is_empty()
                && name.len() <= 63
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            Ok(text.to_owned())
        }
        _ => Err(format!(
            "`{text}` is not a qualified name such as `example.com/cleanup`"
        )),
    }
}

/// `--namespace`, `--name`: not empty.
fn non_blank(text: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err("it must not be empty".to_owned());
    }
    Ok(text.to_owned())
}

/// `--liveness HOST:PORT`: a host name, an IPv4 address or a bracketed IPv6 one, and a port.
/// Checked here rather than when the endpoint binds, so that a typo is a bad flag (exit code 2)
/// said before anything starts; whether a name resolves is still for the start to find out.
fn host_port(text: &str) -> Result<String, String> {
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err("give HOST:PORT, e.g. `0.0.0.0:8080`, `localhost:8080` or `[::1]:8080`".to_owned());
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("`{host}` is not a host: give HOST:PORT, e.g. `0.0.0.0:8080`"));
    }
    // An IPv6 address has colons of its own: only brackets tell them from the port's.
    if host.contains(':') {
        let bracketed = host.strip_prefix('[').and_then(|inner| inner.strip_suffix(']'));
        if bracketed
            .and_then(|inner| inner.parse::<std::net::Ipv6Addr>().ok())
            .is_none()
        {
            return Err(format!(
                "`{host}` is not a host: write an IPv6 address in brackets, e.g. `[::1]:8080`"
            ));
        }
    }
    if port.parse::<u16>().is_err() {
        return Err(format!(
            "`{port}` is not a port: give a number from 0 to 65535 (0 picks a free one)"
        ));
    }
    Ok(text.to_owned())
}

/// `--workers`: a positive number.
fn positive(text: &str) -> Result<usize, String> {
    text.trim()
        .parse()
        .ok()
        .filter(|&n: &usize| n > 0)
        .ok_or_else(|| "it must be a positive number".to_owned())
}

/// `--shard I/N`, as [`Shard::parse`] reads it.
fn shard(text: &str) -> Result<Shard, String> {
    Shard::parse(text).map_err(|err| err.to_string())
}

/// Seconds as a number (`30`, `2.5`), or a duration string (`250ms`, `1h30m`).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| "it must be a non-negative number of seconds".to_owned());
    }
    super::duration_text::parse_text(text).map(Duration::from_nanos)
}

/// A duration flag's value parser: [`parse_duration`], with an error that names the flag and
/// says what to write.
#[derive(Clone, Copy)]
struct DurationParser;

impl TypedValueParser for DurationParser {
    type Value = Duration;

    fn parse_ref(&self, cmd: &clap::Command, arg: Option<&clap::Arg>, value: &OsStr) -> Result<Duration, clap::Error> {
        let text = value.to_string_lossy();
        parse_duration(&text).map_err(|reason| {
            let flag = arg
                .and_then(|arg| arg.get_long())
                .map_or_else(|| "a duration".to_owned(), |long| format!("--{long}"));
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("`{flag} {text}` is not a duration: {reason}; write e.g. `30`, `10s`, `1m` or `1h30m`"),
            )
            // With the usage and the pointer to `--help`, as clap's own errors.
            .format(&mut cmd.clone())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Args, NO_KUBE};

    fn args(flags: &[&str]) -> Args {
        use clap::FromArgMatches;
        let command = <Args as clap::Args>::augment_args(clap::Command::new("test").no_binary_name(true))
            .mut_args(|arg| arg.env(None::<&'static str>));
        Args::from_arg_matches(&command.try_get_matches_from(flags).unwrap()).unwrap()
    }

    #[test]
    fn without_the_kube_feature_no_source_says_how_to_enable_it() {
        let cli = args(&["--workers", "2"]);
        let message = cli.check_features(true, false).unwrap_err();
        assert_eq!(message, NO_KUBE);
        assert_eq!(message.lines().count(), 1, "one line");
        assert!(message.contains(r#"features = ["kube"]"#), "{message}");
        assert!(message.contains("--source FILE|-"), "{message}");
        // With the feature, or with a `--source`, nothing is refused.
        assert!(cli.check_features(true, true).is_ok());
        assert!(args(&["--source", "-"]).check_features(true, false).is_ok());
    }

    #[test]
    fn without_the_redis_feature_redis_is_refused() {
        let cli = args(&["--source", "-", "--redis", "redis://127.0.0.1:1/"]);
        let message = cli.check_features(false, true).unwrap_err();
        assert!(message.contains(r#"features = ["redis"]"#), "{message}");
        assert_eq!(message.lines().count(), 1, "one line");
        assert!(cli.check_features(true, true).is_ok());
    }

    #[test]
    fn the_default_is_an_empty_command_line() {
        assert_eq!(args(&[]), Args::default());
    }
}
