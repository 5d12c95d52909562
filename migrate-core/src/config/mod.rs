//! Per-environment configuration: `migrate.toml`, or db-migrate's
//! `database.json` read as it is.
//!
//! [`load`] picks the environment (`--env`, else `MIGRATE_ENV`, else the
//! file's default, else `dev`), reads its section, resolves values taken from
//! environment variables and builds the database URL. An explicit database
//! URL (`--database-url`, else `DATABASE_URL`) overrides the file's.
//!
//! ```toml
//! # migrate.toml
//! default_env = "dev"
//!
//! [dev]
//! url = "sqlite://app.db"
//!
//! [prod]
//! driver = "postgres"
//! host = "db.internal"
//! user = "app"
//! password = { env = "PROD_DB_PASSWORD" }
//! database = "app"
//! table = "schema_history"
//! lock_timeout = 300
//! ```
//!
//! Every error names the file, the environment and the key, and nothing is
//! connected to before the whole section has resolved.

pub(crate) mod file;
mod url;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use self::url::DatabaseUrl;
use file::{Raw, RawEnv, RawFile};

/// The environment used when none is chosen.
pub const DEFAULT_ENV: &str = "dev";
/// The variable that chooses the environment when `--env` is not given.
pub const ENV_VAR: &str = "MIGRATE_ENV";
/// The variable whose URL overrides the configuration file's.
pub const DATABASE_URL_VAR: &str = "DATABASE_URL";
/// The configuration file looked for first.
pub const TOML_FILE: &str = "migrate.toml";
/// db-migrate's configuration file, looked for when there is no
/// `migrate.toml`.
pub const JSON_FILE: &str = "database.json";

/// A database driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Driver {
    /// SQLite (`sqlite`, `sqlite3`).
    Sqlite,
    /// PostgreSQL (`postgres`, `postgresql`, `pg`).
    Postgres,
    /// MySQL or MariaDB (`mysql`, `mariadb`).
    Mysql,
}

impl Driver {
    /// The names accepted for `driver`, db-migrate's included.
    pub const NAMES: &'static [&'static str] = &[
        "sqlite",
        "sqlite3",
        "postgres",
        "postgresql",
        "pg",
        "mysql",
        "mariadb",
    ];

    /// The driver called `name`, if any.
    pub fn from_name(name: &str) -> Option<Driver> {
        match name.to_ascii_lowercase().as_str() {
            "sqlite" | "sqlite3" => Some(Driver::Sqlite),
            "postgres" | "postgresql" | "pg" => Some(Driver::Postgres),
            "mysql" | "mariadb" => Some(Driver::Mysql),
            _ => None,
        }
    }

    /// The driver a URL names: `postgres://` and `postgresql://`,
    /// `mysql://` and `mariadb://`, `sqlite://`, `sqlite:` and `file:`, or a
    /// plain file path (SQLite). `None` for another scheme and for libpq's
    /// `key=value` strings, which are not guessed at.
    pub fn from_url(url: &str) -> Option<Driver> {
        let lower = url.to_ascii_lowercase();
        match lower.split_once("://").map(|(s, _)| s) {
            Some("postgres" | "postgresql") => Some(Driver::Postgres),
            Some("mysql" | "mariadb") => Some(Driver::Mysql),
            Some("sqlite") => Some(Driver::Sqlite),
            Some(_) => None,
            None if lower.starts_with("sqlite:") || lower.starts_with("file:") => {
                Some(Driver::Sqlite)
            }
            None if url.contains('=') => None,
            None => Some(Driver::Sqlite),
        }
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Driver::Sqlite => "sqlite",
            Driver::Postgres => "postgres",
            Driver::Mysql => "mysql",
        }
    }

    /// The cargo feature of `migrate` that builds this driver in.
    pub fn feature(self) -> &'static str {
        self.name()
    }
}

impl fmt::Display for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Where the database setting came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A configuration file.
    File(PathBuf),
    /// The `--database-url` option.
    Option,
    /// The `DATABASE_URL` variable.
    Variable,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(path) => write!(f, "{}", path.display()),
            Origin::Option => f.write_str("--database-url"),
            Origin::Variable => f.write_str(DATABASE_URL_VAR),
        }
    }
}

/// The options an environment may set besides its database. Command-line
/// options override them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The tracking table (`table`).
    pub table: Option<String>,
    /// The application version (`app_version`).
    pub app_version: Option<String>,
    /// Run out-of-order scripts instead of refusing (`allow_out_of_order`).
    pub allow_out_of_order: Option<bool>,
    /// Run the whole plan in one transaction (`atomic`).
    pub atomic: Option<bool>,
    /// Record irreversible scripts as reverted on a downgrade
    /// (`skip_irreversible`).
    pub skip_irreversible: Option<bool>,
    /// What start-up does when the database is ahead of the application
    /// (`when_ahead`: `tolerate` or `refuse`).
    pub when_ahead: Option<crate::WhenAhead>,
    /// The one version start-up may downgrade the database to
    /// (`authorize_downgrade_to`); see
    /// [`DowngradeAuthorization`](crate::DowngradeAuthorization).
    pub authorize_downgrade_to: Option<String>,
    /// How long to wait for the migration lock (`lock_timeout`, seconds).
    pub lock_timeout: Option<Duration>,
    /// Where `create` writes SQL migrations (`migrations_dir`).
    pub migrations_dir: Option<PathBuf>,
    /// Where `create --rust` writes script files (`scripts_dir`).
    pub scripts_dir: Option<PathBuf>,
}

/// A resolved environment: the database to connect to and its settings.
#[derive(Debug, Clone)]
pub struct Environment {
    /// The environment's name.
    pub name: String,
    /// The configuration file read, if any.
    pub file: Option<PathBuf>,
    /// Where the database URL came from.
    pub origin: Origin,
    /// The driver.
    pub driver: Driver,
    /// The URL (a path for SQLite). Its `Display` hides the password.
    pub url: DatabaseUrl,
    /// The other settings.
    pub settings: Settings,
}

/// What the caller asks for: the command line's `--config`, `--env` and
/// `--database-url`. Its `Debug` masks the URL's password.
#[derive(Clone, Copy, Default)]
pub struct Request<'a> {
    /// An explicit configuration file (`--config`).
    pub config: Option<&'a Path>,
    /// An explicit environment (`--env`).
    pub env: Option<&'a str>,
    /// An explicit database URL (`--database-url`).
    pub database_url: Option<&'a str>,
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("config", &self.config)
            .field("env", &self.env)
            .field("database_url", &self.database_url.map(DatabaseUrl::new))
            .finish()
    }
}

/// A configuration that cannot be used. Each names the file, the
/// environment and the key at fault; nothing has been changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or JSON, or not shaped as expected.
    #[error("{} is malformed: {message}", file.display())]
    Malformed {
        /// The file.
        file: PathBuf,
        /// What is wrong, with the line when the parser knows it.
        message: String,
    },
    /// The environment name is not a plain name.
    #[error(
        "`{env}` is not a valid environment name: use ASCII letters, digits, `_`, `-` and `.` (at most 64)"
    )]
    InvalidEnvironmentName {
        /// The rejected name.
        env: String,
    },
    /// The chosen environment has no section in the file.
    #[error("{}: no environment `{env}`; the file defines {}; choose one with --env or {ENV_VAR}", file.display(), list(known))]
    UnknownEnvironment {
        /// The file.
        file: PathBuf,
        /// The environment asked for.
        env: String,
        /// The environments the file defines.
        known: Vec<String>,
    },
    /// A value refers to an environment variable that is not set.
    #[error("{}, environment `{env}`, key `{key}`: the variable `{var}` is not set", file.display())]
    UnsetVariable {
        /// The file.
        file: PathBuf,
        /// The environment.
        env: String,
        /// The key whose value it is.
        key: String,
        /// The variable.
        var: String,
    },
    /// The driver is not one this tool knows.
    #[error("{}, environment `{env}`, key `driver`: unknown driver `{driver}`; expected one of {}", file.display(), Driver::NAMES.join(", "))]
    UnknownDriver {
        /// The file.
        file: PathBuf,
        /// The environment.
        env: String,
        /// The driver given.
        driver: String,
    },
    /// The URL names no driver this tool knows.
    #[error(
        "{origin}, environment `{env}`: cannot tell the driver from the URL `{url}`; use postgres://, mysql://, sqlite:// or a file path"
    )]
    UnknownUrl {
        /// Where the URL came from.
        origin: Origin,
        /// The environment.
        env: String,
        /// The URL, password masked.
        url: DatabaseUrl,
    },
    /// The URL's password holds a character that drivers read differently
    /// ([`DatabaseUrl::problem`]).
    #[error(
        "{origin}, environment `{env}`: the URL `{url}` is ambiguous: {problem}; percent-encode those characters in the password (`@` is %40, `/` is %2F, `?` is %3F, `#` is %23)"
    )]
    AmbiguousUrl {
        /// Where the URL came from.
        origin: Origin,
        /// The environment.
        env: String,
        /// The URL, masked whole.
        url: DatabaseUrl,
        /// What is ambiguous.
        problem: &'static str,
    },
    /// The driver is known but this build does not include it.
    #[error("{origin}, environment `{env}`: driver `{driver}` is not built into this binary; {}", driver_hint(*driver))]
    DriverNotBuilt {
        /// Where the database setting came from.
        origin: Origin,
        /// The environment.
        env: String,
        /// The driver.
        driver: Driver,
    },
    /// A value has the wrong type or form.
    #[error("{}, environment `{env}`, key `{key}`: expected {expected}", file.display())]
    InvalidValue {
        /// The file.
        file: PathBuf,
        /// The environment (or `(top level)`).
        env: String,
        /// The key.
        key: String,
        /// What was expected.
        expected: String,
    },
    /// A key this tool does not know (in `migrate.toml`; `database.json`
    /// may hold db-migrate's other options, which are ignored).
    #[error("{}, environment `{env}`: unknown key `{key}`; known keys are {}", file.display(), file::TOML_KEYS.join(", "))]
    UnknownKey {
        /// The file.
        file: PathBuf,
        /// The environment.
        env: String,
        /// The key.
        key: String,
    },
    /// A required key is missing.
    #[error("{}, environment `{env}`: missing key `{key}`: {hint}", file.display())]
    MissingKey {
        /// The file.
        file: PathBuf,
        /// The environment.
        env: String,
        /// The key.
        key: String,
        /// What to add.
        hint: String,
    },
    /// There is no configuration file and no URL.
    #[error(
        "no database configured: pass --database-url, set {DATABASE_URL_VAR}, or write {TOML_FILE} (or db-migrate's {JSON_FILE}) in {}",
        dir.display()
    )]
    NoConfiguration {
        /// The directory searched.
        dir: PathBuf,
    },
}

fn driver_hint(driver: Driver) -> String {
    format!(
        "build it with the `{}` feature of `migrate`",
        driver.feature()
    )
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "no environment".to_owned()
    } else {
        items
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Loads the environment `request` asks for, from the process environment
/// and the configuration file: `--config`'s (relative to the working
/// directory), else the nearest `migrate.toml` or `database.json` from the
/// working directory up (see [`config_dir`]). A relative SQLite path in a
/// file found above the working directory is relative to that file.
pub fn load(request: &Request<'_>) -> Result<Environment, ConfigError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let found = request.config.is_none().then(|| config_dir(&cwd)).flatten();
    let dir = found.clone().unwrap_or_else(|| cwd.clone());
    let mut env = load_with(request, &dir, &|name| std::env::var(name).ok())?;
    if let (Some(found), Origin::File(_), Driver::Sqlite) = (&found, &env.origin, env.driver)
        && *found != cwd
        && let Ok(up) = cwd.strip_prefix(found)
    {
        let back: PathBuf = up.components().map(|_| "..").collect();
        env.url = DatabaseUrl::new(rebase_sqlite(env.url.expose(), &back));
    }
    Ok(env)
}

/// The nearest directory, from `start` up, that holds `migrate.toml` or
/// `database.json`, as cargo finds `Cargo.toml`; the search stops at the
/// outermost directory that holds a `Cargo.toml` (the project), or at
/// `start` itself outside any project.
pub fn config_dir(start: &Path) -> Option<PathBuf> {
    let outermost = start
        .ancestors()
        .filter(|d| d.join("Cargo.toml").is_file())
        .last()
        .unwrap_or(start);
    for dir in start.ancestors() {
        if [TOML_FILE, JSON_FILE].iter().any(|f| dir.join(f).is_file()) {
            return Some(dir.to_path_buf());
        }
        if dir == outermost {
            break;
        }
    }
    None
}

/// `url` (a SQLite path or URL) with a relative path put under `base`:
/// `dev.db`, `sqlite://dev.db`, `sqlite:dev.db`, `file:dev.db?mode=ro`.
/// Absolute paths and `:memory:` stay.
pub fn rebase_sqlite(url: &str, base: &Path) -> String {
    let (scheme, rest) = ["sqlite://", "sqlite:"]
        .iter()
        .find_map(|p| url.strip_prefix(p).map(|r| (*p, r)))
        .unwrap_or(("", url));
    let (file, rest) = rest
        .strip_prefix("file:")
        .map_or(("", rest), |r| ("file:", r));
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) if !file.is_empty() => (p, Some(q)),
        _ => (rest, None),
    };
    if path.is_empty() || path.starts_with(':') || Path::new(path).is_absolute() {
        return url.to_owned();
    }
    let rebased = base.join(path);
    let query = query.map_or_else(String::new, |q| format!("?{q}"));
    format!("{scheme}{file}{}{query}", rebased.display())
}

/// [`load`] with an explicit directory and variable lookup (for tests and
/// embedding).
pub fn load_with(
    request: &Request<'_>,
    dir: &Path,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Environment, ConfigError> {
    let file = match request.config {
        Some(path) => Some(dir.join(path)),
        None => [TOML_FILE, JSON_FILE]
            .iter()
            .map(|name| dir.join(name))
            .find(|p| p.is_file()),
    };
    let parsed = match &file {
        Some(path) => Some(RawFile::read(path)?),
        None => None,
    };

    let explicit_env = request
        .env
        .map(str::to_owned)
        .or_else(|| var(ENV_VAR).filter(|s| !s.is_empty()));
    let env = match (&explicit_env, &parsed, &file) {
        (Some(env), _, _) => env.clone(),
        (None, Some(raw), Some(path)) => match &raw.default_env {
            // `{"ENV": "NODE_ENV"}` with the variable unset (or empty): the
            // default environment, as db-migrate falls back.
            Some(Raw::Var(name)) if var(name).is_none_or(|v| v.is_empty()) => {
                DEFAULT_ENV.to_owned()
            }
            Some(value) => {
                let ctx = Ctx {
                    file: path,
                    env: "(top level)",
                    var,
                };
                ctx.string(file::DEFAULT_ENV_KEY[raw.format as usize], value)?
            }
            None => DEFAULT_ENV.to_owned(),
        },
        _ => DEFAULT_ENV.to_owned(),
    };
    validate_env_name(&env)?;

    let override_url = match request.database_url {
        Some(url) => Some((url.to_owned(), Origin::Option)),
        None => var(DATABASE_URL_VAR)
            .filter(|s| !s.is_empty())
            .map(|url| (url, Origin::Variable)),
    };

    let section = match (&parsed, &file) {
        (Some(raw), Some(path)) => match raw.envs.get(&env) {
            Some(section) => Some((path, section)),
            // An explicit URL works without a section for the default
            // environment, but an environment asked for by name must exist.
            None if override_url.is_some() && explicit_env.is_none() => None,
            None => {
                return Err(ConfigError::UnknownEnvironment {
                    file: path.clone(),
                    env,
                    known: raw.envs.keys().cloned().collect(),
                });
            }
        },
        _ => None,
    };

    let resolved = match section {
        Some((path, section)) => Some(resolve_section(
            &Ctx {
                file: path,
                env: &env,
                var,
            },
            parsed.as_ref().map_or(file::Format::Toml, |r| r.format),
            section,
            override_url.is_none(),
        )?),
        None => None,
    };

    let (driver, url, origin, settings) = match (override_url, resolved) {
        (Some((url, origin)), resolved) => {
            let settings = resolved.map(|r| r.settings).unwrap_or_default();
            let url = unambiguous(DatabaseUrl::new(url), &origin, &env)?;
            let Some(driver) = Driver::from_url(url.expose()) else {
                return Err(ConfigError::UnknownUrl { origin, env, url });
            };
            (driver, url, origin, settings)
        }
        (None, Some(r)) => {
            let (driver, url) = r
                .database
                .expect("resolve_section builds the URL when asked");
            (
                driver,
                url,
                Origin::File(file.clone().expect("a section comes from a file")),
                r.settings,
            )
        }
        (None, None) => {
            return Err(ConfigError::NoConfiguration {
                dir: dir.to_owned(),
            });
        }
    };
    Ok(Environment {
        name: env,
        file,
        origin,
        driver,
        url,
        settings,
    })
}

fn validate_env_name(env: &str) -> Result<(), ConfigError> {
    let ok = !env.is_empty()
        && env.len() <= 64
        && env
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::InvalidEnvironmentName {
            env: env.to_owned(),
        })
    }
}

/// The file, environment and variable lookup that errors name.
struct Ctx<'a> {
    file: &'a Path,
    env: &'a str,
    var: &'a dyn Fn(&str) -> Option<String>,
}

impl Ctx<'_> {
    fn invalid(&self, key: &str, expected: &str) -> ConfigError {
        ConfigError::InvalidValue {
            file: self.file.to_owned(),
            env: self.env.to_owned(),
            key: key.to_owned(),
            expected: expected.to_owned(),
        }
    }

    /// A value as text; numbers and booleans are accepted as their text.
    fn string(&self, key: &str, value: &Raw) -> Result<String, ConfigError> {
        match value {
            Raw::Str(s) => Ok(s.clone()),
            Raw::Int(i) => Ok(i.to_string()),
            Raw::Bool(b) => Ok(b.to_string()),
            Raw::Var(name) => (self.var)(name).ok_or_else(|| ConfigError::UnsetVariable {
                file: self.file.to_owned(),
                env: self.env.to_owned(),
                key: key.to_owned(),
                var: name.clone(),
            }),
            Raw::Other(_) => Err(self.invalid(key, "a string, or a value from the environment")),
        }
    }

    fn bool(&self, key: &str, value: &Raw) -> Result<bool, ConfigError> {
        match value {
            Raw::Bool(b) => Ok(*b),
            Raw::Var(_) | Raw::Str(_) => match self.string(key, value)?.as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(self.invalid(key, "true or false")),
            },
            _ => Err(self.invalid(key, "true or false")),
        }
    }

    fn u64(&self, key: &str, value: &Raw, what: &str) -> Result<u64, ConfigError> {
        match value {
            Raw::Int(i) => u64::try_from(*i).map_err(|_| self.invalid(key, what)),
            Raw::Var(_) | Raw::Str(_) => self
                .string(key, value)?
                .trim()
                .parse()
                .map_err(|_| self.invalid(key, what)),
            _ => Err(self.invalid(key, what)),
        }
    }
}

/// `url`, unless drivers would read it differently
/// ([`DatabaseUrl::problem`]).
fn unambiguous(url: DatabaseUrl, origin: &Origin, env: &str) -> Result<DatabaseUrl, ConfigError> {
    match url.problem() {
        Some(problem) => Err(ConfigError::AmbiguousUrl {
            origin: origin.clone(),
            env: env.to_owned(),
            url,
            problem,
        }),
        None => Ok(url),
    }
}

struct Resolved {
    database: Option<(Driver, DatabaseUrl)>,
    settings: Settings,
}

fn resolve_section(
    ctx: &Ctx<'_>,
    format: file::Format,
    section: &RawEnv,
    want_database: bool,
) -> Result<Resolved, ConfigError> {
    let fields: BTreeMap<String, Raw> = match section {
        // db-migrate's `"prod": "postgres://..."` and `"prod": {"ENV": "X"}`.
        RawEnv::Url(raw) => {
            let url = unambiguous(
                DatabaseUrl::new(ctx.string("url", raw)?),
                &Origin::File(ctx.file.to_owned()),
                ctx.env,
            )?;
            if !want_database {
                return Ok(Resolved {
                    database: None,
                    settings: Settings::default(),
                });
            }
            let driver = Driver::from_url(url.expose()).ok_or_else(|| ConfigError::UnknownUrl {
                origin: Origin::File(ctx.file.to_owned()),
                env: ctx.env.to_owned(),
                url: url.clone(),
            })?;
            return Ok(Resolved {
                database: Some((driver, url)),
                settings: Settings::default(),
            });
        }
        RawEnv::Table(fields) => fields.clone(),
    };
    if format == file::Format::Toml
        && let Some(key) = fields
            .keys()
            .find(|k| !file::TOML_KEYS.contains(&k.as_str()))
    {
        return Err(ConfigError::UnknownKey {
            file: ctx.file.to_owned(),
            env: ctx.env.to_owned(),
            key: key.clone(),
        });
    }
    let get = |key: &str| fields.get(key);
    let text = |key: &str| get(key).map(|v| ctx.string(key, v)).transpose();
    let flag = |key: &str| get(key).map(|v| ctx.bool(key, v)).transpose();
    let path = |key: &str| Ok::<_, ConfigError>(text(key)?.map(PathBuf::from));

    let settings = Settings {
        table: text("table")?,
        app_version: text("app_version")?,
        allow_out_of_order: flag("allow_out_of_order")?,
        atomic: flag("atomic")?,
        skip_irreversible: flag("skip_irreversible")?,
        when_ahead: text("when_ahead")?
            .map(|w| {
                crate::WhenAhead::parse(&w)
                    .ok_or_else(|| ctx.invalid("when_ahead", "`tolerate` or `refuse`"))
            })
            .transpose()?,
        authorize_downgrade_to: text("authorize_downgrade_to")?,
        lock_timeout: get("lock_timeout")
            .map(|v| ctx.u64("lock_timeout", v, "a whole number of seconds"))
            .transpose()?
            .map(Duration::from_secs),
        migrations_dir: match format {
            file::Format::Toml => path("migrations_dir")?,
            file::Format::Json => path("migrations-dir")?,
        },
        scripts_dir: match format {
            file::Format::Toml => path("scripts_dir")?,
            file::Format::Json => None,
        },
    };
    if !want_database {
        return Ok(Resolved {
            database: None,
            settings,
        });
    }

    let driver = match get("driver") {
        Some(raw) => {
            let name = ctx.string("driver", raw)?;
            Some(
                Driver::from_name(&name).ok_or_else(|| ConfigError::UnknownDriver {
                    file: ctx.file.to_owned(),
                    env: ctx.env.to_owned(),
                    driver: name,
                })?,
            )
        }
        None => None,
    };
    if let Some(url) = text("url")? {
        let url = unambiguous(
            DatabaseUrl::new(url),
            &Origin::File(ctx.file.to_owned()),
            ctx.env,
        )?;
        let driver = match (driver, Driver::from_url(url.expose())) {
            (Some(d), Some(u)) if d != u => {
                return Err(ctx.invalid(
                    "url",
                    &format!("a {d} URL, since `driver` is `{d}` (the URL names {u})"),
                ));
            }
            // libpq's key=value form, with the driver said explicitly.
            (Some(Driver::Postgres), None) => Driver::Postgres,
            (_, Some(u)) => u,
            (_, None) => {
                return Err(ConfigError::UnknownUrl {
                    origin: Origin::File(ctx.file.to_owned()),
                    env: ctx.env.to_owned(),
                    url,
                });
            }
        };
        return Ok(Resolved {
            database: Some((driver, url)),
            settings,
        });
    }
    let driver = driver.ok_or_else(|| ConfigError::MissingKey {
        file: ctx.file.to_owned(),
        env: ctx.env.to_owned(),
        key: "driver".to_owned(),
        hint: "set `url`, or `driver` with the connection's parts".to_owned(),
    })?;
    let url = match driver {
        Driver::Sqlite => {
            let path = match (text("filename")?, text("database")?) {
                (Some(p), _) | (None, Some(p)) => p,
                (None, None) => {
                    return Err(ConfigError::MissingKey {
                        file: ctx.file.to_owned(),
                        env: ctx.env.to_owned(),
                        key: "filename".to_owned(),
                        hint: "a SQLite environment needs `filename` (or `database`): the database file's path".to_owned(),
                    });
                }
            };
            DatabaseUrl::new(path)
        }
        Driver::Postgres | Driver::Mysql => {
            let database = text("database")?.ok_or_else(|| ConfigError::MissingKey {
                file: ctx.file.to_owned(),
                env: ctx.env.to_owned(),
                key: "database".to_owned(),
                hint: format!("a {driver} environment needs the database's name"),
            })?;
            let port = get("port")
                .map(|v| ctx.u64("port", v, "a port number (1-65535)"))
                .transpose()?
                .map(|p| {
                    u16::try_from(p)
                        .ok()
                        .filter(|p| *p > 0)
                        .ok_or_else(|| ctx.invalid("port", "a port number (1-65535)"))
                })
                .transpose()?;
            DatabaseUrl::from_parts(
                driver,
                &text("host")?.unwrap_or_else(|| "localhost".to_owned()),
                port,
                text("user")?.as_deref(),
                text("password")?.as_deref(),
                &database,
            )
            .map_err(|expected| ctx.invalid("host", &expected))?
        }
    };
    Ok(Resolved {
        database: Some((driver, url)),
        settings,
    })
}

#[cfg(test)]
mod tests;
