//! The script trait and the type-erased entry the registry holds.

use std::any::TypeId;
use std::fmt;

use crate::fingerprint::{Digest, entry_digest};
use crate::{Direction, ScriptKind, Version};

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
/// # extern crate migrate_core as migrate;
/// use migrate::{BoxError, MigrationScript};
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
    /// opts in) instead of running a `down` that does not exist. While it
    /// is `false`, `down` is never called, even if written
    /// ([`Script::run_down`] reports [`Irreversible`]), and the default
    /// `down` is not compiled for the script.
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
    /// `run_up`/`run_down` was called on an SQL script, which the executor
    /// runs itself.
    #[error("this is an SQL migration: the executor runs its SQL, not `run_up`/`run_down`")]
    NotCode,
}

/// A Rust script as a registry holds it: the value, and what its type says,
/// worked out when the entry is built (at compile time, for the attribute).
/// So a start-up reads data and calls none of the script's code, and each
/// script type compiles to one function (`ScriptType::run`) rather than a
/// vtable of them.
#[derive(Clone, Copy)]
pub struct CodeBody {
    value: Erased,
    of_type: &'static ScriptType,
}

/// A `&'static T` with `T` forgotten; only [`run::<T>`](run) reads it, and
/// only the `ScriptType` made for the same `T` holds that function.
/// (A `&dyn Any` would do the same, checked, at the price of a vtable and
/// a downcast compiled for every script type.)
#[derive(Clone, Copy)]
struct Erased(*const ());

// SAFETY: an `Erased` is only made from a `&'static T` with `T:
// MigrationScript`, which is `Sync`: sharing the pointer across threads
// shares a `&T`, which `T: Sync` allows.
unsafe impl Send for Erased {}
unsafe impl Sync for Erased {}

/// What a script's type says: one constant per type.
struct ScriptType {
    type_id: TypeId,
    zero_sized: bool,
    reversible: bool,
    connection: TypeId,
    connection_name: fn() -> &'static str,
    /// Runs `up` or `down` of the value, on the connection if it is the
    /// script's type.
    run: RunFn,
}

/// [`ScriptType::run`]: the value, whether to run `up` (else `down`), and
/// the connection, already checked to be of the script's connection type.
type RunFn = unsafe fn(Erased, bool, *mut ()) -> Result<(), BoxError>;

impl ScriptType {
    const fn of<T: MigrationScript>() -> ScriptType {
        ScriptType {
            type_id: TypeId::of::<T>(),
            zero_sized: size_of::<T>() == 0,
            reversible: T::REVERSIBLE,
            connection: TypeId::of::<T::Connection>(),
            // One function per connection type, shared by its scripts.
            connection_name: std::any::type_name::<T::Connection>,
            run: run::<T>,
        }
    }
}

/// The one function compiled per script type, kept to the calls that
/// depend on the type: the checks are [`CodeBody::run`]'s, made once for
/// every type.
///
/// # Safety
///
/// `value` was made from a `&'static T`, and `conn` points to a live
/// `T::Connection` borrowed mutably for the call.
unsafe fn run<T: MigrationScript>(value: Erased, up: bool, conn: *mut ()) -> Result<(), BoxError> {
    // SAFETY: the caller's promise (see above).
    let (script, conn) = unsafe { (&*value.0.cast::<T>(), &mut *conn.cast::<T::Connection>()) };
    if up {
        script.up(conn)
    } else if T::REVERSIBLE {
        script.down(conn)
    } else {
        // `CodeBody::run` refuses first; left out after monomorphization,
        // and so is the trait's default `down` for each such script.
        Err(Box::new(Irreversible))
    }
}

impl CodeBody {
    /// The entry of `value`, in constant context.
    const fn of<T: MigrationScript>(value: &'static T) -> CodeBody {
        CodeBody {
            value: Erased((value as *const T).cast::<()>()),
            of_type: &const { ScriptType::of::<T>() },
        }
    }

    /// Runs `up` or `down` on `conn`, refusing a connection of another type,
    /// and `down` of a script that has none.
    fn run<C: 'static>(&self, direction: Direction, conn: &mut C) -> Result<(), ScriptError> {
        let of_type = self.of_type;
        if of_type.connection != TypeId::of::<C>() {
            return Err(ScriptError::WrongConnection {
                expected: (of_type.connection_name)(),
                found: std::any::type_name::<C>(),
            });
        }
        if direction == Direction::Down && !of_type.reversible {
            return Err(ScriptError::Failed(Box::new(Irreversible)));
        }
        // SAFETY: `of_type` is the `ScriptType` of the `T` this entry's
        // value was made from (`CodeBody::of`), and `C` is `T::Connection`:
        // their `TypeId`s are equal.
        unsafe {
            (of_type.run)(
                self.value,
                direction == Direction::Up,
                (conn as *mut C).cast::<()>(),
            )
        }
        .map_err(ScriptError::Failed)
    }
}

impl fmt::Debug for CodeBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeBody")
            .field("connection", &(self.of_type.connection_name)())
            .field("reversible", &self.of_type.reversible)
            .finish_non_exhaustive()
    }
}

/// A migration (code or SQL) together with what the attribute, the SQL
/// folder or a hand-written list says about it: its version, name,
/// description and transaction mode.
///
/// `#[migration_script]` builds one per annotated struct and registers it;
/// `embed_sql!` builds one per SQL folder. To list a code script by hand,
/// use [`Script::new`].
#[derive(Clone, Copy)]
pub struct Script {
    version: &'static str,
    name: &'static str,
    description: Option<&'static str>,
    transaction: bool,
    file: &'static str,
    line: u32,
    body: Body,
    precomputed: Option<Precomputed>,
}

/// What a registry would otherwise work out from a script's version at
/// every start-up, worked out once: by `#[migration_script]` and
/// `embed_sql!` at compile time, by [`Script::new`] and [`Script::sql`] when
/// they are called. Only a script that passed the checks the registry makes
/// of each script has one: its version parses and, for SQL, its `up` and
/// `down` hold statements. Without one, the registry checks and reports.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precomputed {
    /// The version's numbers, when it is a plain `MAJOR.MINOR.PATCH` (no
    /// pre-release, no build metadata): no parse at start-up.
    release: Option<[u64; 3]>,
    /// The script's [`entry_digest`]: no hashing at start-up.
    digest: Digest,
}

impl Precomputed {
    /// Works it out for a script with `version` and `checksum` (`None` for
    /// code). The attribute and `embed_sql!` call this at compile time.
    pub fn compute(version: &str, checksum: Option<&str>) -> Option<Precomputed> {
        let version = Version::parse(version).ok()?;
        let v = version.as_semver();
        Some(Precomputed {
            release: (v.pre.is_empty() && v.build.is_empty())
                .then_some([v.major, v.minor, v.patch]),
            digest: entry_digest(v, checksum),
        })
    }

    /// Rebuilds what [`compute`](Self::compute) returned, in constant
    /// context (the expansions' statics).
    ///
    /// The digest comes as one little-endian integer: one literal in the
    /// expansion, not sixteen.
    pub const fn from_parts(release: Option<[u64; 3]>, digest: u128) -> Precomputed {
        Precomputed {
            release,
            digest: digest.to_le_bytes(),
        }
    }

    /// The plain release's numbers, if the version is one.
    pub fn release(&self) -> Option<[u64; 3]> {
        self.release
    }

    /// The script's digest.
    pub fn digest(&self) -> Digest {
        self.digest
    }
}

/// A script's identity: its struct type (and value, unless it is a unit
/// struct), or its SQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Identity {
    Code(TypeId, Option<usize>),
    Sql(SqlBody),
}

impl std::hash::Hash for Identity {
    /// One word per script (a registry hashes every script at start-up):
    /// a struct's value address, else its type; SQL by the start of its
    /// checksum (equal SQL has equal checksums; equality compares all).
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        match self {
            Identity::Code(_, Some(address)) => state.write_usize(*address),
            Identity::Code(type_id, None) => type_id.hash(state),
            Identity::Sql(sql) => {
                let mut start = [0; 8];
                let n = sql.checksum.len().min(8);
                start[..n].copy_from_slice(&sql.checksum.as_bytes()[..n]);
                state.write_u64(u64::from_le_bytes(start));
            }
        }
    }
}

/// What a [`Script`] runs.
#[derive(Clone, Copy)]
pub enum Body {
    /// A Rust script, run on the connection type it declares.
    Code(CodeBody),
    /// SQL embedded at build time.
    Sql(SqlBody),
}

/// The SQL of an embedded SQL migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlBody {
    /// The contents of `up.sql`.
    pub up: &'static str,
    /// The contents of `down.sql`, if there is one.
    pub down: Option<&'static str>,
    /// The checksum of `up.sql` (SHA-256 of its text with CRLF turned into
    /// LF, in hex), so that line-ending conversions do not count as edits.
    pub checksum: &'static str,
}

impl Script {
    /// Describes a script listed by hand, for a registry built without (or in
    /// addition to) the attribute. The version is checked when the registry
    /// is built. The name defaults to the struct's name.
    ///
    /// ```
    /// # extern crate migrate_core as migrate;
    /// # use migrate::{BoxError, MigrationScript, Script};
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
        // Generic only as far as it must be: this is compiled once per
        // script type.
        Script::code(
            version,
            std::any::type_name::<T>(),
            CodeBody::of(script),
            std::panic::Location::caller(),
        )
    }

    /// What [`Script::new`] does that does not depend on the type.
    fn code(
        version: &'static str,
        type_name: &'static str,
        body: CodeBody,
        caller: &'static std::panic::Location<'static>,
    ) -> Script {
        // `path::to::Struct<path::to::Param>` -> `Struct`
        let base = type_name.split('<').next().unwrap_or(type_name);
        Script {
            version,
            name: base.rsplit("::").next().unwrap_or(base),
            description: None,
            transaction: true,
            file: caller.file(),
            line: caller.line(),
            body: Body::Code(body),
            precomputed: Precomputed::compute(version, None),
        }
    }

    /// The attribute's entry. Its arguments are plain values, not
    /// `Option`s: the compiler checks this call once per annotated script,
    /// and each generic constructor in it costs that check time. The
    /// version's numbers (`release`, meaningful when `plain_release`) and
    /// digest are [`Precomputed::compute`]'s, worked out by the attribute.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)] // called only by the attribute's expansion
    pub const fn __registered<T: MigrationScript>(
        script: &'static T,
        version: &'static str,
        name: &'static str,
        description: &'static str,
        described: bool,
        transaction: bool,
        file: &'static str,
        line: u32,
        release: [u64; 3],
        plain_release: bool,
        digest: u128,
    ) -> Script {
        Script {
            version,
            name,
            description: if described { Some(description) } else { None },
            transaction,
            file,
            line,
            body: Body::Code(CodeBody::of(script)),
            precomputed: Some(Precomputed::from_parts(
                if plain_release { Some(release) } else { None },
                digest,
            )),
        }
    }

    /// Describes an SQL migration listed by hand (`embed_sql!` registers
    /// folders without this). The checksum is computed here, as `embed_sql!`
    /// computes it at compile time.
    #[track_caller]
    pub fn sql(
        version: &'static str,
        name: &'static str,
        up: &'static str,
        down: Option<&'static str>,
    ) -> Script {
        let caller = std::panic::Location::caller();
        // Computed once per hand-listed script and kept for the program's
        // life, like the compile-time checksums of `embed_sql!`.
        let checksum: &'static str = Box::leak(sql_checksum(up).into_boxed_str());
        // The registry checks again, and refuses, a script whose SQL holds no
        // statement, or ends the transaction it would run in.
        let checked = [Some(up), down].into_iter().flatten().all(|sql| {
            sql_has_statement(sql)
                && crate::sql::transaction_control_in_every_dialect(sql).is_none()
                && crate::sql::client_command(sql).is_none()
        });
        Script {
            version,
            name,
            description: None,
            transaction: true,
            file: caller.file(),
            line: caller.line(),
            body: Body::Sql(SqlBody { up, down, checksum }),
            precomputed: checked
                .then(|| Precomputed::compute(version, Some(checksum)))
                .flatten(),
        }
    }

    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)] // called only by `embed_sql!`'s expansion
    pub const fn __sql(
        version: &'static str,
        name: &'static str,
        up: &'static str,
        down: Option<&'static str>,
        checksum: &'static str,
        transaction: bool,
        file: &'static str,
        line: u32,
        precomputed: Option<Precomputed>,
    ) -> Script {
        Script {
            version,
            name,
            description: None,
            transaction,
            file,
            line,
            body: Body::Sql(SqlBody { up, down, checksum }),
            precomputed,
        }
    }

    /// Sets the name shown in plans, status and history.
    pub fn with_name(mut self, name: &'static str) -> Script {
        self.name = name;
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
        self.name
    }

    /// The description, if any.
    pub fn description(&self) -> Option<&'static str> {
        self.description
    }

    /// Whether the script runs inside a transaction.
    pub fn transactional(&self) -> bool {
        self.transaction
    }

    /// Whether the script has a `down` (a code script that declares one, or
    /// an SQL folder with a `down.sql`).
    pub fn reversible(&self) -> bool {
        match self.body {
            Body::Code(code) => code.of_type.reversible,
            Body::Sql(sql) => sql.down.is_some(),
        }
    }

    /// Code or SQL.
    pub fn kind(&self) -> ScriptKind {
        match self.body {
            Body::Code(_) => ScriptKind::Code,
            Body::Sql(_) => ScriptKind::Sql,
        }
    }

    /// What was worked out from the version before start-up, if anything.
    #[doc(hidden)]
    pub fn precomputed(&self) -> Option<Precomputed> {
        self.precomputed
    }

    /// What the script runs.
    pub fn body(&self) -> Body {
        match self.body {
            // A byte-order mark would reach the server as part of the first
            // statement; the checksum ignores it too.
            Body::Sql(sql) => Body::Sql(SqlBody {
                up: strip_bom(sql.up),
                down: sql.down.map(strip_bom),
                checksum: sql.checksum,
            }),
            code => code,
        }
    }

    /// The checksum of an SQL script's `up.sql`; `None` for code.
    pub fn checksum(&self) -> Option<&'static str> {
        match self.body {
            Body::Code(_) => None,
            Body::Sql(sql) => Some(sql.checksum),
        }
    }

    /// Where the script is declared: `file:line`, or the folder of an
    /// embedded SQL migration.
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.file.to_owned()
        } else {
            format!("{}:{}", self.file, self.line)
        }
    }

    /// The full type name of the connection a code script is written for;
    /// `"any"` for SQL, which runs on every backend.
    pub fn connection_type_name(&self) -> &'static str {
        match self.body {
            Body::Code(code) => (code.of_type.connection_name)(),
            Body::Sql(_) => "any",
        }
    }

    /// Whether the script runs on connections of type `C` (SQL always does).
    pub fn accepts_connection<C: 'static>(&self) -> bool {
        match self.body {
            Body::Code(code) => code.of_type.connection == TypeId::of::<C>(),
            Body::Sql(_) => true,
        }
    }

    /// Whether two entries run the same thing (the same struct, or the same
    /// SQL), as when a registered script is also listed by hand.
    pub fn is_same_script(&self, other: &Script) -> bool {
        self.identity() == other.identity()
    }

    /// What [`is_same_script`](Self::is_same_script) compares, as a key a
    /// registry can hash.
    pub(crate) fn identity(&self) -> Identity {
        match self.body {
            // A unit struct is the same script wherever it is referenced; a
            // struct with data is the same script only as the same value.
            Body::Code(code) => Identity::Code(
                code.of_type.type_id,
                (!code.of_type.zero_sized).then_some(code.value.0 as usize),
            ),
            Body::Sql(sql) => Identity::Sql(sql),
        }
    }

    /// Runs a code script's `up` on `conn`. Fails without running anything
    /// when `C` is not the script's connection type. SQL is run by the
    /// executor, from [`body`](Self::body).
    pub fn run_up<C: 'static>(&self, conn: &mut C) -> Result<(), ScriptError> {
        match self.body {
            Body::Code(code) => code.run(Direction::Up, conn),
            Body::Sql(_) => Err(ScriptError::NotCode),
        }
    }

    /// Runs a code script's `down` on `conn`. Fails without running anything
    /// when `C` is not the script's connection type, and with
    /// [`Irreversible`] when the script's
    /// [`REVERSIBLE`](MigrationScript::REVERSIBLE) is `false`.
    pub fn run_down<C: 'static>(&self, conn: &mut C) -> Result<(), ScriptError> {
        match self.body {
            Body::Code(code) => code.run(Direction::Down, conn),
            Body::Sql(_) => Err(ScriptError::NotCode),
        }
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
            .field("kind", &self.kind())
            .field("connection", &self.connection_type_name())
            .field("location", &self.location())
            .finish()
    }
}

/// Whether `sql` holds a statement: anything besides whitespace, `--` line
/// comments and `/* */` block comments. An `up.sql` without one would be
/// recorded as applied while changing nothing, so it is refused.
///
/// ```
/// use migrate_core::sql_has_statement;
/// assert!(sql_has_statement("-- add a column\nALTER TABLE t ADD c INT;"));
/// assert!(!sql_has_statement("  -- TODO\n/* later */\n"));
/// ```
#[doc(hidden)] // the registry and `embed_sql!` use it; not for users
pub fn sql_has_statement(sql: &str) -> bool {
    let mut rest = strip_bom(sql);
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, next)| next);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, next)| next);
        } else {
            return !rest.is_empty();
        }
    }
}

/// The checksum of an SQL migration's `up.sql`: SHA-256, in hex, of its text
/// with CRLF turned into LF and a leading UTF-8 byte-order mark dropped, so
/// that an editor's line endings or BOM are not edits.
/// `embed_sql!` calls this same function at compile time.
///
/// ```
/// # mod migrate { pub mod registry { pub use migrate_core::sql_checksum; } }
/// use migrate::registry::sql_checksum;
/// assert_eq!(sql_checksum("SELECT 1;\r\nSELECT 2;\r\n"), sql_checksum("SELECT 1;\nSELECT 2;\n"));
/// assert_ne!(sql_checksum("SELECT 1;"), sql_checksum("SELECT 2;"));
/// ```
pub fn sql_checksum(sql: &str) -> String {
    use sha2::Digest;
    let normalized = strip_bom(sql).replace("\r\n", "\n");
    sha2::Sha256::digest(normalized.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `sql` without a leading UTF-8 byte-order mark, which editors on Windows
/// add and servers refuse as part of the first statement.
pub(crate) fn strip_bom(sql: &str) -> &str {
    sql.strip_prefix('\u{feff}').unwrap_or(sql)
}
