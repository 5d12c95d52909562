//! Adopting a project that diesel_migrations has been migrating: its
//! timestamp-named folders stay as they are, recognised through diesel's own
//! `__diesel_schema_migrations`, and new work uses semver scripts on top.
//! It reads diesel's table and never changes it.

use std::path::Path;

use crate::backend::{Backend, Connectable};
use crate::{Error, Migrator, Report, TableName};

/// diesel_migrations' tracking table.
pub const DIESEL_TABLE: &str = "__diesel_schema_migrations";

/// What [`Migrator::adopt_diesel`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    /// The diesel migrations the database records, oldest first.
    pub diesel_versions: Vec<String>,
    /// The baseline recorded, when one was asked for.
    pub baseline: Option<Report>,
}

impl Migrator {
    /// Adopts a database that diesel_migrations has been migrating, as a
    /// legacy base below every semver script:
    ///
    /// 1. `__diesel_schema_migrations` must exist and hold rows;
    /// 2. every diesel migration folder in `diesel_dir` (diesel's layout,
    ///    `<timestamp>_<name>/up.sql`) must be recorded there as run, so that
    ///    nothing of the old history is left behind (run `diesel migration
    ///    run` first otherwise);
    /// 3. with `baseline`, the semver scripts at or below it are recorded as
    ///    applied without running (see [`baseline`](Self::baseline)), for a
    ///    team that re-expressed part of the diesel schema as scripts;
    ///    otherwise the tracking table is created, empty.
    ///
    /// Diesel's table and folders are never changed; the next `run` applies
    /// the semver scripts on top.
    pub fn adopt_diesel<T: Connectable>(
        &self,
        conn: &mut T,
        diesel_dir: &Path,
        baseline: Option<&str>,
    ) -> Result<Adoption, Error> {
        let conn = conn.connection();
        let diesel_table = TableName::new(DIESEL_TABLE)?;
        let refuse = |reason: String| Error::AdoptionRefused { reason };
        if !conn.table_exists(&diesel_table)? {
            return Err(refuse(format!(
                "the database has no `{DIESEL_TABLE}`: diesel_migrations never ran here; use `up` (or `baseline`) instead"
            )));
        }
        let recorded: Vec<String> = conn
            .strings(&format!(
                "SELECT version AS s FROM {DIESEL_TABLE} ORDER BY version"
            ))
            .map_err(Error::db(format!("reading `{DIESEL_TABLE}`")))?;
        if recorded.is_empty() {
            return Err(refuse(format!(
                "`{DIESEL_TABLE}` is empty: there is no diesel history to adopt"
            )));
        }
        let entries = std::fs::read_dir(diesel_dir).map_err(|e| {
            refuse(format!(
                "cannot read the diesel migrations folder `{}`: {e}",
                diesel_dir.display()
            ))
        })?;
        let mut pending = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.path().join("up.sql").is_file() {
                continue;
            }
            match migrate_core::diesel_folder_version(&name) {
                Some(version) if recorded.contains(&version) => {}
                Some(_) => pending.push(name),
                // Our semver folders may share the directory.
                None if migrate_core::parse_folder_name(&name).is_ok() => {}
                None => {
                    return Err(refuse(format!(
                        "`{}` is neither a diesel migration folder (`<timestamp>_<name>`) nor a semver one",
                        entry.path().display()
                    )));
                }
            }
        }
        if !pending.is_empty() {
            pending.sort();
            return Err(refuse(format!(
                "diesel migration(s) {} have not run on this database; run `diesel migration run` first, so that the diesel history is complete",
                pending.join(", ")
            )));
        }
        let baseline = match baseline {
            Some(version) => Some(self.baseline(conn, version)?),
            None => {
                let table = TableName::new(self.table_name())?;
                crate::migrator::refuse_inside_transaction(conn, &table)?;
                conn.create_table(&table)?;
                None
            }
        };
        tracing::info!(target: "migrate", "adopted {} diesel migration(s), the last {}", recorded.len(), recorded.last().map_or("", String::as_str));
        Ok(Adoption {
            diesel_versions: recorded,
            baseline,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn diesel_folder_names_give_diesel_versions_and_semver_folders_none() {
        use migrate_core::diesel_folder_version as v;
        assert_eq!(
            v("2023-05-01-120000_create_users").as_deref(),
            Some("20230501120000")
        );
        assert_eq!(
            v("00000000000000_diesel_initial_setup").as_deref(),
            Some("00000000000000")
        );
        assert_eq!(v("1.0.0_semver"), None);
        assert_eq!(v("no_version_here"), None);
    }
}
