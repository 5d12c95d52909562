//! `create`: writes a new SQL migration folder or Rust script file. It
//! writes files only, never over an existing one, and never a database.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use migrate_core::Version;
use migrate_core::config::Driver;

use super::output::Out;
use super::{CliError, args, parse_version};
use crate::Migrator;

/// Where `create` writes.
pub(super) struct Dirs {
    /// SQL migration folders.
    pub(super) sql: PathBuf,
    /// Rust script files.
    pub(super) rust: PathBuf,
}

pub(super) fn create(
    args: &args::Create,
    dirs: &Dirs,
    migrator: &Migrator,
    driver: Option<Driver>,
    out: &mut Out,
) -> Result<(), CliError> {
    let name = normalize_name(&args.name)?;
    // Every version taken: compiled into this build, or written on disk
    // since the last build.
    let mut taken: BTreeMap<Version, String> = BTreeMap::new();
    for script in migrator.known_scripts()? {
        if let Ok(v) = Version::parse(script.version()) {
            taken.insert(v, format!("`{}` ({})", script.name(), script.location()));
        }
    }
    for (v, place) in versions_on_disk(&dirs.sql, &dirs.rust) {
        taken.entry(v).or_insert(place);
    }
    let app = migrator.resolved_app_version()?;
    let version = match &args.version {
        Some(text) => {
            let v = parse_version("version", text)?;
            if let Some(place) = taken.get(&v) {
                return Err(CliError::Other(format!(
                    "version {v} already exists: {place}; choose another with --version"
                )));
            }
            v
        }
        None => next_version(&app.version, taken.keys()),
    };

    let written = if args.rust {
        write_rust(&dirs.rust, &version, &name, driver)?
    } else {
        write_sql(&dirs.sql, &version, &name)?
    };
    for path in &written {
        out.line(&format!("created {}", path.display()));
    }
    if args.rust {
        let module = written[0]
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.line(&format!(
            "next: write `up` and `down` in {} (or remove `down` and `REVERSIBLE` if it cannot be undone), then add `mod {module};` next to your other scripts; the attribute registers it",
            written[0].display()
        ));
    } else {
        out.line(&format!(
            "next: write the migration in up.sql and its revert in down.sql (or delete down.sql to make it irreversible); the next build embeds them (embed_sql! on {})",
            dirs.sql.display()
        ));
    }
    if version > app.version {
        let v = version.as_semver();
        let release = format!("{}.{}.{}", v.major, v.minor, v.patch);
        let runs_at = if v.pre.is_empty() {
            format!("until the application is at {version} or later")
        } else {
            format!("until the application is at {release}, the release it belongs to")
        };
        out.line(&format!(
            "note: {version} is above the application version {} ({}), so start-up will not run it {runs_at}; `up --to {version}` runs it now",
            app.version, app.source
        ));
    } else if args.version.is_none() {
        let v = version.as_semver();
        out.line(&format!(
            "note: {version} is migration {} of release {}.{}.{}, the application version ({}): it runs at {} and sorts below it; if that release has already shipped, bump the package version to the next release and create it again",
            v.pre, v.major, v.minor, v.patch, app.source, app.version
        ));
    }
    Ok(())
}

fn normalize_name(name: &str) -> Result<String, CliError> {
    let name: String = name
        .trim()
        .chars()
        .map(|c| if c == ' ' || c == '-' { '_' } else { c })
        .collect();
    if name.is_empty()
        || name.len() > 100
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || !name.chars().any(|c| c.is_ascii_alphanumeric())
    {
        return Err(CliError::Other(format!(
            "`{name}` is not a usable migration name: use ASCII letters, digits, `_` and `-` (spaces become `_`), at most 100"
        )));
    }
    Ok(name)
}

/// The version of a new migration, by the convention that a release's
/// migrations are its numbered pre-releases: `1.1.0-1`, `1.1.0-2`, ...,
/// which run at `1.1.0` and sort below it and above every `1.0.x`. It is
/// the next number of the application version's release; or, when a taken
/// version is already above that (the release itself has a migration, or a
/// later one does), the next number above the highest taken version, which
/// then does not run at the application version.
fn next_version<'a>(app: &Version, taken: impl DoubleEndedIterator<Item = &'a Version>) -> Version {
    let release = |v: &Version| {
        let v = v.as_semver();
        (v.major, v.minor, v.patch)
    };
    // `n` of a pre-release that is a single number.
    let numbered = |v: &Version| v.as_semver().pre.as_str().parse::<u64>().ok();
    let numbered_of = |(major, minor, patch): (u64, u64, u64), n: u64| {
        Version::parse(&format!("{major}.{minor}.{patch}-{n}")).expect("numbers make a version")
    };
    let taken: Vec<&Version> = taken.collect();
    let app_release = release(app);
    let last = taken
        .iter()
        .filter(|v| release(v) == app_release)
        .filter_map(|v| numbered(v))
        .max()
        .unwrap_or(0);
    let candidate = numbered_of(app_release, last + 1);
    match taken.last() {
        Some(highest) if **highest >= candidate => {
            let (major, minor, patch) = release(highest);
            match numbered(highest) {
                Some(n) => numbered_of((major, minor, patch), n + 1),
                None => numbered_of((major, minor, patch + 1), 1),
            }
        }
        _ => candidate,
    }
}

/// Versions of migrations written but maybe not built yet: SQL folders
/// named `<version>_<name>`, and Rust files holding
/// `#[migration_script(version = "...")]`.
fn versions_on_disk(sql: &Path, rust: &Path) -> Vec<(Version, String)> {
    let mut found = Vec::new();
    for entry in fs::read_dir(sql).into_iter().flatten().flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir()
            && let Ok((v, _)) = migrate_core::parse_folder_name(&file_name)
        {
            found.push((v, entry.path().display().to_string()));
        }
    }
    for entry in fs::read_dir(rust).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Ok(text) = fs::read_to_string(&path)
        {
            for part in text.split("#[migration_script(").skip(1) {
                let attr = part.split(")]").next().unwrap_or_default();
                if let Some(rest) = attr.split("version").nth(1)
                    && let Some(v) = rest.split('"').nth(1)
                    && let Ok(v) = Version::parse(v)
                {
                    found.push((v, path.display().to_string()));
                }
            }
        }
    }
    found
}

fn write_new(path: &Path, text: &str) -> Result<(), CliError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| CliError::Other(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(text.as_bytes())
        .map_err(|e| CliError::Other(format!("cannot write {}: {e}", path.display())))
}

fn write_sql(dir: &Path, version: &Version, name: &str) -> Result<Vec<PathBuf>, CliError> {
    fs::create_dir_all(dir)
        .map_err(|e| CliError::Other(format!("cannot create {}: {e}", dir.display())))?;
    let folder = dir.join(format!("{version}_{name}"));
    fs::create_dir(&folder)
        .map_err(|e| CliError::Other(format!("cannot create {}: {e}", folder.display())))?;
    let up = folder.join("up.sql");
    let down = folder.join("down.sql");
    write_new(
        &up,
        &format!(
            "-- Migration {version} `{name}`: the change.\n-- It runs in one transaction with its history row. The build refuses\n-- this file while it holds only comments.\n"
        ),
    )?;
    write_new(
        &down,
        &format!(
            "-- Migration {version} `{name}`: undo up.sql.\n-- Delete this file if the change cannot be undone (the migration is then\n-- irreversible, and a downgrade across it is refused).\n"
        ),
    )?;
    Ok(vec![up, down])
}

fn write_rust(
    dir: &Path,
    version: &Version,
    name: &str,
    driver: Option<Driver>,
) -> Result<Vec<PathBuf>, CliError> {
    fs::create_dir_all(dir)
        .map_err(|e| CliError::Other(format!("cannot create {}: {e}", dir.display())))?;
    let module = format!(
        "v{}_{name}",
        version
            .to_string()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    )
    .to_ascii_lowercase();
    let path = dir.join(format!("{module}.rs"));
    write_new(&path, &rust_script(version, name, driver))?;
    Ok(vec![path])
}

/// The text of a new Rust script.
pub(super) fn rust_script(version: &Version, name: &str, driver: Option<Driver>) -> String {
    let mut ty: String = name
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    if ty.starts_with(|c: char| c.is_ascii_digit()) {
        ty.insert(0, 'M');
    }
    let conn = match driver {
        Some(Driver::Postgres) => "PgConnection",
        Some(Driver::Mysql) => "MysqlConnection",
        Some(Driver::Sqlite) | None => "SqliteConnection",
    };
    format!(
        r#"//! Migration {version} `{name}`.

use migrate::diesel::{conn};
use migrate::{{BoxError, MigrationScript, migration_script}};

#[migration_script(version = "{version}", name = "{name}")]
pub struct {ty};

impl MigrationScript for {ty} {{
    type Connection = {conn};
    const REVERSIBLE: bool = true;

    fn up(&self, conn: &mut Self::Connection) -> Result<(), BoxError> {{
        // Runs in one transaction with its history row. For example:
        //     use migrate::diesel::prelude::*;
        //     diesel::sql_query("ALTER TABLE users ADD COLUMN email TEXT").execute(conn)?;
        let _ = conn;
        todo!("write migration {version} `{name}`")
    }}

    fn down(&self, conn: &mut Self::Connection) -> Result<(), BoxError> {{
        // Undo `up`. If it cannot be undone, delete this method and `REVERSIBLE`.
        let _ = conn;
        todo!("write the revert of migration {version} `{name}`")
    }}
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn next(app: &str, taken: &[&str]) -> String {
        let mut taken: Vec<Version> = taken.iter().map(|t| v(t)).collect();
        taken.sort();
        next_version(&v(app), taken.iter()).to_string()
    }

    #[test]
    fn a_new_migration_is_the_next_numbered_pre_release_of_the_application_version() {
        assert_eq!(next("1.0.0", &[]), "1.0.0-1");
        assert_eq!(next("1.0.0", &["0.1.0", "0.1.1"]), "1.0.0-1");
        assert_eq!(next("1.0.0", &["0.1.0", "1.0.0-1"]), "1.0.0-2");
        assert_eq!(next("1.1.0", &["1.0.0-1", "1.0.0-2"]), "1.1.0-1");
        assert_eq!(next("1.0.0", &["1.0.0-9"]), "1.0.0-10");
        // A pre-release or build of the application keeps its release.
        assert_eq!(next("1.1.0-rc.1", &["1.0.0"]), "1.1.0-1");
        assert_eq!(next("1.1.0+build.7", &["1.1.0-1"]), "1.1.0-2");
    }

    #[test]
    fn a_new_migration_goes_above_every_taken_version_even_past_the_application_version() {
        // The release has a migration of its own: the next goes to the next patch.
        assert_eq!(next("1.0.1", &["1.0.0", "1.0.1"]), "1.0.2-1");
        // A later release has migrations already.
        assert_eq!(next("1.0.0", &["1.0.0-1", "1.2.0-3"]), "1.2.0-4");
        assert_eq!(next("1.0.0", &["1.2.0-rc.1"]), "1.2.1-1");
        assert_eq!(next("1.0.0", &["2.0.0+build.7"]), "2.0.1-1");
    }

    #[test]
    fn names_keep_letters_digits_and_underscores_only() {
        assert_eq!(
            normalize_name(" add email-index ").unwrap(),
            "add_email_index"
        );
        for bad in ["", "___", "drop;table", "../x", "naïve"] {
            assert!(normalize_name(bad).is_err(), "{bad}");
        }
    }
}
