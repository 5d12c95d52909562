//! The SQL PostgreSQL's backend builds as text: the lock check, the state
//! trigger, and an SQL step sent as one message. It only builds strings
//! and reads errors; it never runs anything.

use crate::TableName;
use crate::backend::LOCK_NOT_HELD;
use crate::history::NewRow;

/// The advisory-lock key of a tracking table: a stable 64-bit FNV-1a hash of
/// `migrate:<table>`, so that different tables lock independently.
pub(super) fn lock_key(table: &TableName) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in b"migrate:".iter().chain(table.as_str().as_bytes()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// The statement that installs, unless it is there, a statement-level
/// trigger `migrate_forget_state` on the tracking table: after any
/// `INSERT`, `UPDATE`, `DELETE` or `TRUNCATE` of the history, by this tool
/// or by hand, it empties the state table, and the next start-up reads the
/// whole history. Its function is `<table>_stale`, in the tracking
/// table's schema, and names the state table with its schema: a session
/// with another `search_path` that edits the history empties the right
/// table. It also adds the state table's `history` column (the OID of the
/// history table the row describes) to a state table made before it.
pub(super) fn forget_state_trigger(table: &TableName) -> String {
    let (history, state) = (table.quoted(), table.state().quoted());
    let function = format!("{table}_stale");
    format!(
        "DO $migrate$
        DECLARE
            history text;
            schema text;
            state text;
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_attribute
                           WHERE attrelid = '{state}'::regclass AND attname = 'history' AND NOT attisdropped) THEN
                ALTER TABLE {state} ADD COLUMN history OID;
            END IF;
            IF EXISTS (SELECT FROM pg_trigger
                       WHERE tgrelid = '{history}'::regclass AND tgname = 'migrate_forget_state') THEN
                RETURN;
            END IF;
            SELECT format('%I.%I', n.nspname, c.relname), quote_ident(n.nspname) INTO history, schema
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.oid = '{history}'::regclass;
            SELECT format('%I.%I', n.nspname, c.relname) INTO state
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.oid = '{state}'::regclass;
            EXECUTE format('CREATE OR REPLACE FUNCTION %s.%I() RETURNS trigger LANGUAGE plpgsql
                            AS $body$ BEGIN DELETE FROM %s; RETURN NULL; END $body$',
                           schema, '{function}', state);
            EXECUTE format('CREATE TRIGGER migrate_forget_state
                            AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s
                            FOR EACH STATEMENT EXECUTE PROCEDURE %s.%I()',
                           history, schema, '{function}');
        END
        $migrate$"
    )
}

/// `text` as a string constant that PostgreSQL reads the same whatever
/// `standard_conforming_strings` says: an escape string constant, with
/// every backslash and quote doubled.
pub(super) fn text_literal(text: &str) -> String {
    format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// A statement that fails, with [`LOCK_NOT_HELD`] in its message, unless
/// the server session running it holds the migration lock `key`: the first
/// statement of every transaction that changes the database. Behind a
/// transaction pooler, a transaction may run on another server session than
/// the one that took the lock; it then stops here, before anything of it
/// ran. (`pg_try_advisory_xact_lock` succeeds at once for the session that
/// holds the lock, and for no other while it does; what it takes ends with
/// the transaction.)
pub(super) fn lock_check(key: i64) -> String {
    format!(
        "SELECT CAST(CASE WHEN pg_try_advisory_xact_lock({key}) THEN '1' ELSE '{LOCK_NOT_HELD}' END AS integer)"
    )
}

/// An SQL step as one simple-query message (see [`Backend::sql_step`]):
/// `BEGIN`, two settings that name the message, the step's SQL as written,
/// the session's state restored, its history row's `INSERT` and `COMMIT`.
///
/// - The SQL stands on lines of its own, ended by a `;` of ours, so that a
///   last statement without its `;`, or a `--` comment on its last line,
///   cannot take in what follows. (PostgreSQL parses the whole message
///   before it runs any of it: an unterminated string, comment or
///   dollar quote is a syntax error, and nothing runs.)
/// - A `COMMIT`, `ROLLBACK` or `END` in the SQL would end our transaction
///   and leave the rest of the message to run on its own, the history row
///   included. `migrate.step` is set for our transaction only (`SET
///   LOCAL`), and the row's `change` is the step's number only while it is
///   there: else it is `NULL`, which the column refuses ([`null_change`]),
///   and the row is not written. (A check of its own, a `DO` block, cost the server 4% of
///   a step.)
/// - `migrate.committed` is set for the session, which PostgreSQL keeps
///   only if our transaction commits: after a failure it holds this
///   message's `nonce` only if the SQL committed part of it
///   ([`Backend::sql_step`] reads it). Both settings stay in the session
///   afterwards, harmless: `migrate.` is this tool's prefix.
/// - `restore` (see [`Backend::session_restore`]) puts back the session's
///   `search_path` as it was before the step, so that a step's `SET
///   search_path` (or pg_dump's `set_config('search_path', '', false)`)
///   reaches neither the history row nor the next step.
/// - A message carries no bound parameters, so the row's values are
///   literals ([`literal_insert`]).
pub(super) fn one_message_step(
    table: &TableName,
    sql: &str,
    row: &NewRow<'_>,
    nonce: &str,
    restore: Option<&str>,
) -> String {
    let restore = restore.map_or_else(String::new, |r| format!("{r};\n"));
    let change = format!(
        "CASE WHEN current_setting('migrate.step', true) = '{nonce}' THEN {} END",
        row.change
    );
    format!(
        "BEGIN;\n{};\nSET LOCAL migrate.step = '{nonce}';\nSET migrate.committed = '{nonce}';\n{sql}\n;\n{restore}{};\nCOMMIT",
        lock_check(lock_key(table)),
        literal_insert(table, row, &change)
    )
}

/// The `INSERT` of a history row, its values as literals (a simple-query
/// message carries no bound parameters, see [`text_literal`]), and
/// `change` given as an expression. As every history row this tool writes
/// here, it is written only by the session that holds the migration lock
/// (see `insert_history_rows`). Its `duration_ms` is the time since the
/// server received the message (`statement_timestamp()`, the same for
/// every statement of one message), truncated to milliseconds as the
/// executor's own measure is.
pub(super) fn literal_insert(table: &TableName, row: &NewRow<'_>, change: &str) -> String {
    let text = |value: Option<&str>| value.map_or_else(|| "NULL".to_owned(), text_literal);
    format!(
        "INSERT INTO {history} (\"change\", version, name, description, kind, direction, executed, applied_at, duration_ms, checksum, dirty, down_sql, authorized_by) \
         VALUES ({change}, {version}, {name}, {description}, {kind}, {direction}, {executed}, now(), \
         CASE WHEN pg_try_advisory_xact_lock({key}) THEN greatest(0, floor(extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000))::bigint END, \
         {checksum}, {dirty}, {down_sql}, {authorized_by})",
        history = table.quoted(),
        key = lock_key(table),
        version = text_literal(&row.version),
        name = text_literal(row.name),
        description = text_literal(row.description),
        kind = text_literal(row.kind.as_str()),
        direction = text_literal(row.direction.as_str()),
        executed = row.executed,
        checksum = text(row.checksum),
        dirty = row.dirty,
        down_sql = text(row.down_sql.as_deref()),
        authorized_by = text(row.authorized_by),
    )
}

/// Whether a failed [`one_message_step`] ended at its history row's
/// `change` being `NULL`, which only `migrate.step`'s absence makes it: the
/// step's SQL had ended our transaction.
pub(super) fn null_change(failure: &diesel::result::Error, table: &TableName) -> bool {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};
    matches!(
        failure,
        DieselError::DatabaseError(DatabaseErrorKind::NotNullViolation, info)
            if info.table_name() == Some(table.as_str()) && info.column_name() == Some("change")
    )
}
