//! The `#[migration_script]` attribute of `migrate`. Use it through the
//! `migrate` crate, which re-exports it.

mod ast;
mod expand;
mod krate;
mod sql;
mod test;
mod valid;

use proc_macro::TokenStream;

/// Registers a unit struct as a migration script.
///
/// ```
/// # mod migrate {
/// #     pub use migrate_core::{BoxError, MigrationScript};
/// #     pub use migrate_macros::migration_script;
/// #     pub mod registry { pub use migrate_core::registered; }
/// # }
/// use migrate::{BoxError, MigrationScript, migration_script};
/// # /// Stands in for a connection such as `diesel::SqliteConnection`.
/// # pub struct Conn;
///
/// #[migration_script(version = "1.0.1", description = "add full name to users")]
/// pub struct AddUserFullName;
///
/// impl MigrationScript for AddUserFullName {
///     type Connection = Conn;
///     fn up(&self, conn: &mut Conn) -> Result<(), BoxError> {
///         Ok(())
///     }
/// }
///
/// let registry = migrate::registry::registered().unwrap();
/// assert_eq!(registry.iter().next().unwrap().script.description(), Some("add full name to users"));
/// ```
///
/// Keys:
/// - `version = "…"` (required): a strict semver version, unique in the crate
///   (build metadata ignored). Both are checked at compile time.
/// - `description = "…"`: recorded in the history.
/// - `name = "…"`: defaults to the struct's name.
/// - `transaction = false`: run outside a transaction (default `true`), for
///   work such as `CREATE INDEX CONCURRENTLY`.
/// - `crate = path`: where to find `migrate`, when it is reached through a
///   re-export.
///
/// The struct must implement `MigrationScript`.
#[proc_macro_attribute]
pub fn migration_script(args: TokenStream, item: TokenStream) -> TokenStream {
    let item2 = proc_macro2::TokenStream::from(item.clone());
    match syn::parse::<ast::Args>(args).and_then(|parsed| valid::validate(parsed, item)) {
        Ok(script) => expand::expand(&script),
        // Emit the user's item unchanged beside the errors, so that later uses
        // of the struct do not cascade into "cannot find type" errors.
        Err(err) => {
            let errors = err.into_compile_error();
            quote::quote!(#item2 #errors)
        }
    }
    .into()
}

/// Embeds the SQL migrations of a directory (default `migrations`, relative
/// to the crate's `Cargo.toml`) and registers them beside the code scripts.
///
/// Each folder is `<semver>_<name>/` with an `up.sql`, an optional
/// `down.sql`, and diesel's optional `metadata.toml`
/// (`run_in_transaction = false`). At compile time it rejects a folder with
/// an invalid version, a missing, empty or non-UTF-8 `up.sql`, two folders
/// with one version, and a version also used by a `#[migration_script]` in
/// the crate.
///
/// Edits to the SQL files rebuild the crate. A **new folder** does not, unless
/// the crate has a `build.rs` with
/// `println!("cargo:rerun-if-changed=migrations");`.
///
/// ```text
/// migrate::embed_sql!("migrations");
/// ```
#[proc_macro]
pub fn embed_sql(input: TokenStream) -> TokenStream {
    let args = syn::parse_macro_input!(input as sql::EmbedArgs);
    match sql::read(&args) {
        Ok((folders, span)) => expand::expand_sql(&folders, span, args.krate.as_ref()),
        Err(err) => err.into_compile_error(),
    }
    .into()
}

/// Runs a test on a database of its own, with every migration of this
/// build applied: the argument's type picks the backend
/// (`&mut SqliteConnection`, `&mut PgConnection`, `&mut MysqlConnection`).
///
/// ```text
/// #[migrate::test]
/// fn signup_creates_a_user(conn: &mut diesel::SqliteConnection) { ... }
///
/// #[migrate::test(version = "1.0.0", fixtures = ["tests/fixtures/users.sql"])]
/// fn full_name_is_filled_in(conn: &mut diesel::PgConnection) { ... }
/// ```
///
/// Options:
/// - `fixtures = ["a.sql", ...]`: SQL files (relative to the crate's
///   `Cargo.toml`, checked at compile time) applied after the migrations,
///   in order.
/// - `version = "…"`: migrate to this version instead of the last one.
/// - `migrator = path`: a `fn() -> Migrator`, for a custom table or
///   scripts listed by hand.
/// - `crate = path`: where to find `migrate`.
///
/// The function may return `()` or a `Result` whose error is `Debug`. The
/// migrated database is a template built once per migration set and
/// copied for each test; see `migrate::testing`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    let item2 = proc_macro2::TokenStream::from(item.clone());
    let parsed =
        syn::parse::<ast::Args>(args).and_then(|args| Ok((args, syn::parse::<syn::ItemFn>(item)?)));
    match parsed.and_then(|(args, item)| test::expand(args, item)) {
        Ok(tokens) => tokens,
        Err(err) => {
            let errors = err.into_compile_error();
            quote::quote!(#item2 #errors)
        }
    }
    .into()
}
