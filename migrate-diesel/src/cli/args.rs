//! The command line's grammar (clap). It parses; it never touches a
//! database or the configuration.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};

/// Versioned database migrations, compiled into this application.
#[derive(Parser)]
#[command(about = "Versioned database migrations, compiled into this application")]
pub(super) struct Args {
    #[command(flatten)]
    pub(super) global: Global,
    #[command(subcommand)]
    pub(super) command: Command,
}

/// Options every subcommand takes.
#[derive(ClapArgs)]
pub(super) struct Global {
    /// The database URL (a file path for SQLite); overrides the configuration
    /// file and DATABASE_URL
    #[arg(long, global = true, value_name = "URL")]
    pub(super) database_url: Option<String>,
    /// The environment of the configuration file [default: MIGRATE_ENV, else
    /// the file's default, else dev]
    #[arg(long, global = true, value_name = "NAME")]
    pub(super) env: Option<String>,
    /// The configuration file [default: migrate.toml, else database.json]
    #[arg(long, global = true, value_name = "FILE")]
    pub(super) config: Option<PathBuf>,
    /// The application version to migrate to [default: the configuration,
    /// else APPLICATION_VERSION, else the package version]
    #[arg(long, global = true, value_name = "VERSION")]
    pub(super) app_version: Option<String>,
    /// The tracking table [default: migrate_history]
    #[arg(long, global = true, value_name = "NAME")]
    pub(super) table: Option<String>,
    /// Run pending scripts below the database version instead of refusing
    #[arg(long, global = true)]
    pub(super) allow_out_of_order: bool,
    /// Run the whole plan in one transaction: all or nothing
    #[arg(long, global = true)]
    pub(super) atomic: bool,
    /// Seconds to wait for another instance's migration lock [default: 120]
    #[arg(long, global = true, value_name = "SECONDS")]
    pub(super) lock_timeout: Option<u64>,
    /// More logs: -v shows the planner's decisions, -vv everything
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(super) verbose: u8,
    /// Only errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(super) quiet: bool,
}

#[derive(Subcommand)]
pub(super) enum Command {
    /// Every known and applied script, with its state
    Status(Status),
    /// The steps `up` or `down` would run, with their SQL; changes nothing
    Plan(Plan),
    /// Apply pending scripts up to the application version (or --to)
    Up(Up),
    /// Revert the latest script (or --steps N, or --to VERSION)
    Down(Down),
    /// Revert the latest script and apply it again, to test its `down`
    Redo,
    /// Record an existing database as being at VERSION without running
    /// anything
    Baseline(Baseline),
    /// Write a new migration: an SQL folder, or a Rust script with --rust
    Create(Create),
    /// Record how a step left in progress (dirty) ended, after repairing the
    /// database by hand
    Resolve(Resolve),
    /// On an empty database, check that each script's down restores the
    /// schema from before its up, and that up again rebuilds the same schema
    Verify(Verify),
    /// Adopt a database that diesel_migrations has been migrating: check
    /// that its history is complete, then start the semver history on top
    AdoptDiesel(AdoptDiesel),
}

#[derive(ClapArgs)]
pub(super) struct AdoptDiesel {
    /// diesel's migrations folder (`<timestamp>_<name>/up.sql`)
    #[arg(long, value_name = "DIR", default_value = "migrations")]
    pub(super) dir: PathBuf,
    /// Also record the semver scripts at or below VERSION as applied
    #[arg(long, value_name = "VERSION", value_parser = version_arg)]
    pub(super) baseline: Option<String>,
}

#[derive(ClapArgs)]
pub(super) struct Verify {
    /// Fail on scripts without down too (by default they are reported)
    #[arg(long)]
    pub(super) strict: bool,
}

#[derive(ClapArgs)]
pub(super) struct Resolve {
    /// The version of the step in progress
    #[arg(long, value_name = "VERSION", value_parser = version_arg)]
    pub(super) version: String,
    /// All of its changes are in place: record it as done
    #[arg(
        long,
        conflicts_with = "rolled_back",
        required_unless_present = "rolled_back"
    )]
    pub(super) completed: bool,
    /// None of its changes are in place: forget the attempt
    #[arg(long)]
    pub(super) rolled_back: bool,
}

#[derive(ClapArgs)]
pub(super) struct Status {
    /// Print JSON for tools
    #[arg(long)]
    pub(super) json: bool,
    /// Exit with code 3 when there is work to do (for deploy scripts)
    #[arg(long)]
    pub(super) check: bool,
}

#[derive(ClapArgs)]
pub(super) struct Plan {
    /// Plan for this version instead of the application version (downgrades
    /// included)
    #[arg(long, value_name = "VERSION", value_parser = version_arg)]
    pub(super) to: Option<String>,
    /// Print JSON for tools
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(ClapArgs)]
pub(super) struct Up {
    /// Apply pending scripts up to and including this version
    #[arg(long, value_name = "VERSION", value_parser = version_arg)]
    pub(super) to: Option<String>,
    /// Show the plan and stop
    #[arg(long)]
    pub(super) dry_run: bool,
}

#[derive(ClapArgs)]
pub(super) struct Down {
    /// Revert this many of the latest scripts [default: 1]
    #[arg(long, value_name = "N", conflicts_with = "to", value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) steps: Option<u32>,
    /// Revert every script above this version
    #[arg(long, value_name = "VERSION", value_parser = version_arg)]
    pub(super) to: Option<String>,
    /// Record scripts without `down` as reverted instead of refusing
    #[arg(long)]
    pub(super) skip_irreversible: bool,
    /// Show the plan and stop
    #[arg(long)]
    pub(super) dry_run: bool,
}

#[derive(ClapArgs)]
pub(super) struct Baseline {
    /// The version the existing database is at
    #[arg(long, value_name = "VERSION", value_parser = version_arg)]
    pub(super) version: String,
}

#[derive(ClapArgs)]
pub(super) struct Create {
    /// The migration's name: letters, digits, `_` and `-` (spaces become `_`)
    pub(super) name: String,
    /// Write a Rust `#[migration_script]` file instead of an SQL folder
    #[arg(long)]
    pub(super) rust: bool,
    /// Its version [default: the next patch above the highest known one]
    #[arg(long, value_name = "VERSION", value_parser = version_arg)]
    pub(super) version: Option<String>,
    /// Where to write it [default: the configuration's migrations_dir or
    /// scripts_dir, else the application's]
    #[arg(long, value_name = "DIR")]
    pub(super) dir: Option<PathBuf>,
}

/// The global flags, by their ids.
const GLOBALS: [&str; 10] = [
    "database_url",
    "env",
    "config",
    "app_version",
    "table",
    "allow_out_of_order",
    "atomic",
    "lock_timeout",
    "verbose",
    "quiet",
];

/// Whether the global flag `id` means something to `sub`: the others are
/// hidden from its help.
fn takes(sub: &str, id: &str) -> bool {
    // Every subcommand reads the configuration (the URL tells `create` the
    // driver for a Rust script's connection).
    let everywhere = matches!(id, "database_url" | "env" | "config" | "verbose" | "quiet");
    match sub {
        "up" | "down" | "redo" => true,
        "status" | "plan" => id != "atomic",
        // The application version tells where the next version goes.
        "create" => everywhere || id == "app_version",
        _ => everywhere || matches!(id, "table" | "lock_timeout"),
    }
}

/// Hides, in each subcommand's help, the global flags it does not take: a
/// hidden copy of the flag in the subcommand stops clap from propagating
/// the global one there. Given anyway, such a flag is accepted and means
/// nothing there, as a wrapper script may pass the same flags to every
/// command.
pub(super) fn scoped(mut cmd: clap::Command) -> clap::Command {
    let globals: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| GLOBALS.contains(&a.get_id().as_str()))
        .cloned()
        .collect();
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_owned())
        .collect();
    for sub in subs {
        for arg in globals.iter().filter(|a| !takes(&sub, a.get_id().as_str())) {
            let hidden = arg.clone().global(false).hide(true);
            cmd = cmd.mut_subcommand(&sub, |c| c.arg(hidden));
        }
    }
    cmd
}

/// A version argument, checked by the parser: an invalid one is a usage
/// error (exit 2), as any bad argument is, not a failure of the command.
fn version_arg(text: &str) -> Result<String, String> {
    migrate_core::Version::parse(text)
        .map(|_| text.to_owned())
        .map_err(|e| e.to_string())
}

/// Adds an example section to the help of the program and each subcommand,
/// spelled with the program's real name.
pub(super) fn with_examples(cmd: clap::Command, bin: &str) -> clap::Command {
    let examples: [(&str, &str); 11] = [
        (
            "",
            "  {bin} status                    # where the database stands\n  {bin} up                        # migrate to the application version\n  {bin} --env prod status --check # exit code 3 when work is pending",
        ),
        (
            "status",
            "  {bin} status\n  {bin} status --json | jq '.scripts[] | select(.state != \"applied\")'\n  {bin} --env prod status --check || echo \"migrations pending\"",
        ),
        (
            "plan",
            "  {bin} plan                      # what start-up would run\n  {bin} plan --to 1.2.0           # what moving to 1.2.0 would run, downgrades included",
        ),
        (
            "up",
            "  {bin} up\n  {bin} up --to 1.2.0\n  {bin} --env prod --atomic up --dry-run",
        ),
        (
            "down",
            "  {bin} down                      # revert the latest script\n  {bin} down --steps 3\n  {bin} down --to 1.0.0",
        ),
        (
            "redo",
            "  {bin} redo                      # down, then up, the latest script",
        ),
        (
            "baseline",
            "  {bin} --env prod baseline --version 1.4.0   # the live database already has 1.4.0's schema",
        ),
        (
            "resolve",
            "  {bin} status                    # shows the step IN PROGRESS and what to do\n  {bin} resolve --version 1.3.0 --completed    # its changes are all in place\n  {bin} resolve --version 1.3.0 --rolled-back  # none of them are",
        ),
        (
            "verify",
            "  {bin} --database-url sqlite://:memory: verify          # every down, on a throwaway database
  {bin} --env ci verify --strict  # scripts without down fail too",
        ),
        (
            "adopt-diesel",
            "  {bin} --env prod adopt-diesel --dir diesel_migrations   # diesel's history is complete: start ours on top\n  {bin} --env prod up",
        ),
        (
            "create",
            "  {bin} create add_email          # migrations/<next>_add_email/up.sql and down.sql\n  {bin} create backfill --rust    # src/migrations/v<next>_backfill.rs\n  {bin} create add_index --version 2.0.0",
        ),
    ];
    let help = |text: &str| format!("Examples:\n{}", text.replace("{bin}", bin));
    let mut cmd = cmd.name(bin.to_owned()).bin_name(bin.to_owned());
    for (sub, text) in examples {
        cmd = if sub.is_empty() {
            cmd.after_help(help(text))
        } else {
            cmd.mut_subcommand(sub, |c| c.after_help(help(text)))
        };
    }
    cmd
}
