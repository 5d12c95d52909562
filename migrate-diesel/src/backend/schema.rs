//! A database's schema as its own catalog describes it: tables, columns
//! (type, nullability, default), primary keys, indexes (unique ones
//! included), and foreign keys and unique constraints. Compared by the
//! reversibility check ([`Migrator::verify`](crate::Migrator::verify)) and
//! the drift check ([`Migrator::check_schema`](crate::Migrator::check_schema)).
//! Types and their comparison only: each backend reads its own catalog into
//! them, and the checks (`verify`, drift) compare them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// Every user table, by name; the tracking table is left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    /// The tables.
    pub tables: BTreeMap<String, TableSchema>,
}

/// One table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSchema {
    /// The columns, in their order in the table.
    pub columns: Vec<ColumnSchema>,
    /// The primary key's columns, in key order.
    pub primary_key: Vec<String>,
    /// Indexes by name, each as the database describes it (e.g.
    /// `UNIQUE (email)`, or PostgreSQL's `CREATE INDEX ... USING btree ...`).
    pub indexes: BTreeMap<String, String>,
    /// Foreign keys and unique constraints, each as the database describes
    /// it (e.g. `FOREIGN KEY (user_id) REFERENCES users (id)`).
    pub constraints: BTreeSet<String>,
}

/// One column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSchema {
    /// Its name.
    pub name: String,
    /// Its type as declared (SQLite) or as the catalog names it
    /// (PostgreSQL's `udt_name`: `int4`, `varchar`, ...), lower case: what
    /// the drift check maps to diesel's types.
    pub sql_type: String,
    /// Its full type, with length and precision (`character varying(100)`,
    /// `numeric(10,2)`): what the reversibility check compares.
    pub full_type: String,
    /// Whether it accepts NULL.
    pub nullable: bool,
    /// Its default expression.
    pub default: Option<String>,
}

impl fmt::Display for ColumnSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}{}",
            self.full_type,
            if self.nullable { "NULL" } else { "NOT NULL" },
            self.default
                .as_ref()
                .map(|d| format!(" DEFAULT {d}"))
                .unwrap_or_default()
        )
    }
}

impl Schema {
    /// What differs from `before` to `self`, one readable line each: what
    /// is only in one of them, and what changed. Empty when they are equal.
    pub fn diff(&self, before: &Schema) -> Vec<String> {
        let mut lines = Vec::new();
        let names: BTreeSet<&String> = before.tables.keys().chain(self.tables.keys()).collect();
        for name in names {
            match (before.tables.get(name), self.tables.get(name)) {
                (Some(_), None) => lines.push(format!("- table `{name}`")),
                (None, Some(_)) => lines.push(format!("+ table `{name}`")),
                (Some(a), Some(b)) => a.diff(name, b, &mut lines),
                (None, None) => {}
            }
        }
        lines
    }
}

impl TableSchema {
    fn diff(&self, table: &str, after: &TableSchema, lines: &mut Vec<String>) {
        let column =
            |cols: &[ColumnSchema], name: &str| cols.iter().find(|c| c.name == name).cloned();
        let names: Vec<&String> = {
            let mut seen = Vec::new();
            for c in self.columns.iter().chain(&after.columns) {
                if !seen.contains(&&c.name) {
                    seen.push(&c.name);
                }
            }
            seen
        };
        for name in names {
            match (column(&self.columns, name), column(&after.columns, name)) {
                (Some(a), None) => lines.push(format!("- column `{table}.{name}` {a}")),
                (None, Some(b)) => lines.push(format!("+ column `{table}.{name}` {b}")),
                (Some(a), Some(b)) if a != b => {
                    lines.push(format!("~ column `{table}.{name}`: {a} -> {b}"));
                }
                _ => {}
            }
        }
        if self.primary_key != after.primary_key {
            lines.push(format!(
                "~ primary key of `{table}`: ({}) -> ({})",
                self.primary_key.join(", "),
                after.primary_key.join(", ")
            ));
        }
        let index_names: BTreeSet<&String> =
            self.indexes.keys().chain(after.indexes.keys()).collect();
        for name in index_names {
            match (self.indexes.get(name), after.indexes.get(name)) {
                (Some(a), None) => lines.push(format!("- index `{name}` on `{table}`: {a}")),
                (None, Some(b)) => lines.push(format!("+ index `{name}` on `{table}`: {b}")),
                (Some(a), Some(b)) if a != b => {
                    lines.push(format!("~ index `{name}` on `{table}`: {a} -> {b}"));
                }
                _ => {}
            }
        }
        for c in self.constraints.difference(&after.constraints) {
            lines.push(format!("- constraint on `{table}`: {c}"));
        }
        for c in after.constraints.difference(&self.constraints) {
            lines.push(format!("+ constraint on `{table}`: {c}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, sql_type: &str, nullable: bool) -> ColumnSchema {
        ColumnSchema {
            name: name.into(),
            sql_type: sql_type.into(),
            full_type: sql_type.into(),
            nullable,
            default: None,
        }
    }

    #[test]
    fn equal_schemas_have_no_difference_and_every_kind_of_change_is_one_line() {
        let mut before = Schema::default();
        before.tables.insert(
            "items".into(),
            TableSchema {
                columns: vec![col("id", "integer", false), col("name", "text", false)],
                primary_key: vec!["id".into()],
                ..TableSchema::default()
            },
        );
        assert!(before.diff(&before).is_empty());
        let mut after = before.clone();
        let items = after.tables.get_mut("items").unwrap();
        items.columns[1].nullable = true;
        items.columns.push(col("note", "text", true));
        items.indexes.insert("items_name".into(), "(name)".into());
        after.tables.insert("tags".into(), TableSchema::default());
        assert_eq!(
            after.diff(&before),
            [
                "~ column `items.name`: text NOT NULL -> text NULL",
                "+ column `items.note` text NULL",
                "+ index `items_name` on `items`: (name)",
                "+ table `tags`",
            ]
        );
    }
}
