//! The script trait and the type-erased entry the registry holds.

use std::any::{Any, TypeId};
use std::fmt;

/// The error type a script's `up` or `down` returns: any error, boxed.
///
/// `?` converts diesel's errors (and any other `std::error::Error`) into it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A migration written in Rust.
///
/// `Connection` is the connection type the script runs on, for example
/// `diesel::SqliteConnection`. This crate does not depend on diesel: the
/// executor hands each script the connection it was written for, and refuses
/// before running anything when the script asks for a different one.
///
/// A script that can be reverted implements [`down`](Self::down) **and** sets
/// [`REVERSIBLE`](Self::REVERSIBLE) to `true`, so that the planner knows before
/// running anything whether a downgrade is possible.
///
/// ```
/// use migrate_core::{BoxError, MigrationScript};
///
/// /// Stands in for a real connection type such as `diesel::SqliteConnection`.
/// pub struct Conn(Vec<String>);
///
/// pub struct AddUserFullName;
///
/// impl MigrationScript for AddUserFullName {
///     type Connection = Conn;
///     const REVERSIBLE: bool = true;
///
///     fn up(&self, conn: &mut Conn) -> Result<(), BoxError> {
///         conn.0.push("ALTER TABLE users ADD COLUMN full_name TEXT".into());
///         Ok(())
///     }
///
///     fn down(&self, conn: &mut Conn) -> Result<(), BoxError> {
///         conn.0.push("ALTER TABLE users DROP COLUMN full_name".into());
///         Ok(())
///     }
/// }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is a migration script but does not implement `MigrationScript`",
    label = "this struct needs `impl MigrationScript for {Self}`",
    note = "add `impl MigrationScript for {Self} {{ type Connection = ...; fn up(&self, conn: &mut Self::Connection) -> Result<(), BoxError> {{ ... }} }}`"
)]
pub trait MigrationScript: Sync + 'static {
    /// The connection type `up` and `down` receive.
    type Connection: 'static;

    /// Whether [`down`](Self::down) is implemented. Defaults to `false`: a
    /// downgrade across this script is refused (or skipped, when the user
    /// opts in) instead of running a `down` that does not exist.
    const REVERSIBLE: bool = false;

    /// Applies the migration.
    fn up(&self, conn: &mut Self::Connection) -> Result<(), BoxError>;

    /// Reverts the migration. The default reports that the script is
    /// irreversible.
    fn down(&self, conn: &mut Self::Connection) -> Result<(), BoxError> {
        let _ = conn;
        Err(Box::new(Irreversible))
    }
}

/// The error of a `down` that was not implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this script has no `down`: implement `down` and set `const REVERSIBLE: bool = true`")]
pub struct Irreversible;

/// Why running a script's `up` or `down` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// The script was written for another connection type.
    #[error(
        "script is written for `{expected}` but was given a `{found}`; run it with the backend it was written for"
    )]
    WrongConnection {
        /// The connection type the script declares.
        expected: &'static str,
        /// The connection type the executor passed.
        found: &'static str,
    },
    /// The script's own code returned an error.
    #[error(transparent)]
    Failed(BoxError),
}

/// Object-safe view of a [`MigrationScript`], implemented for every script.
///
/// This is what lets scripts for any connection type sit in one registry. It
/// is public only so that [`Script`] can be built in constant context by the
/// attribute's expansion; use the methods of [`Script`] instead.
#[doc(hidden)]
pub trait DynScript: Sync {
    fn script_type(&self) -> (TypeId, &'static str);
    fn connection_type(&self) -> (TypeId, &'static str);
    fn reversible(&self) -> bool;
    fn up(&self, conn: &mut dyn Any, found: &'static str) -> Result<(), ScriptError>;
    fn down(&self, conn: &mut dyn Any, found: &'static str) -> Result<(), ScriptError>;
}

impl<T: MigrationScript> DynScript for T {
    fn script_type(&self) -> (TypeId, &'static str) {
        (TypeId::of::<T>(), std::any::type_name::<T>())
    }

    fn connection_type(&self) -> (TypeId, &'static str) {
        (
            TypeId::of::<T::Connection>(),
            std::any::type_name::<T::Connection>(),
        )
    }

    fn reversible(&self) -> bool {
        T::REVERSIBLE
    }

    fn up(&self, conn: &mut dyn Any, found: &'static str) -> Result<(), ScriptError> {
        MigrationScript::up(self, downcast::<T>(conn, found)?).map_err(ScriptError::Failed)
    }

    fn down(&self, conn: &mut dyn Any, found: &'static str) -> Result<(), ScriptError> {
        MigrationScript::down(self, downcast::<T>(conn, found)?).map_err(ScriptError::Failed)
    }
}

fn downcast<'c, T: MigrationScript>(
    conn: &'c mut dyn Any,
    found: &'static str,
) -> Result<&'c mut T::Connection, ScriptError> {
    conn.downcast_mut::<T::Connection>()
        .ok_or(ScriptError::WrongConnection {
            expected: std::any::type_name::<T::Connection>(),
            found,
        })
}

/// A code script together with what the attribute (or a hand-written list)
/// says about it: its version, name, description and transaction mode.
///
/// `#[migration_script]` builds one per annotated struct and registers it.
/// To list a script by hand, use [`Script::new`].
#[derive(Clone, Copy)]
pub struct Script {
    version: &'static str,
    name: Option<&'static str>,
    description: Option<&'static str>,
    transaction: bool,
    file: &'static str,
    line: u32,
    body: &'static dyn DynScript,
}

impl Script {
    /// Describes a script listed by hand, for a registry built without (or in
    /// addition to) the attribute. The version is checked when the registry
    /// is built. The name defaults to the struct's name.
    ///
    /// ```
    /// # use migrate_core::{BoxError, MigrationScript, Script};
    /// # pub struct Conn;
    /// pub struct SeedAdmins;
    /// impl MigrationScript for SeedAdmins {
    ///     type Connection = Conn;
    ///     fn up(&self, _: &mut Conn) -> Result<(), BoxError> { Ok(()) }
    /// }
    ///
    /// let script = Script::new("1.2.0", &SeedAdmins).with_description("seed the admin users");
    /// assert_eq!(script.name(), "SeedAdmins");
    /// ```
    #[track_caller]
    pub fn new<T: MigrationScript>(version: &'static str, script: &'static T) -> Script {
        let caller = std::panic::Location::caller();
        Script {
            version,
            name: None,
            description: None,
            transaction: true,
            file: caller.file(),
            line: caller.line(),
            body: script,
        }
    }

    #[doc(hidden)]
    pub const fn __registered<T: MigrationScript>(
        script: &'static T,
        version: &'static str,
        name: &'static str,
        description: Option<&'static str>,
        transaction: bool,
        file: &'static str,
        line: u32,
    ) -> Script {
        Script {
            version,
            name: Some(name),
            description,
            transaction,
            file,
            line,
            body: script,
        }
    }

    /// Sets the name shown in plans, status and history.
    pub fn with_name(mut self, name: &'static str) -> Script {
        self.name = Some(name);
        self
    }

    /// Sets the description recorded in the history.
    pub fn with_description(mut self, description: &'static str) -> Script {
        self.description = Some(description);
        self
    }

    /// Runs the script outside a transaction (`false`), for work such as
    /// `CREATE INDEX CONCURRENTLY`. Defaults to `true`.
    pub fn with_transaction(mut self, transaction: bool) -> Script {
        self.transaction = transaction;
        self
    }

    /// The version as written (not yet validated for hand-listed scripts).
    pub fn version(&self) -> &'static str {
        self.version
    }

    /// The script's name: the attribute's `name`, else the struct's name.
    pub fn name(&self) -> &'static str {
        self.name.unwrap_or_else(|| {
            let full = self.body.script_type().1;
            // `path::to::Struct` -> `Struct`
            full.rsplit("::").next().unwrap_or(full)
        })
    }

    /// The description, if any.
    pub fn description(&self) -> Option<&'static str> {
        self.description
    }

    /// Whether the script runs inside a transaction.
    pub fn transactional(&self) -> bool {
        self.transaction
    }

    /// Whether the script declares a `down`.
    pub fn reversible(&self) -> bool {
        self.body.reversible()
    }

    /// Where the script is declared, as `file:line`.
    pub fn location(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }

    /// The full type name of the connection the script is written for.
    pub fn connection_type_name(&self) -> &'static str {
        self.body.connection_type().1
    }

    /// Whether the script runs on connections of type `C`.
    pub fn accepts_connection<C: 'static>(&self) -> bool {
        self.body.connection_type().0 == TypeId::of::<C>()
    }

    /// Whether two entries describe the same script (the same struct at the
    /// same version), as when a registered script is also listed by hand.
    pub fn is_same_script(&self, other: &Script) -> bool {
        self.body.script_type().0 == other.body.script_type().0 && self.version == other.version
    }

    /// Runs `up` on `conn`. Fails without running anything when `C` is not
    /// the script's connection type.
    pub fn run_up<C: 'static>(&self, conn: &mut C) -> Result<(), ScriptError> {
        self.body.up(conn, std::any::type_name::<C>())
    }

    /// Runs `down` on `conn`. Fails without running anything when `C` is not
    /// the script's connection type.
    pub fn run_down<C: 'static>(&self, conn: &mut C) -> Result<(), ScriptError> {
        self.body.down(conn, std::any::type_name::<C>())
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Script")
            .field("version", &self.version)
            .field("name", &self.name())
            .field("description", &self.description)
            .field("transaction", &self.transaction)
            .field("reversible", &self.reversible())
            .field("connection", &self.connection_type_name())
            .field("location", &self.location())
            .finish()
    }
}
