//! What `run`, `plan` and `status` return, and how they print. Types
//! only: nothing here touches a database.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use migrate_core::{Action, AppVersion, Direction, Plan, ScriptKind, ScriptRef, Step, Version};

/// What [`Migrator::run_to_with`](crate::Migrator::run_to_with) reports as
/// the plan runs.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Progress<'a> {
    /// A step is about to run (its transaction is open).
    Started(&'a Step),
    /// A step ran and its history row is written (its transaction may still
    /// be open in atomic mode).
    Finished(&'a StepReport),
}

/// One executed step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// Up or down.
    pub direction: Direction,
    /// The script's version.
    pub version: Version,
    /// The script's name (as [`Step::name`]).
    pub name: Cow<'static, str>,
    /// Code or SQL.
    pub kind: ScriptKind,
    /// Run, or only recorded.
    pub action: Action,
    /// How long it took, its history row included.
    pub duration: Duration,
}

/// The outcome of [`Migrator::run`](crate::Migrator::run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The application version the run aimed at, and where it came from.
    pub app_version: AppVersion,
    /// The database version before.
    pub from: Option<Version>,
    /// The database version after.
    pub to: Option<Version>,
    /// The steps, in the order they ran.
    pub steps: Vec<StepReport>,
    /// Whether the migration lock was taken: when something was pending,
    /// and briefly, if it was free, when the database was settled but its
    /// state row missing or out of date (to write it).
    pub locked: bool,
    /// Whether the check read only the state row, which showed the database
    /// settled at the application version (see
    /// [`Migrator::run`](crate::Migrator::run)); otherwise it read the whole
    /// history.
    pub fast_path: bool,
    /// The whole run, checks included.
    pub total: Duration,
    /// Applied scripts above the target that the run left in place, highest
    /// first: the database is ahead of the application (start-up tolerates
    /// that by default, and never reverts without an authorization).
    pub ahead: Vec<ScriptRef>,
    /// Scripts compiled into this build above the target and not applied:
    /// they run once the application version reaches them.
    pub above_target: Vec<ScriptRef>,
    /// The downgrade authorization this run spent, as it was given (e.g.
    /// `MIGRATE_AUTHORIZE_DOWNGRADE_TO=1.0.0`): it is recorded with the
    /// `down` steps, and never honoured again.
    pub authorization: Option<String>,
}

fn show(v: &Option<Version>) -> String {
    v.as_ref()
        .map_or_else(|| "(empty)".to_owned(), ToString::to_string)
}

impl Report {
    /// The last line: the versions before and after, the steps and the time,
    /// and what the run left alone above the target.
    pub fn summary(&self) -> String {
        let mut line = if self.steps.is_empty() {
            format!(
                "database at {}, application at {}: nothing to do ({:.1?})",
                show(&self.from),
                self.app_version.version,
                self.total
            )
        } else {
            format!(
                "migrated {} -> {} in {} step{} ({:.1?})",
                show(&self.from),
                show(&self.to),
                self.steps.len(),
                if self.steps.len() == 1 { "" } else { "s" },
                self.total
            )
        };
        if let Some(authorization) = &self.authorization {
            line += &format!(", downgrade authorized by {authorization} (now spent)");
        }
        if !self.ahead.is_empty() {
            line += &format!(
                "; the database is ahead, left in place: {}",
                ScriptRef::list(&self.ahead)
            );
        }
        if !self.above_target.is_empty() {
            line += &format!(
                "; not run, above the application version: {}",
                ScriptRef::list(&self.above_target)
            );
        }
        line
    }
}

impl fmt::Display for StepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let note = match (self.action, self.direction) {
            (Action::Run, _) => "",
            (Action::RecordOnly, Direction::Up) => "  (recorded as applied, not run)",
            (Action::RecordOnly, Direction::Down) => {
                "  (no down: recorded as reverted, its changes stay)"
            }
        };
        write!(
            f,
            "{:<4} {} {} ({}) {:.1?}{note}",
            self.direction, self.version, self.name, self.kind, self.duration
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.steps {
            writeln!(f, "  {s}")?;
        }
        f.write_str(&self.summary())
    }
}

/// The outcome of [`Migrator::plan`](crate::Migrator::plan): the steps that
/// would run, and the SQL of SQL migrations. Nothing was changed.
#[derive(Debug, Clone)]
pub struct DryRun {
    /// The application version.
    pub app_version: AppVersion,
    /// The plan.
    pub plan: Plan,
    /// For each step, the SQL it would run (`None` for code and recorded-only
    /// steps).
    pub sql: Vec<Option<String>>,
    /// The downgrade authorization the run would spend.
    pub authorization: Option<String>,
}

impl fmt::Display for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plan = &self.plan;
        if plan.is_empty() {
            write!(f, "{plan}")?;
        } else {
            write!(
                f,
                "{} -> {}: {} step(s)",
                show(&plan.from),
                show(&plan.to),
                plan.steps.len()
            )?;
            if let Some(authorization) = &self.authorization {
                write!(f, ", a downgrade authorized by {authorization}")?;
            }
        }
        for (i, (step, sql)) in plan.steps.iter().zip(&self.sql).enumerate() {
            write!(
                f,
                "\n{:>3}. {:<4} {} {} ({})",
                i + 1,
                step.direction,
                step.version,
                step.name,
                step.kind
            )?;
            if let Some(note) = step.note() {
                write!(f, " [{note}]")?;
            }
            if let Some(sql) = sql {
                for line in sql.trim_end().lines() {
                    write!(f, "\n       | {line}")?;
                }
            }
        }
        if !plan.above_target.is_empty() {
            write!(
                f,
                "\nnot run, above the application version {}: {}",
                self.app_version.version,
                ScriptRef::list(&plan.above_target)
            )?;
        }
        Ok(())
    }
}

/// The state of one script in [`Status`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Applied, and known to this build.
    Applied,
    /// Known, not applied, at or below the application version.
    Pending,
    /// Known, not applied, above the application version.
    AboveAppVersion,
    /// Applied, but this build does not know it.
    AppliedUnknown,
    /// Applied SQL whose file has changed since.
    ChecksumChanged,
    /// Started outside a transaction and not finished: may be half-applied.
    InProgress,
    /// Applied above the application version: the database is ahead.
    Ahead,
    /// Recorded as reverted without running its `down` (a skipped
    /// irreversible script): its changes are still there, and moving up
    /// past it records it as applied without running it again.
    RevertedKeptChanges,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            State::Applied => "applied",
            State::Pending => "pending",
            State::AboveAppVersion => "above app version",
            State::AppliedUnknown => "applied, unknown to this build",
            State::ChecksumChanged => "applied, checksum changed",
            State::InProgress => "IN PROGRESS (dirty)",
            State::Ahead => "applied, ahead of the application",
            State::RevertedKeptChanges => "reverted without running, changes kept",
        })
    }
}

/// One script in [`Status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    /// The version.
    pub version: Version,
    /// The name.
    pub name: String,
    /// Code or SQL (`None` when unknown to this build and not recorded).
    pub kind: Option<ScriptKind>,
    /// When it was applied.
    pub applied_at: Option<String>,
    /// Its state.
    pub state: State,
}

/// Every known and applied script, in version order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The application version.
    pub app_version: AppVersion,
    /// The database version (highest applied).
    pub database_version: Option<Version>,
    /// The diesel_migrations history below this tool's, when the database
    /// has one (see [`Migrator::adopt_diesel`](crate::Migrator::adopt_diesel)):
    /// how many migrations it records, and the latest.
    pub diesel_history: Option<(usize, String)>,
    /// The scripts.
    pub rows: Vec<StatusRow>,
    /// A step left in progress, with what to do about it.
    pub in_progress: Option<String>,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "application {} ({}), database {}",
            self.app_version.version,
            self.app_version.source,
            show(&self.database_version)
        )?;
        if let Some((count, latest)) = &self.diesel_history {
            writeln!(
                f,
                "below it, diesel_migrations' history: {count} migration(s), the latest {latest}"
            )?;
        }
        // Each column as wide as its longest cell, and no narrower than it
        // has always been.
        let cells: Vec<[String; 4]> = self
            .rows
            .iter()
            .map(|r| {
                [
                    r.version.to_string(),
                    r.name.clone(),
                    r.kind.map_or_else(|| "?".to_owned(), |k| k.to_string()),
                    r.applied_at.clone().unwrap_or_else(|| "-".to_owned()),
                ]
            })
            .collect();
        let mut widths = [14, 28, 5, 25];
        for row in &cells {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let [v, n, k, a] = widths;
        writeln!(
            f,
            "{:<v$} {:<n$} {:<k$} {:<a$} state",
            "version", "name", "kind", "applied at"
        )?;
        for (row, r) in cells.iter().zip(&self.rows) {
            let [version, name, kind, applied_at] = row;
            writeln!(
                f,
                "{version:<v$} {name:<n$} {kind:<k$} {applied_at:<a$} {}",
                r.state
            )?;
        }
        let app = &self.app_version;
        let count = |state| self.rows.iter().filter(|r| r.state == state).count();
        let ahead = count(State::Ahead);
        if ahead > 0 {
            writeln!(
                f,
                "the database is ahead: {ahead} script(s) applied above the application version {} ({}); start-up leaves them in place. `plan --to {}` shows whether this build can revert them",
                app.version, app.source, app.version
            )?;
        }
        let above = count(State::AboveAppVersion);
        if above > 0 {
            writeln!(
                f,
                "{above} script(s) of this build above the application version {} ({}) do not run until the application version reaches them",
                app.version, app.source
            )?;
        }
        if let Some(hint) = &self.in_progress {
            writeln!(f, "\n{hint}")?;
        }
        Ok(())
    }
}

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

/// The outcome of [`Migrator::verify`](crate::Migrator::verify): every known script, in order, up to
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_name_widens_its_column_and_the_others_stay_in_line() {
        let v = |s: &str| Version::parse(s).unwrap();
        let row = |version: &str, name: &str| StatusRow {
            version: v(version),
            name: name.to_owned(),
            kind: Some(ScriptKind::Sql),
            applied_at: None,
            state: State::Pending,
        };
        let status = Status {
            app_version: AppVersion {
                version: v("1.0.1"),
                source: migrate_core::VersionSource::Config,
            },
            database_version: None,
            diesel_history: None,
            rows: vec![
                row("1.0.0", "create_users"),
                row("1.0.1", "backfill_the_full_names_of_every_user_from_parts"),
            ],
            in_progress: None,
        };
        let text = status.to_string();
        let lines: Vec<&str> = text.lines().skip(1).take(3).collect();
        let kind_at: Vec<Option<usize>> = lines
            .iter()
            .map(|l| l.find("kind").or_else(|| l.find("sql")))
            .collect();
        assert!(kind_at.iter().all(|k| *k == kind_at[0]), "{text}");
        // The usual widths when every cell fits.
        assert!(lines[0].starts_with("version        name "), "{text}");
    }
}
