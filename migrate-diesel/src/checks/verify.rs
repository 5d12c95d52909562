//! The reversibility check: on a fresh database, each script's `down` must
//! restore the schema from before its `up`, and `up` again must give the
//! same schema as the first time.

use std::fmt;

use migrate_core::{Target, Version};

use crate::backend::Backend;
use crate::{Error, Migrator, Schema, TableName};

/// What the check found for one script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reversibility {
    /// `down` restored the schema, and `up` again rebuilt the same one.
    Reversible,
    /// The script has no `down`: not checked (an error in strict mode).
    Irreversible,
    /// `down` left the schema different from before `up`: each line says
    /// what `down` left behind (`+`), removed (`-`) or changed (`~`).
    DownDiffers(Vec<String>),
    /// `up` after `down` gave a different schema than the first `up`: each
    /// line is relative to the first `up`.
    UpAgainDiffers(Vec<String>),
}

/// The outcome of [`Migrator::verify`]: every known script, in order, up to
/// the first broken one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Each script checked, with what was found.
    pub scripts: Vec<(Version, String, Reversibility)>,
    /// Whether irreversible scripts count as failures.
    pub strict: bool,
}

impl VerifyReport {
    /// Whether every script passed (irreversible ones too, unless strict).
    pub fn passed(&self) -> bool {
        self.scripts.iter().all(|(_, _, r)| match r {
            Reversibility::Reversible => true,
            Reversibility::Irreversible => !self.strict,
            _ => false,
        })
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "reversibility check of {} script(s){}:",
            self.scripts.len(),
            if self.strict { ", strict" } else { "" }
        )?;
        for (version, name, found) in &self.scripts {
            write!(f, "  {version} `{name}`: ")?;
            match found {
                Reversibility::Reversible => writeln!(f, "reversible")?,
                Reversibility::Irreversible if self.strict => {
                    writeln!(f, "IRREVERSIBLE (no down), refused in strict mode")?;
                }
                Reversibility::Irreversible => writeln!(f, "irreversible (no down): not checked")?,
                Reversibility::DownDiffers(lines) => {
                    writeln!(
                        f,
                        "BROKEN: down did not restore the schema from before up (+ left behind by down, - removed by it, ~ changed):"
                    )?;
                    for line in lines {
                        writeln!(f, "      {line}")?;
                    }
                }
                Reversibility::UpAgainDiffers(lines) => {
                    writeln!(
                        f,
                        "BROKEN: up after down gave another schema than the first up (+ only the second time, - only the first):"
                    )?;
                    for line in lines {
                        writeln!(f, "      {line}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

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
    pub fn verify<C: Backend>(&self, conn: &mut C, strict: bool) -> Result<VerifyReport, Error> {
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
            report.scripts.push((script.version, script.name, found));
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
