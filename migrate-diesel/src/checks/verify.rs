//! The reversibility check: on a fresh database, each script's `down` must
//! restore the schema from before its `up`, and `up` again must give the
//! same schema as the first time. It runs steps through the executor's
//! entry points, on a fresh database only; it never plans.

use migrate_core::Target;

use crate::backend::{Backend, Connectable};
use crate::report::{Reversibility, VerifyReport};
use crate::{Error, Migrator, Schema, TableName};

impl Migrator {
    /// The reversibility check, on a fresh database: for each known script
    /// in version order, runs `up`, snapshots the schema, runs `down` and
    /// compares with the schema from before `up`, then runs `up` again and
    /// compares with the first snapshot. Snapshots come from the database's
    /// own catalog: tables, columns (type, nullability, default), primary
    /// keys, indexes, unique and foreign keys.
    ///
    /// Scripts without `down` are reported, not failed, unless `strict`.
    /// Stops at the first broken script. Returns [`Error::NotReversible`]
    /// (its message is the readable report) when anything failed.
    ///
    /// From a test, in one line:
    ///
    /// ```no_run
    /// # use diesel::Connection;
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let mut fresh = diesel::SqliteConnection::establish(":memory:")?;
    /// # mod migrate { pub use migrate_diesel::Migrator; }
    /// migrate::Migrator::new("1.0.0").verify(&mut fresh, false)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn verify<T: Connectable>(
        &self,
        conn: &mut T,
        strict: bool,
    ) -> Result<VerifyReport, Error> {
        let conn = conn.connection();
        let table = require_fresh(self, conn, "reversibility check")?;
        let mut report = VerifyReport {
            scripts: Vec::new(),
            strict,
        };
        for script in self.registry()?.known() {
            let before = conn.schema(&table)?;
            self.run_to(conn, Some(Target::UpTo(script.version.clone())))?;
            let after_up = conn.schema(&table)?;
            let found = if !script.reversible {
                Reversibility::Irreversible
            } else {
                self.run_to(conn, Some(Target::DownSteps(1)))?;
                let back = conn.schema(&table)?;
                let diff = back.diff(&before);
                if !diff.is_empty() {
                    Reversibility::DownDiffers(diff)
                } else {
                    self.run_to(conn, Some(Target::UpTo(script.version.clone())))?;
                    let again: Schema = conn.schema(&table)?;
                    let diff = again.diff(&after_up);
                    if diff.is_empty() {
                        Reversibility::Reversible
                    } else {
                        Reversibility::UpAgainDiffers(diff)
                    }
                }
            };
            let broken = !matches!(
                found,
                Reversibility::Reversible | Reversibility::Irreversible
            );
            report
                .scripts
                .push((script.version, script.name.into_owned(), found));
            if broken {
                break;
            }
        }
        if report.passed() {
            Ok(report)
        } else {
            Err(Error::NotReversible { report })
        }
    }
}

/// Refuses a database that holds anything: history, or any table at all
/// (diesel's history included). The checks migrate and revert everything.
pub(crate) fn require_fresh<C: Backend>(
    migrator: &Migrator,
    conn: &mut C,
    check: &'static str,
) -> Result<TableName, Error> {
    let table = TableName::new(migrator.table_name())?;
    let status = migrator.status(conn)?;
    let applied = status
        .rows
        .iter()
        .filter(|r| r.applied_at.is_some())
        .count();
    let tables: Vec<String> = conn.schema(&table)?.tables.into_keys().collect();
    if applied > 0 || !tables.is_empty() {
        let mut found = Vec::new();
        if applied > 0 {
            found.push(format!("{applied} applied script(s) in `{table}`"));
        }
        if !tables.is_empty() {
            found.push(format!("the table(s) {}", tables.join(", ")));
        }
        return Err(Error::NeedsFreshDatabase {
            check,
            found: found.join(" and "),
        });
    }
    Ok(table)
}
