//! `embed_sql!`: read and judge the SQL migration folders at compile time.
//!
//! Layout (diesel's, with a semver prefix):
//! `<dir>/<semver>_<name>/up.sql`, optional `down.sql`, optional
//! `metadata.toml` with `run_in_transaction = false`.

use std::path::{Path, PathBuf};

use syn::parse::{Parse, ParseStream};
use syn::{LitStr, Token};

/// `embed_sql!()`, `embed_sql!("dir")`, `embed_sql!("dir", crate = path)`.
pub(crate) struct EmbedArgs {
    pub(crate) dir: Option<LitStr>,
    pub(crate) krate: Option<syn::Path>,
}

impl Parse for EmbedArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let dir = if input.peek(LitStr) {
            Some(input.parse()?)
        } else {
            None
        };
        let mut krate = None;
        if dir.is_some() && !input.is_empty() {
            input.parse::<Token![,]>()?;
        }
        if !input.is_empty() {
            input.parse::<Token![crate]>()?;
            input.parse::<Token![=]>()?;
            krate = Some(input.parse()?);
            let _ = input.parse::<Option<Token![,]>>()?;
        }
        Ok(EmbedArgs { dir, krate })
    }
}

/// One SQL folder that passed every check.
pub(crate) struct SqlFolder {
    pub(crate) version: String,
    pub(crate) parsed: semver::Version,
    pub(crate) name: String,
    pub(crate) up_path: String,
    pub(crate) down_path: Option<String>,
    pub(crate) checksum: String,
    pub(crate) transaction: bool,
    /// The folder, relative to the crate, for messages.
    pub(crate) display: String,
}

/// Reads every folder under the directory; all problems are reported at once,
/// on the macro's path literal.
pub(crate) fn read(args: &EmbedArgs) -> syn::Result<(Vec<SqlFolder>, proc_macro2::Span)> {
    let span = args
        .dir
        .as_ref()
        .map_or_else(proc_macro2::Span::call_site, LitStr::span);
    let rel = args
        .dir
        .as_ref()
        .map_or_else(|| "migrations".to_owned(), LitStr::value);
    let root = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_default();
    let dir = root.join(&rel);
    let err = |msg: String| syn::Error::new(span, msg);

    let entries = std::fs::read_dir(&dir).map_err(|e| {
        err(if e.kind() == std::io::ErrorKind::NotFound {
            // The first build of a new application: `create` is in the
            // binary this build makes, so the folder must come first.
            format!(
                "the migrations directory `{rel}` does not exist (the path is relative to the folder of the crate's Cargo.toml): create it (`mkdir {rel}`), empty until the first migration; the crate's `build.rs` should say `cargo:rerun-if-changed={rel}`, so that a new migration folder rebuilds it"
            )
        } else {
            format!(
                "cannot read the migrations directory `{}`: {e}",
                dir.display()
            )
        })
    })?;
    let mut folders: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| err(format!("cannot read `{}`: {e}", dir.display())))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let hidden = name.starts_with('.');
        // diesel_migrations' timestamp-named folders may stay beside ours:
        // they belong to diesel's history (see `adopt-diesel`).
        let diesel = migrate_core::diesel_folder_version(&name).is_some();
        if path.is_dir() && !hidden && !diesel {
            folders.push(path);
        }
    }
    folders.sort();

    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    let mut out: Vec<SqlFolder> = Vec::new();
    for folder in folders {
        match read_folder(&folder, &rel) {
            Ok(f) => {
                if let Some(other) = out
                    .iter()
                    .find(|o| o.parsed.cmp_precedence(&f.parsed).is_eq())
                {
                    push(err(format!(
                        "SQL migrations `{}` and `{}` have the same version; give one of them another version",
                        other.display, f.display
                    )));
                } else {
                    out.push(f);
                }
            }
            Err(msg) => push(err(msg)),
        }
    }
    // In precedence order (the folders' names sort as text: `1.0.10` before
    // `1.0.2`): a binary whose migrations are all SQL then registers them
    // sorted, and the registry finds nothing to sort at start-up.
    out.sort_by(|a, b| a.parsed.cmp_precedence(&b.parsed));
    match errors {
        Some(e) => Err(e),
        None => Ok((out, span)),
    }
}

fn read_folder(folder: &Path, rel: &str) -> Result<SqlFolder, String> {
    let file_name = folder
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let display = format!("{}/{file_name}", rel.trim_end_matches('/'));
    let (parsed, name) = migrate_core::parse_folder_name(&file_name).map_err(|e| match e {
        migrate_core::FolderNameError::InvalidVersion(_) => {
            format!("SQL migration folder `{display}`: {e}")
        }
        _ => format!("SQL migration folder `{display}` {e}"),
    })?;
    let version = &file_name[..file_name.len() - name.len() - 1];
    let parsed = parsed.as_semver().clone();
    let read = |file: &str| -> Result<Option<(String, String)>, String> {
        let path = folder.join(file);
        match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8(bytes)
                .map(|text| Some((path.to_string_lossy().into_owned(), text)))
                .map_err(|e| {
                    format!("`{display}/{file}` is not valid UTF-8 ({e}); save it as UTF-8")
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read `{display}/{file}`: {e}")),
        }
    };
    let (up_path, up) =
        read("up.sql")?.ok_or_else(|| format!("SQL migration `{display}` has no up.sql"))?;
    if up.trim().is_empty() {
        return Err(format!(
            "`{display}/up.sql` is empty; write the migration, or remove the folder"
        ));
    }
    // What `create` writes until it is edited: run, it would be recorded as
    // applied while changing nothing.
    if !migrate_core::sql_has_statement(&up) {
        return Err(format!(
            "`{display}/up.sql` has only comments; write the migration, or remove the folder"
        ));
    }
    let down = read("down.sql")?;
    if let Some((_, text)) = &down
        && !migrate_core::sql_has_statement(text)
    {
        return Err(format!(
            "`{display}/down.sql` has no statement; write the revert, or delete down.sql to make the migration irreversible"
        ));
    }
    let transaction = match read("metadata.toml")? {
        None => true,
        Some((_, text)) => {
            parse_metadata(&text).map_err(|e| format!("`{display}/metadata.toml`: {e}"))?
        }
    };
    for (file, text) in [
        ("up.sql", Some(&up)),
        ("down.sql", down.as_ref().map(|(_, t)| t)),
    ] {
        if let Some(statement) = text.and_then(|t| migrate_core::sql::client_command(t)) {
            return Err(format!(
                "`{display}/{file}`, line {}: `DELIMITER` is a command of the mysql client that no server runs; remove the `DELIMITER` lines and end each routine with `END;` (a routine's body keeps its `;` inside it here)",
                statement.line
            ));
        }
    }
    // A migration that runs in a transaction must not end it: what ran
    // before would be kept without its history row. What only one dialect
    // reads so (a backslash before a quote, a `#`) is refused before it
    // runs, on the connection that reads it so.
    if transaction {
        let files = [
            ("up.sql", Some(&up)),
            ("down.sql", down.as_ref().map(|(_, t)| t)),
        ];
        for (file, text) in files {
            if let Some(statement) =
                text.and_then(|t| migrate_core::sql::transaction_control_in_every_dialect(t))
            {
                return Err(format!(
                    "`{display}/{file}`, line {}: `{}` would end the transaction the migration runs in, so part of it could be kept without its history row; remove it (each migration runs in a transaction of its own), or set `run_in_transaction = false` in `{display}/metadata.toml` to manage transactions yourself",
                    statement.line,
                    statement.head()
                ));
            }
        }
    }
    let down_path = down.map(|(path, _)| path);
    Ok(SqlFolder {
        version: version.to_owned(),
        parsed,
        name: name.to_owned(),
        up_path,
        down_path,
        checksum: migrate_core::sql_checksum(&up),
        transaction,
        display,
    })
}

/// diesel's `metadata.toml`: only `run_in_transaction` is understood.
fn parse_metadata(text: &str) -> Result<bool, String> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| e.message().to_owned())?;
    let mut transaction = true;
    for (key, value) in table {
        match (key.as_str(), value) {
            ("run_in_transaction", toml::Value::Boolean(b)) => transaction = b,
            ("run_in_transaction", _) => {
                return Err("`run_in_transaction` must be `true` or `false`".into());
            }
            (other, _) => {
                return Err(format!(
                    "unknown key `{other}`; only `run_in_transaction` is supported"
                ));
            }
        }
    }
    Ok(transaction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_accepts_only_run_in_transaction() {
        assert_eq!(parse_metadata("run_in_transaction = false"), Ok(false));
        assert_eq!(parse_metadata(""), Ok(true));
        assert!(parse_metadata("run_in_transaction = \"no\"").is_err());
        assert!(
            parse_metadata("transaction = false")
                .unwrap_err()
                .contains("unknown key `transaction`")
        );
    }
}
