//! `gateway-policy`: check, format, compile, test, explain, diff, publish and roll back routing policies.
//!
//! Exit codes: 0 clean, 1 findings / failed tests / changed decisions, 2 usage or I/O error.

/// `println!` that ignores a closed pipe (`gateway-policy … | head` must not panic).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` that ignores a closed pipe.
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

mod command;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "gateway-policy",
    version,
    about = "Check, format, compile, test and explain AI gateway routing policies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Github,
}

#[derive(clap::Args)]
pub struct Sources {
    /// Policy files, or directories whose *.policy files are read in name order.
    #[arg(default_value = "policies")]
    pub paths: Vec<PathBuf>,
    /// The provider/model catalog (default: catalog.toml in the policy directory, else the built-in one).
    #[arg(long)]
    pub catalog: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Report every error and lint in the policy.
    Check {
        #[command(flatten)]
        sources: Sources,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        /// Exit 1 on warnings too.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Rewrite policy files in the canonical layout (comments are kept).
    Fmt {
        #[arg(default_value = "policies")]
        paths: Vec<PathBuf>,
        /// Change nothing; exit 1 if a file is not formatted.
        #[arg(long)]
        check: bool,
    },
    /// Compile the policy to the JSON artifact the gateway loads.
    Compile {
        #[command(flatten)]
        sources: Sources,
        /// Where to write it (`-` for standard output).
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Run the policy's test cases (tests/*.toml beside the policy files).
    Test {
        #[command(flatten)]
        sources: Sources,
        /// Test files or directories (default: the tests/ folder of each policy directory).
        #[arg(long = "cases")]
        cases: Vec<PathBuf>,
    },
    /// Show how the policy decides for one request, condition by condition.
    Explain {
        #[command(flatten)]
        sources: Sources,
        /// The request's attributes as JSON, e.g. '{"tokens":120,"lang":"zh","key":{"team":"research"}}'.
        #[arg(long)]
        attrs: String,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Compile and publish: write the artifact under its hash, then move the active pointer to it (Workers KV
    /// via wrangler, or a directory for the native gateway). Gateways pick it up without a restart.
    Publish {
        #[command(flatten)]
        sources: Sources,
        #[command(flatten)]
        target: command::publish::Target,
        /// Refuse to publish a policy with warnings too.
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Move the active pointer back to the policy that was active before the last publish (or to --to HASH).
    Rollback {
        #[command(flatten)]
        target: command::publish::Target,
        #[arg(long)]
        to: Option<String>,
    },
    /// What a candidate policy would change on logged traffic: rule and first-target changes, denials, and
    /// the cost of the logged usage at the new targets; a sample of the changed requests.
    Replay {
        #[command(flatten)]
        sources: Sources,
        #[command(flatten)]
        log: command::replay::LogSource,
        /// How many changed requests to show.
        #[arg(long, default_value = "10")]
        sample: usize,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
    },
    /// Which decisions change between two policies (sources or compiled .json) over recorded attributes.
    Diff {
        old: PathBuf,
        new: PathBuf,
        /// One JSON object of attributes per line.
        #[arg(long)]
        attrs_file: PathBuf,
        #[arg(long, value_enum, default_value = "human")]
        format: Format,
        #[arg(long)]
        catalog: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check {
            sources,
            format,
            deny_warnings,
        } => command::check::run(&sources, format, deny_warnings),
        Command::Fmt { paths, check } => command::fmt::run(&paths, check),
        Command::Compile { sources, output } => command::compile::run(&sources, &output),
        Command::Test { sources, cases } => command::test::run(&sources, &cases),
        Command::Explain {
            sources,
            attrs,
            format,
        } => command::explain::run(&sources, &attrs, format),
        Command::Publish {
            sources,
            target,
            deny_warnings,
        } => command::publish::publish(&sources, &target, deny_warnings),
        Command::Rollback { target, to } => command::publish::rollback(&target, to.as_deref()),
        Command::Replay {
            sources,
            log,
            sample,
            format,
        } => command::replay::run(&sources, &log, sample, format),
        Command::Diff {
            old,
            new,
            attrs_file,
            format,
            catalog,
        } => command::diff::run(&old, &new, &attrs_file, format, catalog.as_deref()),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("gateway-policy: {e}");
            ExitCode::from(2)
        }
    }
}
