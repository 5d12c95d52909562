//! The drift check: the schema that the migrations build, compared with the
//! tables diesel's `table!` declares (usually in `schema.rs`). It builds the
//! schema on a fresh database through `Migrator::run`; it never plans.

use std::any::type_name;

use diesel::query_builder::QueryFragment;
use diesel::{QuerySource, Table};

use crate::backend::{Backend, Connectable};
use crate::{Error, Migrator, Schema};

/// A table as diesel's `table!` declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredTable {
    /// The table's name in the database.
    pub name: String,
    /// The columns, in declaration order.
    pub columns: Vec<DeclaredColumn>,
    /// The primary key's columns.
    pub primary_key: Vec<String>,
}

/// A column as `table!` declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaredColumn {
    /// Its name in the database.
    pub name: &'static str,
    /// Its diesel SQL type, without `Nullable` (`Integer`, `Text`, ...).
    pub sql_type: String,
    /// Whether it is `Nullable<...>`.
    pub nullable: bool,
}

/// The columns of a `table!`: implemented for the tuples of columns diesel
/// uses as `AllColumns` (up to 32 columns, diesel's default limit).
pub trait ColumnList {
    /// Each column, in order.
    fn columns() -> Vec<DeclaredColumn>;
}

/// One column's declaration.
fn declared_column<C>() -> DeclaredColumn
where
    C: diesel::Column + diesel::Expression,
    C::SqlType: 'static,
{
    // `diesel::sql_types::Nullable<diesel::sql_types::Integer>`, or a
    // backend's own type path: keep the type names, drop the paths, and
    // strip only an outer `Nullable`.
    let simple = simplify(type_name::<C::SqlType>());
    let (nullable, sql_type) = match simple
        .strip_prefix("Nullable<")
        .and_then(|rest| rest.strip_suffix('>'))
    {
        Some(inner) => (true, inner.to_owned()),
        None => (false, simple),
    };
    DeclaredColumn {
        name: C::NAME,
        sql_type,
        nullable,
    }
}

/// `a::b::Array<c::Nullable<d::Text>>` as `Array<Nullable<Text>>`.
fn simplify(type_name: &str) -> String {
    let mut out = String::new();
    let mut token = String::new();
    for c in type_name.chars().chain(std::iter::once('\0')) {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            token.push(c);
        } else {
            out.push_str(token.rsplit("::").next().unwrap_or_default());
            token.clear();
            if c != '\0' && c != ' ' {
                out.push(c);
            }
        }
    }
    out
}

/// `MyEnum` as `my_enum`, for custom types named after the database's.
fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

macro_rules! column_lists {
    ($($T:ident),+) => {
        impl<$($T),+> ColumnList for ($($T,)+)
        where
            $($T: diesel::Column + diesel::Expression, <$T as diesel::Expression>::SqlType: 'static,)+
        {
            fn columns() -> Vec<DeclaredColumn> {
                vec![$(declared_column::<$T>()),+]
            }
        }
    };
}

macro_rules! all_column_lists {
    ($first:ident $(, $rest:ident)*) => {
        column_lists!($first $(, $rest)*);
        all_column_lists!($($rest),*);
    };
    () => {};
}

all_column_lists!(
    C32, C31, C30, C29, C28, C27, C26, C25, C24, C23, C22, C21, C20, C19, C18, C17, C16, C15, C14,
    C13, C12, C11, C10, C9, C8, C7, C6, C5, C4, C3, C2, C1
);

/// Rendered SQL identifiers (`"users"`, `` `users`.`id` ``, `"a", "b"`) as
/// bare names: the last part of each, unquoted.
fn identifiers(sql: &str) -> Vec<String> {
    sql.split(',')
        .map(|part| {
            let last = part.trim().rsplit('.').next().unwrap_or_default();
            last.trim_matches(|c| c == '"' || c == '`').to_owned()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// The backend used to render a table's name and primary key: any built
/// one does, since the quotes are stripped.
#[cfg(feature = "sqlite")]
type Render = diesel::sqlite::Sqlite;
#[cfg(all(not(feature = "sqlite"), feature = "postgres"))]
type Render = diesel::pg::Pg;
#[cfg(all(not(feature = "sqlite"), not(feature = "postgres"), feature = "mysql"))]
type Render = diesel::mysql::Mysql;

/// Describes the `table!` table `table`. Used by
/// [`check_schema!`](crate::check_schema); call that instead.
#[doc(hidden)]
pub fn declared_table<T>(table: &T) -> DeclaredTable
where
    T: Table + QuerySource,
    T::AllColumns: ColumnList,
    T::FromClause: QueryFragment<Render>,
    T::PrimaryKey: QueryFragment<Render>,
{
    let name = diesel::debug_query::<Render, _>(&table.from_clause()).to_string();
    let name = identifiers(name.split(" -- ").next().unwrap_or_default())
        .pop()
        .unwrap_or_default();
    let pk = diesel::debug_query::<Render, _>(&table.primary_key()).to_string();
    DeclaredTable {
        name,
        columns: T::AllColumns::columns(),
        primary_key: identifiers(pk.split(" -- ").next().unwrap_or_default()),
    }
}

/// Whether a database type (as [`Schema`] reports it) stores what the
/// diesel type `declared` describes, on `backend`.
fn compatible(backend: &str, db_type: &str, declared: &str) -> bool {
    let t = db_type.to_ascii_lowercase();
    // PostgreSQL arrays: `_int4` holds `Array<Integer>` (elements may be
    // declared Nullable).
    if let Some(element) = declared
        .strip_prefix("Array<")
        .and_then(|rest| rest.strip_suffix('>'))
    {
        let element = element
            .strip_prefix("Nullable<")
            .and_then(|rest| rest.strip_suffix('>'))
            .unwrap_or(element);
        return t
            .strip_prefix('_')
            .is_some_and(|inner| compatible(backend, inner, element));
    }
    let family: &[&str] = if backend == "SQLite" {
        // SQLite's type affinity rules, as diesel's print-schema reads them.
        if t.contains("bigint") {
            &["BigInt", "Integer"]
        } else if t.contains("smallint") {
            &["SmallInt", "Integer"]
        } else if t.contains("bool") {
            &["Bool"]
        } else if t.contains("int") {
            &["Integer", "BigInt", "SmallInt"]
        } else if t.contains("char") || t.contains("clob") || t.contains("text") {
            &["Text", "VarChar"]
        } else if t.contains("blob") || t.is_empty() {
            &["Binary"]
        } else if t.contains("doub") || t.contains("real") {
            &["Double", "Float"]
        } else if t.contains("floa") {
            &["Float", "Double"]
        } else if t.contains("timestamp") || t.contains("datetime") {
            &["Timestamp", "TimestamptzSqlite"]
        } else if t == "date" {
            &["Date"]
        } else if t == "time" {
            &["Time"]
        } else {
            &["Numeric", "Double", "Float"]
        }
    } else {
        // PostgreSQL's udt names.
        match t.as_str() {
            "int2" => &["SmallInt"],
            "int4" => &["Integer"],
            "int8" => &["BigInt"],
            "text" | "varchar" | "bpchar" => &["Text", "VarChar"],
            "citext" => &["Citext", "Text"],
            "bool" => &["Bool"],
            "float4" => &["Float"],
            "float8" => &["Double"],
            "numeric" => &["Numeric"],
            "timestamp" => &["Timestamp"],
            "timestamptz" => &["Timestamptz"],
            "date" => &["Date"],
            "time" => &["Time"],
            "bytea" => &["Binary"],
            "uuid" => &["Uuid"],
            "json" => &["Json"],
            "jsonb" => &["Jsonb"],
            _ => &[],
        }
    };
    // A custom type (an enum, say) declared under the database's name.
    family.contains(&declared) || snake_case(declared) == t || declared.eq_ignore_ascii_case(&t)
}

/// Every difference between the declared tables and `schema`, one readable
/// line each.
pub fn schema_drift(backend: &str, declared: &[DeclaredTable], schema: &Schema) -> Vec<String> {
    let mut lines = Vec::new();
    for table in declared {
        let Some(actual) = schema.tables.get(&table.name) else {
            lines.push(format!(
                "table `{}` is declared in schema.rs but no migration creates it",
                table.name
            ));
            continue;
        };
        for column in &table.columns {
            let name = column.name;
            let Some(real) = actual.columns.iter().find(|c| c.name == name) else {
                lines.push(format!(
                    "column `{}.{name}` is declared in schema.rs but no migration creates it",
                    table.name
                ));
                continue;
            };
            if !compatible(backend, &real.sql_type, &column.sql_type) {
                lines.push(format!(
                    "column `{}.{name}`: schema.rs says {}, the database has {}",
                    table.name, column.sql_type, real.sql_type
                ));
            }
            if column.nullable != real.nullable {
                let says = |nullable| if nullable { "Nullable" } else { "NOT NULL" };
                lines.push(format!(
                    "column `{}.{name}`: schema.rs says {}, the database says {}",
                    table.name,
                    says(column.nullable),
                    says(real.nullable)
                ));
            }
        }
        for real in &actual.columns {
            if !table.columns.iter().any(|c| c.name == real.name) {
                lines.push(format!(
                    "column `{}.{}` exists in the database but not in schema.rs",
                    table.name, real.name
                ));
            }
        }
        if table.primary_key != actual.primary_key {
            lines.push(format!(
                "primary key of `{}`: schema.rs says ({}), the database has ({})",
                table.name,
                table.primary_key.join(", "),
                actual.primary_key.join(", ")
            ));
        }
    }
    for name in schema.tables.keys() {
        if !declared.iter().any(|t| &t.name == name) {
            lines.push(format!(
                "table `{name}` exists in the database but not in schema.rs"
            ));
        }
    }
    lines
}

impl Migrator {
    /// The drift check: runs every migration up to the application version
    /// (what start-up would run) on a fresh database, reads the schema it built and compares it with `declared` (from diesel's
    /// `table!`, through [`check_schema!`](crate::check_schema)): tables,
    /// columns, SQL types mapped to the backend's, nullability and primary
    /// keys. Returns [`Error::SchemaDrift`] listing every difference.
    pub fn check_schema<T: Connectable>(
        &self,
        conn: &mut T,
        declared: &[DeclaredTable],
    ) -> Result<(), Error> {
        let conn = conn.connection();
        let table = super::verify::require_fresh(self, conn, "drift check")?;
        self.run(conn)?;
        let schema = conn.schema(&table)?;
        let lines = schema_drift(<T::Connection as Backend>::NAME, declared, &schema);
        if lines.is_empty() {
            Ok(())
        } else {
            Err(Error::SchemaDrift { lines })
        }
    }
}

/// Checks, in one line from a test, that the migrations build the schema
/// that diesel's `table!` declarations describe: runs every migration on a
/// fresh database (`$conn`, e.g. SQLite's `:memory:`), then compares tables,
/// columns, types, nullability and primary keys. Evaluates to
/// `Result<(), migrate::Error>`; the error lists every difference.
///
/// ```ignore
/// let mut conn = SqliteConnection::establish(":memory:")?;
/// migrate::check_schema!(Migrator::new("1.2.0"), &mut conn, [schema::users::table, schema::posts::table])?;
/// ```
#[macro_export]
macro_rules! check_schema {
    ($migrator:expr, $conn:expr, [$($table:expr),+ $(,)?]) => {{
        let declared = ::std::vec![$($crate::drift::declared_table(&$table)),+];
        $migrator.check_schema($conn, &declared)
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diesel_type_names_lose_their_paths_and_only_an_outer_nullable() {
        assert_eq!(
            simplify(
                "diesel::pg::sql_types::Array<diesel::sql_types::Nullable<diesel::sql_types::Text>>"
            ),
            "Array<Nullable<Text>>"
        );
        assert_eq!(simplify("diesel::sql_types::Integer"), "Integer");
        assert_eq!(snake_case("MyEnum"), "my_enum");
    }

    #[test]
    fn database_types_match_the_diesel_types_they_store() {
        assert!(compatible("PostgreSQL", "_text", "Array<Nullable<Text>>"));
        assert!(compatible("PostgreSQL", "_int4", "Array<Integer>"));
        assert!(!compatible("PostgreSQL", "_int4", "Array<Text>"));
        assert!(compatible("PostgreSQL", "my_enum", "MyEnum"));
        assert!(compatible("PostgreSQL", "citext", "Citext"));
        assert!(!compatible("PostgreSQL", "int4", "Text"));
        assert!(compatible("SQLite", "varchar(100)", "Text"));
        assert!(compatible("SQLite", "integer", "BigInt"));
        assert!(!compatible("SQLite", "text", "Integer"));
    }
}
