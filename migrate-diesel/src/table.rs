//! The tracking table's name: validated, and always quoted. It knows
//! identifiers, not databases.

use std::fmt;

use crate::Error;

/// A validated tracking-table name: ASCII letters, digits and `_`, not
/// starting with a digit, at most 57 bytes (so that its state table,
/// `<name>_state`, fits PostgreSQL's 63). Anything else is refused, so the
/// name can never carry SQL; it is quoted as well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName(String);

/// PostgreSQL's 63-byte identifier limit, less `_state`.
const MAX_LEN: usize = 57;

impl TableName {
    /// Validates `name`.
    pub fn new(name: &str) -> Result<TableName, Error> {
        let mut chars = name.chars();
        let valid_start = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let valid_rest = chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid_start && valid_rest && name.len() <= MAX_LEN {
            Ok(TableName(name.to_owned()))
        } else {
            Err(Error::InvalidTableName {
                name: name.to_owned(),
            })
        }
    }

    /// The state table beside the tracking table, `<name>_state`: one row
    /// holding the fingerprint of the applied set, which lets the start-up
    /// check read one row instead of the whole history.
    pub fn state(&self) -> TableName {
        TableName(format!("{}_state", self.0))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name quoted as an SQL identifier (`"name"`).
    pub fn quoted(&self) -> String {
        // Validation leaves no `"` to escape.
        format!("\"{}\"", self.0)
    }

    /// The name quoted as a MySQL identifier (`` `name` ``), which MySQL
    /// needs unless the session runs with `ANSI_QUOTES`.
    pub fn backquoted(&self) -> String {
        // Validation leaves no backquote to escape.
        format!("`{}`", self.0)
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_identifiers_are_accepted_and_quoted() {
        for ok in ["migrations", "_m", "Schema_Migrations_2", &"a".repeat(57)] {
            let name = TableName::new(ok).unwrap();
            assert_eq!(name.quoted(), format!("\"{ok}\""));
            assert_eq!(name.backquoted(), format!("`{ok}`"));
        }
    }

    #[test]
    fn anything_that_could_carry_sql_is_refused() {
        for bad in [
            "",
            "1abc",
            "users; DROP TABLE users",
            "m\"; DROP TABLE x; --",
            "a b",
            "public.migrations",
            "mig-rations",
            "tablé",
            &"a".repeat(58),
        ] {
            let err = TableName::new(bad).unwrap_err();
            assert!(
                err.to_string().contains("is not a valid table name"),
                "{err}"
            );
        }
    }
}
