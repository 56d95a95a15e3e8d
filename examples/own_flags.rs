//! An operator with a flag of its own beside the runtime's: `--greeting TEXT` (or the `GREETING`
//! variable) is kept in the operator memo, and every `KopfExample` event is greeted with it. A
//! resource whose `spec.fail` is true makes the handler fail, to show a failure's log line.
//!
//! ```text
//! cargo run -p memo-examples --example own_flags -- --greeting hello \
//!     --source examples/data/kopfexamples.json --log-format json
//! ```

// clap's derive macros write `clap::...` paths: this brings memo-runtime's clap into scope
// under that name, so the program needs no clap dependency of its own.
use memo_runtime::clap::{self, Parser};
use memo_runtime::prelude::*;

/// Greets every KopfExample.
#[derive(Parser)]
#[command(name = "own_flags", after_help = memo_runtime::cli::EXIT_CODES)]
struct Flags {
    #[command(flatten)]
    memo: memo_runtime::cli::Args,
    /// What to say to each resource.
    #[arg(long, value_name = "TEXT", env = "GREETING", default_value = "hello")]
    greeting: String,
}

#[handler(event = "KopfExample")]
fn greet(memo: &Memo, body: &serde_json::Value, logger: &Logger) -> Result<(), Error> {
    let greeting = memo.get::<String>("greeting").map_or("hello", String::as_str);
    if body["spec"]["fail"].as_bool() == Some(true) {
        return Err(Error::custom(format!("cannot say {greeting}")));
    }
    logger.info(format!("{greeting}, {}!", logger.name().unwrap_or("operator")));
    Ok(())
}

fn main() -> std::process::ExitCode {
    let flags = Flags::parse();
    let mut memo = Memo::new();
    memo.insert("greeting", flags.greeting);
    memo_runtime::run_with_args(flags.memo, Operator::new().memo(memo))
}
