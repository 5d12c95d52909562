//! The append-only history and the applied state derived from it.

use std::collections::BTreeMap;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use migrate_core::{AppliedScript, Direction, RecordedDown, ScriptKind, Version};

use crate::{Error, TableName};

/// One row of the tracking table: one executed step.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct HistoryRow {
    /// The change number: 1, 2, 3, ... in the order steps committed.
    #[diesel(sql_type = BigInt)]
    pub change: i64,
    /// The script's version, as written.
    #[diesel(sql_type = Text)]
    pub version: String,
    /// The script's name.
    #[diesel(sql_type = Text)]
    pub name: String,
    /// The script's description (empty when it has none).
    #[diesel(sql_type = Text)]
    pub description: String,
    /// `code` or `sql`.
    #[diesel(sql_type = Text)]
    pub kind: String,
    /// `up` or `down`.
    #[diesel(sql_type = Text)]
    pub direction: String,
    /// Whether the step ran (`false`: recorded without running, as for a
    /// skipped irreversible script).
    #[diesel(sql_type = Bool)]
    pub executed: bool,
    /// When it committed, UTC, ISO 8601.
    #[diesel(sql_type = Text)]
    pub applied_at: String,
    /// How long the step took, in milliseconds.
    #[diesel(sql_type = BigInt)]
    pub duration_ms: i64,
    /// The SQL checksum, for SQL migrations.
    #[diesel(sql_type = Nullable<Text>)]
    pub checksum: Option<String>,
    /// The step started outside a transaction and has not finished: it may
    /// be half-applied (see [`Migrator::resolve`](crate::Migrator::resolve)).
    #[diesel(sql_type = Bool)]
    pub dirty: bool,
    /// On the `up` row of an SQL migration, its `down` SQL (empty when it
    /// has none), so that a build without the migration can revert it.
    /// `None` for code scripts, and on rows written before it was recorded.
    #[diesel(sql_type = Nullable<Text>)]
    pub down_sql: Option<String>,
    /// On a `down` row that start-up ran under a downgrade authorization,
    /// that authorization (the version it names, as written): spent, it is
    /// never honoured again.
    #[diesel(sql_type = Nullable<Text>)]
    pub authorized_by: Option<String>,
}

impl HistoryRow {
    /// What this `up` row recorded about reverting its script.
    fn recorded_down(&self) -> RecordedDown {
        match (self.kind.as_str(), self.down_sql.as_deref()) {
            ("code", _) => RecordedDown::Code,
            (_, None) => RecordedDown::NotRecorded,
            (_, Some("")) => RecordedDown::Irreversible,
            (_, Some(sql)) => RecordedDown::Sql(sql.to_owned()),
        }
    }
}

/// A row about to be written.
#[derive(Debug, Clone)]
pub struct NewRow<'a> {
    /// The change number.
    pub change: i64,
    /// The version, as written.
    pub version: std::borrow::Cow<'a, str>,
    /// The name.
    pub name: &'a str,
    /// The description.
    pub description: &'a str,
    /// Code or SQL.
    pub kind: ScriptKind,
    /// Up or down.
    pub direction: Direction,
    /// Whether the step ran.
    pub executed: bool,
    /// Milliseconds.
    pub duration_ms: i64,
    /// The SQL checksum.
    pub checksum: Option<&'a str>,
    /// Written before a step that cannot be rolled back runs, and cleared
    /// when it finishes.
    pub dirty: bool,
    /// An SQL migration's `down` SQL (empty: it has none), on its `up`
    /// rows.
    pub down_sql: Option<&'a str>,
    /// The downgrade authorization a start-up `down` step ran under.
    pub authorized_by: Option<&'a str>,
}

/// A script the history says is applied, with when.
#[derive(Debug, Clone)]
pub(crate) struct AppliedState {
    /// Version, name and checksum, for the planner.
    pub(crate) script: AppliedScript,
    /// When its `up` committed.
    pub(crate) applied_at: String,
    /// Code or SQL, as recorded.
    pub(crate) kind: String,
}

/// The applied scripts derived from the history (the last row of each
/// version decides), plus the next change number.
pub(crate) struct State {
    pub(crate) applied: Vec<AppliedState>,
    /// Scripts whose last row reverted them without running their `down`:
    /// not applied, but their changes are there.
    pub(crate) kept: Vec<AppliedState>,
    pub(crate) next_change: i64,
    /// A step that started and did not finish.
    pub(crate) dirty: Option<HistoryRow>,
    /// The downgrade authorizations spent, each with the first row that
    /// spent it.
    pub(crate) spent: BTreeMap<String, HistoryRow>,
}

impl State {
    pub(crate) fn empty() -> State {
        State {
            applied: Vec::new(),
            kept: Vec::new(),
            next_change: 1,
            dirty: None,
            spent: BTreeMap::new(),
        }
    }

    pub(crate) fn from_history(table: &TableName, rows: Vec<HistoryRow>) -> Result<State, Error> {
        let mut next_change = 1;
        let mut dirty = None;
        let mut spent = BTreeMap::new();
        let mut last: BTreeMap<Version, HistoryRow> = BTreeMap::new();
        for row in rows {
            next_change = next_change.max(row.change + 1);
            if let Some(authorization) = &row.authorized_by {
                spent
                    .entry(authorization.clone())
                    .or_insert_with(|| row.clone());
            }
            if row.dirty {
                // Not applied (nor reverted) until resolved.
                dirty = Some(row);
                continue;
            }
            let version = Version::parse(&row.version).map_err(|source| Error::CorruptHistory {
                table: table.to_string(),
                change: row.change,
                source,
            })?;
            // Remove first: `insert` would keep the old key, and with it
            // the build metadata of an earlier row.
            last.remove(&version);
            last.insert(version, row);
        }
        let (mut applied, mut kept) = (Vec::new(), Vec::new());
        for (version, row) in last {
            let reverted_without_running = row.direction == "down" && !row.executed;
            if row.direction == "down" && !reverted_without_running {
                continue;
            }
            let state = AppliedState {
                script: AppliedScript {
                    version,
                    checksum: row.checksum.clone(),
                    down: row.recorded_down(),
                    reverted_without_running,
                    name: row.name,
                },
                applied_at: row.applied_at,
                kind: row.kind,
            };
            if reverted_without_running {
                kept.push(state);
            } else {
                applied.push(state);
            }
        }
        Ok(State {
            applied,
            kept,
            next_change,
            dirty,
            spent,
        })
    }

    /// The history as the planner reads it: the applied scripts, and
    /// those reverted without running.
    pub(crate) fn scripts(&self) -> Vec<AppliedScript> {
        self.applied
            .iter()
            .chain(&self.kept)
            .map(|a| a.script.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(change: i64, version: &str, direction: &str) -> HistoryRow {
        HistoryRow {
            change,
            version: version.to_owned(),
            name: "s".to_owned(),
            description: String::new(),
            kind: "code".to_owned(),
            direction: direction.to_owned(),
            executed: true,
            applied_at: String::new(),
            duration_ms: 0,
            checksum: None,
            dirty: false,
            down_sql: None,
            authorized_by: None,
        }
    }

    #[test]
    fn the_last_row_of_a_version_decides_its_build_metadata_too() {
        let table = TableName::new("t").unwrap();
        let rows = vec![
            row(1, "1.0.0+a", "up"),
            row(2, "1.0.0+a", "down"),
            row(3, "1.0.0+b", "up"),
        ];
        let state = State::from_history(&table, rows).unwrap();
        let versions: Vec<String> = state
            .applied
            .iter()
            .map(|a| a.script.version.to_string())
            .collect();
        assert_eq!(versions, ["1.0.0+b"]);
        assert_eq!(state.next_change, 4);
    }
}
