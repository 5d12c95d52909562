//! What a user runs by hand to put the history right: `baseline` an
//! existing database, `resolve` a step left in progress.

use std::time::Instant;

use migrate_core::{Action, Direction, Origin, Step, Version};

use crate::Error;
use crate::backend::{Backend, Connectable};
use crate::history::HistoryRow;
use crate::report::{Report, StepReport};

use super::runner::*;
use super::*;

impl Migrator {
    /// Records an existing database as being at `version` without running
    /// anything: each known script at or below `version` gets a history row
    /// marked as not executed. For adopting the tool on a live database
    /// whose schema those scripts already describe.
    ///
    /// Refused when the tracking table already has rows, and when no known
    /// script is at or below `version`.
    pub fn baseline<T: Connectable>(&self, conn: &mut T, version: &str) -> Result<Report, Error> {
        let conn = conn.connection();
        let started = Instant::now();
        let version = Version::parse(version).map_err(|source| Error::InvalidVersion {
            what: "baseline version",
            source,
        })?;
        let setup = self.prepare(conn)?;
        let scripts = setup.scripts();
        let steps: Vec<Step> = setup
            .known()
            .iter()
            .enumerate()
            .filter(|(_, k)| k.version <= version)
            .map(|(i, k)| Step {
                direction: Direction::Up,
                version: k.version.clone(),
                name: k.name.clone(),
                kind: k.kind,
                action: Action::RecordOnly,
                origin: Origin::Known(i),
            })
            .collect();
        if steps.is_empty() {
            return Err(Error::BaselineRefused {
                table: setup.table.to_string(),
                reason: format!(
                    "no script known to this build is at or below {version}, so there is nothing to record; `up` runs every script"
                ),
            });
        }
        let lock = self.lock_to_write(conn, &setup.table)?;
        let steps = under_lock(conn, &setup.table, lock, |conn| {
            prepare_table(conn, &setup.table)?;
            let history = conn.read_history(&setup.table, true)?;
            if let Some(last) = history.last() {
                return Err(Error::BaselineRefused {
                    table: setup.table.to_string(),
                    reason: format!(
                        "it already holds {} row(s), the last for {} `{}`; baseline is only for a database this tool has never migrated",
                        history.len(),
                        last.version,
                        last.name
                    ),
                });
            }
            let mut run = Runner {
                table: &setup.table,
                scripts,
                next_change: 1,
                atomic: true,
                restore: None,
                authorized_by: None,
                progress: &mut |_| {},
            };
            let reports: Vec<StepReport> = conn.step_transaction(&setup.table, |c| {
                steps.iter().map(|s| run.step(c, s)).collect()
            })?;
            settle(conn, &setup.table);
            Ok(reports)
        })?;
        Ok(Report {
            app_version: setup.app,
            from: None,
            to: steps.last().map(|s| s.version.clone()),
            steps,
            locked: true,
            fast_path: false,
            total: started.elapsed(),
            ahead: Vec::new(),
            above_target: Vec::new(),
            authorization: None,
        })
    }

    /// Records the outcome of a step left in progress (see
    /// [`Error::Dirty`]) once the user has inspected and repaired the
    /// database: [`Resolution::Completed`] records it as done,
    /// [`Resolution::RolledBack`] removes the attempt. Returns the row.
    pub fn resolve<T: Connectable>(
        &self,
        conn: &mut T,
        version: &str,
        resolution: Resolution,
    ) -> Result<HistoryRow, Error> {
        let conn = conn.connection();
        let wanted = Version::parse(version).map_err(|source| Error::InvalidVersion {
            what: "version to resolve",
            source,
        })?;
        let setup = self.prepare(conn)?;
        let lock = self.lock_to_write(conn, &setup.table)?;
        under_lock(conn, &setup.table, lock, |conn| {
            let history = read_history(conn, &setup.table)?;
            if !history.dirty.is_empty() {
                // A dirty mark implies a cleared state; clear it anyway, in
                // case the history was edited by hand.
                conn.create_table(&setup.table)?;
                unsettle(conn, &setup.table)?;
            }
            let nothing = |reason: String| Error::NothingToResolve {
                version: wanted.to_string(),
                table: setup.table.to_string(),
                reason,
            };
            let row = match history
                .dirty
                .iter()
                .find(|row| Version::parse(&row.version).ok().as_ref() == Some(&wanted))
            {
                Some(row) => row.clone(),
                None if history.dirty.is_empty() => {
                    return Err(nothing("no step is in progress".to_owned()));
                }
                None => {
                    let marked: Vec<String> = history
                        .dirty
                        .iter()
                        .map(|row| format!("{} `{}`", row.version, row.name))
                        .collect();
                    let (one, many) = ("the step in progress is", "the steps in progress are");
                    return Err(nothing(format!(
                        "{} {}",
                        if marked.len() == 1 { one } else { many },
                        marked.join(", ")
                    )));
                }
            };
            // In a step's transaction: on PostgreSQL that checks the lock.
            conn.step_transaction(&setup.table, |conn| {
                match resolution {
                    // A probe may have left -1 in the row.
                    Resolution::Completed => {
                        conn.finish(&setup.table, row.change, row.duration_ms.max(0))
                    }
                    Resolution::RolledBack => conn.forget(&setup.table, row.change),
                }
                .map_err(Error::db(format!("resolving change {}", row.change)))
            })?;
            tracing::info!(target: "migrate", "{} `{}` ({}) resolved as {resolution:?}", row.version, row.name, row.direction);
            settle(conn, &setup.table);
            Ok(row)
        })
    }
}
