//! `Cli`, the settings struct of the first command line, now read by clap through [`Args`].

use super::args::Args;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::FromArgMatches;
use std::time::Duration;

/// Command-line settings of an operator binary: the older, plain view of [`Args`] (without
/// `--log-format`), kept for programs that parse flags with [`Cli::parse`].
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

impl From<Args> for Cli {
    fn from(args: Args) -> Cli {
        Cli {
            verbosity: args.verbosity(),
            source: args.source.unwrap_or_default(),
            namespaces: args.namespaces,
            workers: args.workers,
            shutdown_timeout: args.shutdown_timeout,
            shard: args.shard,
            redis: args.redis,
            name: args.name,
        }
    }
}

impl Cli {
    /// Parses flags (without the program name) as [`Args`] does, but reads no environment
    /// variable (`run` reads `MEMO_REDIS_URL` and `MEMO_SHARD`). Errors are clap's messages; an
    /// unknown flag says ``unknown flag `--wrokers` `` with the usage, `--help` gives the help.
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
        let mut command = <Args as clap::Args>::augment_args(clap::Command::new("OPERATOR").no_binary_name(true))
            .mut_args(|arg| arg.env(None::<&'static str>));
        let matches = command
            .try_get_matches_from_mut(args.into_iter().map(Into::into))
            .map_err(|err| message(err, &mut command))?;
        let args = Args::from_arg_matches(&matches).map_err(|err| err.render().to_string())?;
        Ok(args.into())
    }
}

/// A parse error as `Cli::parse` words it: ``unknown flag `X` `` as before clap, else clap's.
fn message(err: clap::Error, command: &mut clap::Command) -> String {
    let unknown = match (err.kind(), err.get(ContextKind::InvalidArg)) {
        (ErrorKind::UnknownArgument, Some(ContextValue::String(flag))) => flag.clone(),
        _ => return err.render().to_string(),
    };
    let suggestion = match err.get(ContextKind::SuggestedArg) {
        Some(ContextValue::String(similar)) => format!(" (did you mean `{similar}`?)"),
        _ => String::new(),
    };
    format!("unknown flag `{unknown}`{suggestion}\n\n{}", command.render_usage())
}
