//! The command line, inside the application's own binary: code migrations
//! are compiled in, so the tool that runs them must be the application.
//! It configures a [`Migrator`] and calls its entry points; it sends no SQL
//! of its own.
//!
//! ```no_run
//! use std::process::ExitCode;
//!
//! # mod migrate { pub use migrate_core::package_version; pub use migrate_diesel::{cli, Migrator}; }
//! fn main() -> ExitCode {
//!     // `myapp status`, `myapp up`, `myapp down --steps 2`, ...
//!     migrate::cli::run(migrate::Migrator::new(migrate::package_version!()))
//! }
//! ```
//!
//! An application that also does other work calls the command line only
//! when it was given arguments, for example
//! `if std::env::args_os().len() > 1 { return cli::run(migrator) }`.
//!
//! Configuration comes from `migrate.toml` or db-migrate's `database.json`
//! (see [`migrate::config`](migrate_core::config)). Exit codes: [`SUCCESS`], [`FAILURE`],
//! [`USAGE`], [`PENDING`] and [`AHEAD`].

mod args;
mod create;
mod output;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};
use migrate_core::config::{self, ConfigError, DatabaseUrl, Driver, Environment, Request};
use migrate_core::{Direction, Target, Version};

use crate::{Backend, Error, Migrator, Resolution};
use args::{Args, Command, Global};
use output::Out;

/// Exit code: the command succeeded.
pub const SUCCESS: u8 = 0;
/// Exit code: the command failed (bad configuration, a refused plan, a
/// failed step, an unreachable database, ...). Nothing was changed unless
/// the message says which steps were applied.
pub const FAILURE: u8 = 1;
/// Exit code: the command line itself is wrong (clap's usage errors).
pub const USAGE: u8 = 2;
/// Exit code: `status --check` found work to do.
pub const PENDING: u8 = 3;
/// Exit code: `status --check` found the database ahead of the application
/// (scripts applied above its version) and nothing to run: start-up
/// tolerates that and changes nothing, or refuses, as its policy says.
pub const AHEAD: u8 = 4;

/// The command line for an application: its migrator, and where `create`
/// writes new migrations (unless the configuration says otherwise).
#[derive(Debug, Clone)]
pub struct Cli {
    migrator: Migrator,
    migrations_dir: PathBuf,
    scripts_dir: PathBuf,
    config: Option<PathBuf>,
}

/// Runs the command line on the process's arguments with `migrator` and
/// the default directories (`migrations`, `src/migrations`).
pub fn run(migrator: Migrator) -> ExitCode {
    Cli::new(migrator).run()
}

impl Cli {
    /// A command line running `migrator`'s scripts.
    pub fn new(migrator: Migrator) -> Cli {
        Cli {
            migrator,
            migrations_dir: PathBuf::from("migrations"),
            scripts_dir: PathBuf::from("src/migrations"),
            config: None,
        }
    }

    /// The configuration file to read when `--config` is not given (default:
    /// `migrate.toml`, else `database.json`, in the working directory).
    pub fn config_file(mut self, file: impl Into<PathBuf>) -> Cli {
        self.config = Some(file.into());
        self
    }

    /// Where `create` writes SQL migration folders (default `migrations`,
    /// relative to the working directory): the folder the application's
    /// `embed_sql!` reads.
    pub fn migrations_dir(mut self, dir: impl Into<PathBuf>) -> Cli {
        self.migrations_dir = dir.into();
        self
    }

    /// Where `create --rust` writes script files (default `src/migrations`).
    pub fn scripts_dir(mut self, dir: impl Into<PathBuf>) -> Cli {
        self.scripts_dir = dir.into();
        self
    }

    /// Runs on the process's arguments.
    pub fn run(self) -> ExitCode {
        self.run_from(std::env::args_os())
    }

    /// Runs on `args` (the first is the program's name).
    pub fn run_from<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let bin = program_name(args.first());
        let command = args::scoped(args::with_examples(Args::command(), &bin));
        let matches = match command.try_get_matches_from(&args) {
            Ok(m) => m,
            Err(e) => {
                if !e.use_stderr() {
                    let _ = e.print(); // --help
                    return ExitCode::from(SUCCESS);
                }
                // A URL typed where a subcommand was expected is echoed
                // back by clap: mask any password in it.
                let mut text = e.render().to_string();
                for arg in &args {
                    text = DatabaseUrl::new(arg.to_string_lossy()).redact(&text);
                }
                eprint!("{text}");
                return ExitCode::from(USAGE);
            }
        };
        let parsed = match Args::from_arg_matches(&matches) {
            Ok(a) => a,
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(USAGE);
            }
        };
        let mut out = Out::new(parsed.global.quiet);
        // `.env` in this directory or the nearest parent that has one, as
        // diesel CLI and sqlx-cli read it: a variable already set wins.
        if let Err(e) = dotenvy::dotenv()
            && !e.not_found()
        {
            out.error(&CliError::Other(format!("cannot read .env: {e}")));
            return ExitCode::from(FAILURE);
        }
        match self.execute(&parsed, &mut out) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                out.error(&e);
                ExitCode::from(FAILURE)
            }
        }
    }

    fn execute(&self, args: &Args, out: &mut Out) -> Result<u8, CliError> {
        let g = &args.global;
        let request = Request {
            config: g.config.as_deref().or(self.config.as_deref()),
            env: g.env.as_deref(),
            database_url: g.database_url.as_deref(),
        };
        if let Command::Create(create) = &args.command {
            // `create` needs no database, only the directories and driver.
            let env = match config::load(&request) {
                Ok(env) => Some(env),
                Err(ConfigError::NoConfiguration { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            output::init_logging(g, None);
            let settings = env.as_ref().map(|e| &e.settings);
            // The default directories are the package's (`embed_sql!` reads
            // its folder beside Cargo.toml), wherever in it this runs.
            let root = package_root();
            let default = |dir: &PathBuf| match &root {
                Some(root) if dir.is_relative() => root.join(dir),
                _ => dir.clone(),
            };
            let dirs = create::Dirs {
                sql: create
                    .dir
                    .clone()
                    .or_else(|| settings.and_then(|s| s.migrations_dir.clone()))
                    .unwrap_or_else(|| default(&self.migrations_dir)),
                rust: create
                    .dir
                    .clone()
                    .or_else(|| settings.and_then(|s| s.scripts_dir.clone()))
                    .unwrap_or_else(|| default(&self.scripts_dir)),
            };
            let migrator = self.configured(g, env.as_ref().map(|e| &e.settings))?;
            create::create(
                create,
                &dirs,
                &migrator,
                env.as_ref().map(|e| e.driver),
                out,
            )?;
            return Ok(SUCCESS);
        }

        let env = config::load(&request)?;
        out.set_url(env.url.clone());
        output::init_logging(g, Some(env.url.clone()));
        tracing::debug!(target: "migrate", env = %env.name, origin = %env.origin, driver = %env.driver, url = %env.url, "configuration loaded");
        let migrator = self.configured(g, Some(&env.settings))?;
        match env.driver {
            #[cfg(feature = "sqlite")]
            Driver::Sqlite => with_backend::<diesel::SqliteConnection>(&migrator, &env, args, out),
            #[cfg(feature = "postgres")]
            Driver::Postgres => with_backend::<diesel::PgConnection>(&migrator, &env, args, out),
            #[cfg(feature = "mysql")]
            Driver::Mysql => with_backend::<diesel::MysqlConnection>(&migrator, &env, args, out),
            #[allow(unreachable_patterns)] // every driver may be built in
            driver => Err(ConfigError::DriverNotBuilt {
                origin: env.origin.clone(),
                env: env.name.clone(),
                driver,
            }
            .into()),
        }
    }

    /// The migrator with the file's settings, then the command line's,
    /// applied over the application's own.
    fn configured(
        &self,
        g: &Global,
        settings: Option<&config::Settings>,
    ) -> Result<Migrator, CliError> {
        let mut m = self.migrator.clone();
        if let Some(s) = settings {
            m = m.configure(s);
        }
        if let Some(t) = &g.table {
            m = m.table(t.clone());
        }
        if let Some(v) = &g.app_version {
            m = m.app_version(v.clone());
        }
        if g.allow_out_of_order {
            m = m.allow_out_of_order(true);
        }
        if g.atomic {
            m = m.atomic(true);
        }
        if let Some(secs) = g.lock_timeout {
            m = m.lock_timeout(Duration::from_secs(secs));
        }
        m.validate()?;
        Ok(m)
    }
}

/// What the command line reports as a failure.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Migrate(#[from] Error),
    #[error("cannot connect to {url}: {source}")]
    Connect {
        url: DatabaseUrl,
        source: diesel::ConnectionError,
    },
    #[error("{0}")]
    Other(String),
}

fn check_versions(command: &Command) -> Result<(), CliError> {
    let (what, text) = match command {
        Command::Plan(a) => ("target version", a.to.as_deref()),
        Command::Up(a) => ("target version", a.to.as_deref()),
        Command::Down(a) => ("target version", a.to.as_deref()),
        Command::Baseline(a) => ("baseline version", Some(a.version.as_str())),
        Command::Resolve(a) => ("version to resolve", Some(a.version.as_str())),
        Command::AdoptDiesel(a) => ("baseline version", a.baseline.as_deref()),
        _ => ("", None),
    };
    match text {
        Some(text) => parse_version(what, text).map(drop),
        None => Ok(()),
    }
}

fn parse_version(what: &'static str, text: &str) -> Result<Version, CliError> {
    Version::parse(text).map_err(|source| Error::InvalidVersion { what, source }.into())
}

fn with_backend<C: Backend>(
    migrator: &Migrator,
    env: &Environment,
    args: &Args,
    out: &mut Out,
) -> Result<u8, CliError> {
    // Bad versions are refused before connecting, so they change nothing.
    check_versions(&args.command)?;
    let read_only = match &args.command {
        Command::Status(_) | Command::Plan(_) => true,
        Command::Up(a) => a.dry_run,
        Command::Down(a) => a.dry_run,
        _ => false,
    };
    let mut conn = connect::<C>(env, read_only)?;
    let conn = &mut conn;
    match &args.command {
        Command::Status(a) => {
            let status = migrator.status(conn)?;
            let header = format!("database {} (environment `{}`)", env.url, env.name);
            // What start-up would do: a refused plan (a step in progress, a
            // database ahead under the refuse policy) still shows the table.
            let check = if a.check {
                match migrator.plan(conn) {
                    Ok(dry) => Some(Ok(dry)),
                    Err(e @ Error::DatabaseAhead { .. }) => Some(Err(e)),
                    Err(e) => {
                        if !a.json {
                            out.line(&header);
                            out.text(&status.to_string());
                        }
                        return Err(e.into());
                    }
                }
            } else {
                None
            };
            let app = &status.app_version.version;
            let (code, verdict) = match &check {
                None => (SUCCESS, None),
                Some(Err(refused)) => (AHEAD, Some(format!("start-up refuses: {refused}"))),
                Some(Ok(dry)) => {
                    let plan = &dry.plan;
                    let downs = plan
                        .steps
                        .iter()
                        .filter(|s| s.direction == Direction::Down)
                        .count();
                    let ups = plan.steps.len() - downs;
                    match (ups, downs, plan.ahead.len()) {
                        (0, 0, 0) => (SUCCESS, Some("up to date: nothing to run".to_owned())),
                        (0, 0, ahead) => (
                            AHEAD,
                            Some(format!(
                                "nothing to run: the database is ahead of the application version {app} ({ahead} script(s) applied above it, left in place)"
                            )),
                        ),
                        (_, 0, _) => (
                            PENDING,
                            Some(format!(
                                "{ups} script(s) to apply to reach the application version {app}: run `up`"
                            )),
                        ),
                        _ => (
                            PENDING,
                            Some(format!(
                                "a downgrade to {app} is authorized ({}): start-up reverts {downs} script(s){}",
                                dry.authorization.as_deref().unwrap_or("?"),
                                if ups > 0 {
                                    format!(" and applies {ups}")
                                } else {
                                    String::new()
                                }
                            )),
                        ),
                    }
                }
            };
            if a.json {
                let check = check.as_ref().map(Result::as_ref);
                out.json(&output::status_json(&status, env, check, code));
            } else {
                out.line(&header);
                out.text(&status.to_string());
                if let Some(verdict) = verdict {
                    out.line(&verdict);
                }
            }
            Ok(code)
        }
        Command::Plan(a) => {
            let target =
                a.to.as_deref()
                    .map(|v| parse_version("target version", v).map(Target::Version))
                    .transpose()?;
            let dry = migrator.plan_to(conn, target)?;
            if a.json {
                out.json(&output::plan_json(&dry));
            } else {
                out.text(&dry.to_string());
            }
            Ok(SUCCESS)
        }
        Command::Up(a) => {
            let target = match a.to.as_deref() {
                Some(v) => Target::UpTo(parse_version("target version", v)?),
                None => Target::UpTo(migrator.resolved_app_version()?.version),
            };
            run_or_show(migrator, conn, target, a.dry_run, out)
        }
        Command::Down(a) => {
            let target = match (&a.to, a.steps) {
                (Some(v), _) => Target::DownTo(parse_version("target version", v)?),
                (None, n) => Target::DownSteps(n.map_or(1, |n| n as usize)),
            };
            let mut m = migrator.clone();
            if a.skip_irreversible {
                m = m.skip_irreversible(true);
            }
            run_or_show(&m, conn, target, a.dry_run, out)
        }
        Command::Redo => {
            // Redo must really run `down`: never record-only.
            let migrator = &migrator.clone().skip_irreversible(false);
            let down = migrator.plan_to(conn, Some(Target::DownSteps(1)))?;
            let Some(step) = down.plan.steps.first() else {
                return Err(CliError::Other(
                    "nothing to redo: no script is applied".to_owned(),
                ));
            };
            let version = step.version.clone();
            let up = migrator.plan_to(conn, Some(Target::UpTo(version.clone())))?;
            if up.plan.steps.iter().any(|s| s.version != version) {
                return Err(CliError::Other(format!(
                    "redo would also apply other pending scripts below {version}; run `up` first"
                )));
            }
            run_or_show(migrator, conn, Target::DownSteps(1), false, out)?;
            run_or_show(migrator, conn, Target::UpTo(version), false, out)
        }
        Command::Baseline(a) => {
            let report = migrator.baseline(conn, &a.version)?;
            for s in &report.steps {
                out.line(&format!("  {s}"));
            }
            out.line(&format!(
                "baseline recorded: the database is at {} ({} script(s) marked as applied, none run)",
                report.to.as_ref().map_or_else(String::new, ToString::to_string),
                report.steps.len()
            ));
            Ok(SUCCESS)
        }
        Command::AdoptDiesel(a) => {
            let adoption = migrator.adopt_diesel(conn, &a.dir, a.baseline.as_deref())?;
            out.line(&format!(
                "adopted the diesel history: {} migration(s), the last {}; the semver scripts now run on top",
                adoption.diesel_versions.len(),
                adoption.diesel_versions.last().map_or("", String::as_str)
            ));
            if let Some(report) = &adoption.baseline {
                out.line(&format!(
                    "baseline recorded at {} ({} script(s) marked as applied, none run)",
                    report
                        .to
                        .as_ref()
                        .map_or_else(String::new, ToString::to_string),
                    report.steps.len()
                ));
            }
            Ok(SUCCESS)
        }
        Command::Verify(a) => {
            let report = migrator.verify(conn, a.strict)?;
            out.line(report.to_string().trim_end());
            Ok(SUCCESS)
        }
        Command::Resolve(a) => {
            let resolution = if a.completed {
                Resolution::Completed
            } else {
                Resolution::RolledBack
            };
            let row = migrator.resolve(conn, &a.version, resolution)?;
            out.line(&format!(
                "resolved {} `{}` ({}, change {}): {}",
                row.version,
                row.name,
                row.direction,
                row.change,
                match resolution {
                    Resolution::Completed => "recorded as done",
                    Resolution::RolledBack => "the attempt is forgotten",
                }
            ));
            Ok(SUCCESS)
        }
        Command::Create(_) => unreachable!("handled before connecting"),
    }
}

fn run_or_show<C: Backend>(
    migrator: &Migrator,
    conn: &mut C,
    target: Target,
    dry_run: bool,
    out: &mut Out,
) -> Result<u8, CliError> {
    if dry_run {
        out.text(&migrator.plan_to(conn, Some(target))?.to_string());
        return Ok(SUCCESS);
    }
    let result = migrator.run_to_with(conn, Some(target), &mut |p| out.progress(p));
    out.end_progress();
    let report = result?;
    out.line(&report.summary());
    Ok(SUCCESS)
}

/// How long the command line waits for a PostgreSQL server to answer,
/// unless the URL sets `connect_timeout` itself.
const POSTGRES_CONNECT_TIMEOUT_SECS: u32 = 10;

fn connect<C: Backend>(env: &Environment, read_only: bool) -> Result<C, CliError> {
    let url = env.url.expose();
    // diesel's MySQL connection only knows the `mysql://` scheme.
    let mariadb = url
        .strip_prefix("mariadb://")
        .map(|rest| format!("mysql://{rest}"));
    // libpq waits forever for a server that accepts and never answers.
    let postgres =
        (env.driver == Driver::Postgres && !url.contains("connect_timeout")).then(|| {
            let separator = if !url.contains("://") {
                " "
            } else if url.contains('?') {
                "&"
            } else {
                "?"
            };
            format!("{url}{separator}connect_timeout={POSTGRES_CONNECT_TIMEOUT_SECS}")
        });
    let url = match env.driver {
        Driver::Postgres => postgres.as_deref().unwrap_or(url),
        Driver::Mysql => mariadb.as_deref().unwrap_or(url),
        Driver::Sqlite => {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or(url);
            // Looking must not create the file: a missing database is empty.
            if read_only && !path.starts_with("file:") && !Path::new(path).exists() {
                tracing::debug!(target: "migrate", "{path} does not exist yet: reading it as an empty database");
                ":memory:"
            } else {
                path
            }
        }
    };
    C::establish(url).map_err(|source| CliError::Connect {
        url: env.url.clone(),
        source,
    })
}

/// The nearest directory, from the working one up, that holds a
/// `Cargo.toml`, as cargo finds it; relative to the working directory
/// (`.`, `..`, ...), so that what `create` prints stays short. `None`
/// outside any package.
fn package_root() -> Option<PathBuf> {
    let here = std::env::current_dir().ok()?;
    let mut relative = PathBuf::new();
    for dir in here.ancestors() {
        if dir.join("Cargo.toml").is_file() {
            return Some(if relative.as_os_str().is_empty() {
                PathBuf::new()
            } else {
                relative
            });
        }
        relative.push("..");
    }
    None
}

/// The program's name as usage lines show it: the file's name, without
/// `.exe` only (`blog-1.1.0-sqlite` keeps its dots).
fn program_name(arg0: Option<&OsString>) -> String {
    arg0.and_then(|a| Path::new(a).file_name())
        .map(|s| s.to_string_lossy())
        .map_or_else(
            || "app".to_owned(),
            |s| s.strip_suffix(".exe").unwrap_or(&s).to_owned(),
        )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_program_name_keeps_its_dots_and_loses_only_exe() {
        let name = |s: &str| super::program_name(Some(&std::ffi::OsString::from(s)));
        assert_eq!(name("/srv/bin/blog-1.1.0-sqlite"), "blog-1.1.0-sqlite");
        assert_eq!(name("blog-1.1.0.exe"), "blog-1.1.0");
        assert_eq!(super::program_name(None), "app");
    }
}
