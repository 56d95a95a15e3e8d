//! `memo_runtime::cli::Args` flattened into a program's own clap parser: every flag, the
//! defaults, the environment variables, and clap's errors (exit code 2) for bad values.

use memo_runtime::clap::{self, CommandFactory, Parser, error::ErrorKind};
use memo_runtime::cli::{Args, LogFormat};
use memo_runtime::shard::Shard;
use std::sync::Mutex;
use std::time::Duration;

/// A program's own parser: the runtime's flags beside one of its own.
#[derive(Parser, Debug)]
#[command(name = "my-operator")]
struct Flags {
    #[command(flatten)]
    memo: Args,
    /// A flag of the program's own.
    #[arg(long, env = "CLI_ARGS_TEST_DATABASE_URL", default_value = "postgres://localhost/")]
    database_url: String,
}

/// clap reads the variables of `env` flags when it parses: every test holds this lock, so the
/// one test that sets them does not race the others.
static ENV: Mutex<()> = Mutex::new(());

const VARIABLES: [&str; 5] = [
    "MEMO_REDIS_URL",
    "MEMO_SHARD",
    "MEMO_LOG_FORMAT",
    "MEMO_LIVENESS",
    "CLI_ARGS_TEST_DATABASE_URL",
];

fn parse(flags: &[&str]) -> Result<Flags, clap::Error> {
    let _env = ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    clear_variables();
    Flags::try_parse_from(std::iter::once("my-operator").chain(flags.iter().copied()))
}

fn clear_variables() {
    for variable in VARIABLES {
        // TODO: Audit that the environment access only happens in single-threaded code.
        unsafe { std::env::remove_var(variable) };
    }
}

fn error(flags: &[&str]) -> clap::Error {
    match parse(flags) {
        Ok(parsed) => panic!("{flags:?} parsed: {parsed:?}"),
        Err(err) => err,
    }
}

#[test]
fn the_parser_is_well_formed() {
    let _env = ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    Flags::command().debug_assert();
}

/// A program's parser named `Args`, as clap's examples name theirs: no clash with memo's.
mod named_args {
    use memo_runtime::clap::{self, CommandFactory, Parser};

    /// My operator.
    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        memo: memo_runtime::cli::Args,
        #[arg(long)]
        verbose_sql: bool,
    }

    #[test]
    fn flattens_without_a_clash() {
        let _env = super::ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        super::clear_variables();
        Args::command().debug_assert();
        let help = Args::command().render_help().to_string();
        assert!(help.starts_with("My operator"), "the program's about stays:\n{help}");
        let args = Args::try_parse_from(["op", "--verbose-sql", "-v"]).unwrap();
        assert!(args.verbose_sql);
        assert_eq!(args.memo.verbosity(), 1);
    }
}

#[test]
fn an_empty_command_line_gives_the_defaults() {
    let flags = parse(&[]).unwrap();
    assert_eq!(flags.memo, Args::default());
    assert_eq!(flags.memo.source, None);
    assert!(flags.memo.namespaces.is_empty());
    assert_eq!(flags.memo.workers, None);
    assert_eq!(flags.memo.shutdown_timeout, None);
    assert_eq!(flags.memo.redis, None);
    assert_eq!(flags.memo.name, None);
    assert_eq!(flags.memo.shard, None);
    assert_eq!(flags.memo.log_format, LogFormat::Text);
    assert_eq!(flags.memo.verbosity(), 0);
    assert_eq!(flags.database_url, "postgres://localhost/");
}

#[test]
fn every_flag_is_read() {
    let flags = parse(&[
        "--source",
        "events.json",
        "-n",
        "default",
        "--namespace",
        "staging",
        "--namespace=prod",
        "--workers",
        "4",
        "--shutdown-timeout",
        "1m30s",
        "--redis",
        "redis://127.0.0.1:6379/",
        "--name",
        "greeter",
        "--shard",
        "1/3",
        "--log-format",
        "json",
        "--liveness",
        "127.0.0.1:8080",
        "--post-events",
        "all",
        "--progress-store",
        "shared",
        "--progress-prefix",
        "example.com",
        "--finalizer",
        "example.com/cleanup",
        "-vv",
        "--database-url",
        "postgres://db/",
    ])
    .unwrap();
    let memo = &flags.memo;
    assert_eq!(memo.source.as_deref(), Some("events.json"));
    assert_eq!(memo.namespaces, ["default", "staging", "prod"]);
    assert_eq!(memo.workers, Some(4));
    assert_eq!(memo.shutdown_timeout, Some(Duration::from_secs(90)));
    assert_eq!(memo.redis.as_deref(), Some("redis://127.0.0.1:6379/"));
    assert_eq!(memo.name.as_deref(), Some("greeter"));
    assert_eq!(memo.shard, Some(Shard::new(1, 3).unwrap()));
    assert_eq!(memo.log_format, LogFormat::Json);
    assert_eq!(memo.liveness.as_deref(), Some("127.0.0.1:8080"));
    assert_eq!(memo.post_events, memo_runtime::PostEvents::All);
    assert_eq!(memo.progress_store, memo_runtime::ProgressIn::Shared);
    assert_eq!(memo.progress_prefix.as_deref(), Some("example.com"));
    assert_eq!(memo.finalizer.as_deref(), Some("example.com/cleanup"));
    assert_eq!(memo.verbose, 2);
    assert_eq!(memo.verbosity(), 2);
    assert_eq!(flags.database_url, "postgres://db/");
    assert_eq!(parse(&["--source", "-"]).unwrap().memo.source.as_deref(), Some("-"));
    assert_eq!(parse(&[]).unwrap().memo.post_events, memo_runtime::PostEvents::Warning);
    assert_eq!(
        parse(&[]).unwrap().memo.progress_store,
        memo_runtime::ProgressIn::Annotations
    );
    assert_eq!(
        parse(&["--post-events", "none"]).unwrap().memo.post_events,
        memo_runtime::PostEvents::None
    );
    let auto = parse(&[
        "--shard",
        "auto",
        "--lease-duration",
        "2s",
        "--lease-namespace",
        "operators",
    ])
    .unwrap()
    .memo;
    assert!(auto.shard.unwrap().is_auto());
    assert_eq!(auto.lease_duration, Some(Duration::from_secs(2)));
    assert_eq!(auto.lease_namespace.as_deref(), Some("operators"));
}

#[test]
fn verbosity_counts_v_and_q_wins() {
    assert_eq!(parse(&["-v"]).unwrap().memo.verbosity(), 1);
    assert_eq!(parse(&["-v", "-v", "-v"]).unwrap().memo.verbosity(), 3);
    assert_eq!(parse(&["--verbose"]).unwrap().memo.verbosity(), 1);
    assert_eq!(parse(&["-q"]).unwrap().memo.verbosity(), -1);
    assert_eq!(parse(&["--quiet"]).unwrap().memo.verbosity(), -1);
    assert_eq!(parse(&["-vv", "-q"]).unwrap().memo.verbosity(), -1);
}

#[test]
fn durations_take_seconds_or_units() {
    let timeout = |text: &str| {
        parse(&["--shutdown-timeout", text])
            .unwrap()
            .memo
            .shutdown_timeout
            .unwrap()
    };
    assert_eq!(timeout("30"), Duration::from_secs(30));
    assert_eq!(timeout("2.5"), Duration::from_millis(2500));
    assert_eq!(timeout("250ms"), Duration::from_millis(250));
    assert_eq!(timeout("10s"), Duration::from_secs(10));
    assert_eq!(timeout("1m"), Duration::from_secs(60));
    assert_eq!(timeout("1h30m"), Duration::from_secs(5400));
    assert_eq!(timeout("0"), Duration::ZERO);
    let equals = parse(&["--shutdown-timeout=1m30s"]).unwrap();
    assert_eq!(equals.memo.shutdown_timeout, Some(Duration::from_secs(90)));
}

#[test]
fn bad_values_are_clap_errors_with_exit_code_2() {
    for (flags, needle) in [
        (&["--workers", "0"][..], "positive number"),
        (&["--workers", "many"], "positive number"),
        (
            &["--shutdown-timeout", "soon"],
            "`--shutdown-timeout soon` is not a duration",
        ),
        (&["--shutdown-timeout=-1"], "non-negative"),
        (&["--shard", "3/3"], "shard 3/3 does not exist"),
        (&["--shard", "3"], "not a shard"),
        (&["--log-format", "xml"], "xml"),
        (&["--post-events", "loud"], "[possible values: none, warning, all]"),
        (&["--progress-store", "disk"], "[possible values: annotations, shared]"),
        (&["--lease-duration", "10ms"], "too short for a lease"),
        (&["--shard", "automatic"], "or `auto`"),
        (&["--lease-duration", "10ms"], "too short for a lease"),
        (&["--progress-prefix", "Memo Dev"], "is not a DNS subdomain"),
        (&["--finalizer", "cleanup"], "is not a qualified name"),
        (&["--source", ""], "`-` for standard input"),
        (&["--namespace", " "], "must not be empty"),
        (&["--name", ""], "must not be empty"),
        (&["--wrokers", "4"], "--wrokers"),
        (&["--workers"], "--workers"),
        (&["--liveness", "127.0.0.1:99999"], "`99999` is not a port"),
        (&["--liveness", "127.0.0.1:99999"], "--liveness"),
        (&["--liveness", "127.0.0.1:http"], "`http` is not a port"),
        (&["--liveness", "127.0.0.1:"], "`` is not a port"),
        (&["--liveness", "127.0.0.1"], "give HOST:PORT"),
        (&["--liveness", ":8080"], "is not a host"),
        (&["--liveness", "local host:8080"], "`local host` is not a host"),
        (&["--liveness", "::1:8080"], "in brackets"),
        (&["--liveness", "[::g]:8080"], "in brackets"),
    ] {
        let err = error(flags);
        assert_eq!(err.exit_code(), 2, "{flags:?}: {err}");
        assert!(err.use_stderr(), "{flags:?}");
        let message = err.to_string();
        assert!(message.contains(needle), "{flags:?}: `{needle}` is not in:\n{message}");
    }
    assert_eq!(error(&["--wrokers", "4"]).kind(), ErrorKind::UnknownArgument);
    assert_eq!(error(&["--log-format", "xml"]).kind(), ErrorKind::InvalidValue);
}

#[test]
fn liveness_takes_a_host_name_or_an_address_and_a_port() {
    for address in [
        "127.0.0.1:8080",
        "0.0.0.0:0",
        "localhost:65535",
        "metrics.example:9090",
        "[::1]:8080",
        "[::]:0",
    ] {
        let flags = parse(&["--liveness", address]).unwrap_or_else(|err| panic!("{address}: {err}"));
        assert_eq!(flags.memo.liveness.as_deref(), Some(address));
    }
}

#[test]
fn help_exits_with_0_and_lists_every_flag_with_its_variable() {
    let err = error(&["--help"]);
    assert_eq!(err.kind(), ErrorKind::DisplayHelp);
    assert_eq!(err.exit_code(), 0);
    let help = err.to_string();
    for needle in [
        "--source <FILE|->",
        "-n, --namespace <NS>",
        "--workers <N>",
        "--shutdown-timeout <DURATION>",
        "--redis <URL>",
        "[env: MEMO_REDIS_URL]",
        "--name <NAME>",
        "--shard <I/N>",
        "[env: MEMO_SHARD=]",
        "--lease-duration <DURATION>",
        "--lease-namespace <NS>",
        "--progress-store <WHERE>",
        "--post-events <WHICH>",
        "--lease-duration <DURATION>",
        "--progress-store <WHERE>",
        "--post-events <WHICH>",
        "--log-format <FORMAT>",
        "[env: MEMO_LOG_FORMAT=]",
        "[default: text]",
        "--liveness <HOST:PORT>",
        "[env: MEMO_LIVENESS=]",
        "-v, --verbose",
        "-q, --quiet",
        "--database-url <DATABASE_URL>",
    ] {
        assert!(help.contains(needle), "`{needle}` is missing from the help:\n{help}");
    }
}

/// All the environment checks in one test, under the lock: set, read, overridden by the flag,
/// bad values refused, unset again.
#[test]
fn environment_variables_fill_in_missing_flags() {
    let _env = ENV.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let parse = |flags: &[&str]| Flags::try_parse_from(std::iter::once("my-operator").chain(flags.iter().copied()));
    clear_variables();
    // TODO: Audit that the environment access only happens in single-threaded code.
    unsafe { std::env::set_var("MEMO_REDIS_URL", "redis://from-env:6379/") };
    // TODO: Audit that the environment access only happens in single-threaded code.
    unsafe { std::env::set_var("MEMO_SHARD", "2/4") };
    // TODO: Audit that the environment access only happens in single-threaded code.
    unsafe { std::env::set_var("MEMO_LOG_FORMAT", "json") };
    // TODO: Audit that the environment access only happens in single-threaded code.
    unsafe { std::env::set_var("MEMO_LIVENESS", "127.0.0.1:9090") };
    // TODO: Audit that the environment access only happens in single-threaded code.
    unsafe { std::env::set_var("CLI_ARGS_TEST_DATABASE_URL", "postgres://from-env/") };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let flags = parse(&[]).unwrap();
        assert_eq!(flags.memo.redis.as_deref(), Some("redis://from-env:6379/"));
        assert_eq!(flags.memo.shard, Some(Shard::new(2, 4).unwrap()));
        assert_eq!(flags.memo.log_format, LogFormat::Json);
        assert_eq!(flags.memo.liveness.as_deref(), Some("127.0.0.1:9090"));
        assert_eq!(flags.database_url, "postgres://from-env/");

        // A flag wins over its variable.
        let flags = parse(&[
            "--redis",
            "redis://flag:6379/",
            "--shard",
            "0/2",
            "--log-format",
            "text",
        ])
        .unwrap();
        assert_eq!(flags.memo.redis.as_deref(), Some("redis://flag:6379/"));
        assert_eq!(flags.memo.shard, Some(Shard::new(0, 2).unwrap()));
        assert_eq!(flags.memo.log_format, LogFormat::Text);

        // Bad values in variables are clap's errors too.
        // TODO: Audit that the environment access only happens in single-threaded code.
        unsafe { std::env::set_var("MEMO_SHARD", "3/3") };
        let err = parse(&[]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("shard 3/3 does not exist"), "{err}");
        // TODO: Audit that the environment access only happens in single-threaded code.
        unsafe { std::env::set_var("MEMO_SHARD", "1/2") };
        // TODO: Audit that the environment access only happens in single-threaded code.
        unsafe { std::env::set_var("MEMO_LOG_FORMAT", "xml") };
        assert_eq!(parse(&[]).unwrap_err().exit_code(), 2);
        // TODO: Audit that the environment access only happens in single-threaded code.
        unsafe { std::env::set_var("MEMO_LOG_FORMAT", "json") };
        // TODO: Audit that the environment access only happens in single-threaded code.
        unsafe { std::env::set_var("MEMO_LIVENESS", "127.0.0.1:99999") };
        let err = parse(&[]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("`99999` is not a port"), "{err}");
        // TODO: Audit that the environment access only happens in single-threaded code.
        unsafe { std::env::set_var("MEMO_LIVENESS", "127.0.0.1:9090") };

        // Unset, the defaults are back.
        clear_variables();
        let flags = parse(&[]).unwrap();
        assert_eq!(flags.memo, Args::default());
    }));
    clear_variables();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
