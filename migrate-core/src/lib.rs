//! The core of `migrate`: versions, the script trait, the registry, the pure
//! planner and application-version resolution. It has no database
//! dependency; `migrate-diesel` runs its plans.
//!
//! Most users depend on the `migrate` facade crate, which re-exports this one
//! together with the `#[migration_script]` attribute.
//!
//! ```
//! use migrate_core::{plan, AppliedScript, KnownScript, PlanOptions, ScriptKind, Target, Version};
//!
//! let v = |s: &str| Version::parse(s).unwrap();
//! let known = |s: &str| KnownScript {
//!     version: v(s),
//!     name: format!("script {s}").into(),
//!     kind: ScriptKind::Code,
//!     checksum: None,
//!     reversible: true,
//! };
//! let scripts = [known("1.0.0"), known("1.0.1"), known("1.0.10"), known("1.0.9")];
//! let applied = [AppliedScript::new(v("1.0.0"), "script 1.0.0")];
//!
//! let plan = plan(&Target::UpTo(v("1.0.10")), &applied, &scripts, PlanOptions::default()).unwrap();
//! let order: Vec<String> = plan.steps.iter().map(|s| s.version.to_string()).collect();
//! assert_eq!(order, ["1.0.1", "1.0.9", "1.0.10"]);
//! ```

// Errors are cold and carry the versions and names they report; boxing them
// would only make them harder to match on.
#![allow(clippy::result_large_err)]

// The attribute's expansion names `::migrate_core::…`; this makes that path
// work inside this crate's own tests and doctests too.
extern crate self as migrate_core;

mod app_version;
pub mod config;
mod fingerprint;
#[cfg(test)]
mod fuzz_tests;
mod plan;
mod registry;
mod script;
pub mod sql;
mod startup;
mod version;

pub use app_version::{
    APPLICATION_VERSION_VAR, AppVersion, AppVersionError, VersionSource, resolve_app_version,
    resolve_app_version_from,
};
pub use fingerprint::{Digest, Fingerprint, entry_digest, settled};
pub use plan::{
    Action, AppliedScript, Direction, KnownScript, Origin, Plan, PlanError, PlanOptions,
    RecordedDown, ScriptKind, ScriptRef, Step, Target, plan,
};
pub use registry::{Entry, Registry, RegistryError, RowSummary, Settled, SettledCheck, registered};
pub use script::{
    Body, BoxError, CodeBody, Irreversible, MigrationScript, Script, ScriptError, SqlBody,
    sql_checksum, sql_has_statement,
};
pub use startup::{
    AUTHORIZE_DOWNGRADE_VAR, DowngradeAuthorization, PolicyError, SettingSource, StartupPolicy,
    WHEN_AHEAD_VAR, WhenAhead, resolve_startup_policy, resolve_startup_policy_from,
};
pub use version::{
    FolderNameError, Version, VersionError, diesel_folder_version, parse_folder_name,
};

/// Items the `#[migration_script]` expansion uses. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::registry::MIGRATE_CORE_REGISTERED_SCRIPTS_V1 as SCRIPTS;
    pub use crate::script::{Precomputed, Script};
    pub use linkme;
}
