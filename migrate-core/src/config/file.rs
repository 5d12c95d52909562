//! Reading `migrate.toml` and `database.json` into one raw shape.

use std::collections::BTreeMap;
use std::path::Path;

use super::ConfigError;

/// The keys an environment of `migrate.toml` may hold.
pub(crate) const TOML_KEYS: &[&str] = &[
    "url",
    "driver",
    "host",
    "port",
    "user",
    "password",
    "database",
    "filename",
    "table",
    "app_version",
    "allow_out_of_order",
    "atomic",
    "skip_irreversible",
    "when_ahead",
    "authorize_downgrade_to",
    "lock_timeout",
    "migrations_dir",
    "scripts_dir",
];

/// The top-level key naming the default environment, per format.
pub(super) const DEFAULT_ENV_KEY: [&str; 2] = ["default_env", "defaultEnv"];

/// The file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Format {
    /// `migrate.toml`.
    Toml = 0,
    /// db-migrate's `database.json`.
    Json = 1,
}

/// A value before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Raw {
    Str(String),
    Int(i64),
    Bool(bool),
    /// `{ env = "VAR" }` (TOML) or `{"ENV": "VAR"}` (JSON).
    Var(String),
    /// Anything else (arrays, other tables), named by its type.
    Other(&'static str),
}

/// One environment before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RawEnv {
    /// The whole environment is a URL (db-migrate's string form).
    Url(Raw),
    /// Keys and values.
    Table(BTreeMap<String, Raw>),
}

/// A whole file before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawFile {
    pub(super) format: Format,
    pub(super) default_env: Option<Raw>,
    pub(super) envs: BTreeMap<String, RawEnv>,
}

impl RawFile {
    /// Reads and parses `path`; `.json` files are db-migrate's format, any
    /// other is TOML.
    pub(super) fn read(path: &Path) -> Result<RawFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_owned(),
            source,
        })?;
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let parsed = if json {
            parse_json(&text)
        } else {
            parse_toml(&text)
        };
        parsed.map_err(|message| ConfigError::Malformed {
            file: path.to_owned(),
            message,
        })
    }
}

pub(super) fn parse_toml(text: &str) -> Result<RawFile, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let msg = e.message().to_owned();
        match e.span() {
            Some(span) => format!("{msg} (line {})", line_of(text, span.start)),
            None => msg,
        }
    })?;
    let mut default_env = None;
    let mut envs = BTreeMap::new();
    for (key, value) in table {
        match value {
            value if key == DEFAULT_ENV_KEY[Format::Toml as usize] => {
                default_env = Some(toml_raw(value));
            }
            toml::Value::Table(section) => {
                let fields = section.into_iter().map(|(k, v)| (k, toml_raw(v))).collect();
                envs.insert(key, RawEnv::Table(fields));
            }
            _ => {
                return Err(format!(
                    "top-level key `{key}` is not an environment: put settings under `[{key}]`-style sections such as `[dev]`, or use `default_env`"
                ));
            }
        }
    }
    Ok(RawFile {
        format: Format::Toml,
        default_env,
        envs,
    })
}

fn toml_raw(value: toml::Value) -> Raw {
    match value {
        toml::Value::String(s) => Raw::Str(s),
        toml::Value::Integer(i) => Raw::Int(i),
        toml::Value::Boolean(b) => Raw::Bool(b),
        toml::Value::Table(t) if t.len() == 1 => match t.get("env") {
            Some(toml::Value::String(var)) => Raw::Var(var.clone()),
            _ => Raw::Other("a table"),
        },
        toml::Value::Table(_) => Raw::Other("a table"),
        toml::Value::Float(_) => Raw::Other("a float"),
        toml::Value::Datetime(_) => Raw::Other("a date"),
        toml::Value::Array(_) => Raw::Other("an array"),
    }
}

pub(super) fn parse_json(text: &str) -> Result<RawFile, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let serde_json::Value::Object(top) = value else {
        return Err("the top level must be an object of environments".to_owned());
    };
    let mut default_env = None;
    let mut envs = BTreeMap::new();
    for (key, value) in top {
        if key == DEFAULT_ENV_KEY[Format::Json as usize] {
            default_env = Some(json_raw(value));
            continue;
        }
        let env = match value {
            serde_json::Value::String(url) => RawEnv::Url(Raw::Str(url)),
            serde_json::Value::Object(fields) => match json_var(&fields) {
                Some(var) => RawEnv::Url(Raw::Var(var)),
                None => RawEnv::Table(fields.into_iter().map(|(k, v)| (k, json_raw(v))).collect()),
            },
            _ => {
                return Err(format!(
                    "environment `{key}` must be an object (or a URL string)"
                ));
            }
        };
        envs.insert(key, env);
    }
    Ok(RawFile {
        format: Format::Json,
        default_env,
        envs,
    })
}

/// db-migrate's `{"ENV": "VAR"}`.
fn json_var(fields: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    match (fields.len(), fields.get("ENV")) {
        (1, Some(serde_json::Value::String(var))) => Some(var.clone()),
        _ => None,
    }
}

fn json_raw(value: serde_json::Value) -> Raw {
    match value {
        serde_json::Value::String(s) => Raw::Str(s),
        serde_json::Value::Bool(b) => Raw::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Raw::Int(i),
            None => Raw::Other("a fractional number"),
        },
        serde_json::Value::Object(fields) => match json_var(&fields) {
            Some(var) => Raw::Var(var),
            None => Raw::Other("an object"),
        },
        serde_json::Value::Array(_) => Raw::Other("an array"),
        serde_json::Value::Null => Raw::Other("null"),
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}
