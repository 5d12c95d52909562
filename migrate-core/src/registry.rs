//! The registry: every `#[migration_script]` linked into the binary, plus
//! the scripts listed by hand, validated and sorted by version.

use std::collections::hash_map::Entry as Slot;

use rustc_hash::FxHashMap;

use crate::plan::KnownScript;
use crate::script::Identity;
use crate::{Script, Version, VersionError};

/// The distributed slice the attribute registers into. Its name is long and
/// specific because linkme section names are global across a binary.
#[linkme::distributed_slice]
#[doc(hidden)]
pub static MIGRATE_CORE_REGISTERED_SCRIPTS_V1: [Script];

/// Why the registry could not be built. Reported before anything touches a
/// database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// A hand-listed script has an invalid version. (The attribute rejects
    /// these at compile time.)
    #[error("script `{name}` at {location} has an invalid version: {source}")]
    InvalidVersion {
        /// The script's name.
        name: String,
        /// Where it is declared.
        location: String,
        /// The parse error.
        source: VersionError,
    },
    /// A hand-listed SQL script's `up` (or `down`) holds no statement.
    /// (`embed_sql!` rejects these at compile time.)
    #[error(
        "SQL migration {version} `{name}` at {location}: its {direction} SQL has no statement (only whitespace or comments); write it, or {}",
        if *direction == "down" { "pass no down to make the migration irreversible" } else { "remove the migration" }
    )]
    NoStatement {
        /// The version, as written.
        version: String,
        /// The name.
        name: String,
        /// Where it is declared.
        location: String,
        /// `up` or `down`.
        direction: &'static str,
    },
    /// Two different scripts share a version, typically from two crates
    /// linked into one binary (within one crate this is a compile error).
    #[error(
        "two scripts have version {version}: `{first}` at {first_location} and `{second}` at {second_location}; give one of them another version"
    )]
    DuplicateVersion {
        /// The shared version.
        version: Version,
        /// The first script's name.
        first: String,
        /// Where the first is declared.
        first_location: String,
        /// The second script's name.
        second: String,
        /// Where the second is declared.
        second_location: String,
    },
    /// One script was given two versions (registered under one, listed by
    /// hand under another); it would run twice.
    #[error(
        "script `{name}` is listed with two versions, {first} at {first_location} and {second} at {second_location}; a script has one version"
    )]
    SameScriptTwice {
        /// The script's name.
        name: String,
        /// The first version.
        first: Version,
        /// Where the first is declared.
        first_location: String,
        /// The second version.
        second: Version,
        /// Where the second is declared.
        second_location: String,
    },
    /// Scripts were written for another connection type than the one the
    /// executor runs on.
    #[error(
        "{} written for another backend than `{connection}`: {}; run them on the backend they were written for",
        if scripts.len() == 1 { "a script is" } else { "scripts are" },
        scripts.join(", ")
    )]
    WrongConnection {
        /// The connection type the executor uses.
        connection: &'static str,
        /// Each script, as ``1.0.1 `name` (expects `Type`) at file:line``.
        scripts: Vec<String>,
    },
}

/// A validated script with its parsed version.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The parsed version.
    pub version: &'a Version,
    /// The script.
    pub script: &'a Script,
}

/// Validated code scripts, sorted by version.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    scripts: Vec<(Version, Script)>,
}

/// Every script registered with `#[migration_script]` in this binary,
/// validated and sorted by version.
///
/// Scripts in a library crate are only linked when the binary uses that
/// crate: add `use my_migrations as _;` to the binary.
pub fn registered() -> Result<Registry, RegistryError> {
    Registry::new(MIGRATE_CORE_REGISTERED_SCRIPTS_V1.iter().copied())
}

impl Registry {
    /// Builds a registry from scripts. The same script listed twice (for
    /// example registered and also listed by hand) is kept once.
    pub fn new(scripts: impl IntoIterator<Item = Script>) -> Result<Registry, RegistryError> {
        let scripts = scripts.into_iter();
        let mut parsed: Vec<(Version, Script)> = Vec::with_capacity(scripts.size_hint().0);
        // Each identity's index in `parsed`: listing N scripts stays O(N).
        // Identities hash as one word, and no one picks them to collide, so
        // a fast hasher is enough.
        let mut seen: FxHashMap<Identity, usize> =
            FxHashMap::with_capacity_and_hasher(scripts.size_hint().0, Default::default());
        for script in scripts {
            let version = Version::parse(script.version()).map_err(|source| {
                RegistryError::InvalidVersion {
                    name: script.name().to_owned(),
                    location: script.location(),
                    source,
                }
            })?;
            if let crate::Body::Sql(sql) = script.body() {
                let empty = [("up", Some(sql.up)), ("down", sql.down)]
                    .into_iter()
                    .find(|(_, text)| text.is_some_and(|t| !crate::sql_has_statement(t)));
                if let Some((direction, _)) = empty {
                    return Err(RegistryError::NoStatement {
                        version: script.version().to_owned(),
                        name: script.name().to_owned(),
                        location: script.location(),
                        direction,
                    });
                }
            }
            match seen.entry(script.identity()) {
                Slot::Occupied(first) => {
                    let (v, first) = &parsed[*first.get()];
                    if *v == version {
                        continue;
                    }
                    return Err(RegistryError::SameScriptTwice {
                        name: script.name().to_owned(),
                        first: v.clone(),
                        first_location: first.location(),
                        second: version,
                        second_location: script.location(),
                    });
                }
                Slot::Vacant(slot) => {
                    slot.insert(parsed.len());
                    parsed.push((version, script));
                }
            }
        }
        // Link order is arbitrary; sort by precedence, ties by location so the
        // duplicate error is stable. Input that comes strictly ascending (as
        // a list written in order does) is sorted and free of duplicates.
        if !parsed.is_sorted_by(|(a, _), (b, _)| a < b) {
            parsed.sort_by(|(a, s), (b, t)| a.cmp(b).then_with(|| s.location().cmp(&t.location())));
            if let Some(pair) = parsed.windows(2).find(|w| w[0].0 == w[1].0) {
                let ((version, first), (_, second)) = (&pair[0], &pair[1]);
                return Err(RegistryError::DuplicateVersion {
                    version: version.clone(),
                    first: first.name().to_owned(),
                    first_location: first.location(),
                    second: second.name().to_owned(),
                    second_location: second.location(),
                });
            }
        }
        Ok(Registry { scripts: parsed })
    }

    /// Adds scripts listed by hand; a script already present is kept once.
    pub fn with(self, extra: impl IntoIterator<Item = Script>) -> Result<Registry, RegistryError> {
        Registry::new(self.scripts.into_iter().map(|(_, s)| s).chain(extra))
    }

    /// The scripts, in ascending version order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Entry<'_>> {
        self.scripts
            .iter()
            .map(|(version, script)| Entry { version, script })
    }

    /// The scripts at or below `version` (by precedence), in ascending
    /// order: found by binary search, not by comparing every version.
    pub fn up_to(
        &self,
        version: &Version,
    ) -> impl DoubleEndedIterator<Item = Entry<'_>> + ExactSizeIterator {
        let end = self.scripts.partition_point(|(v, _)| v <= version);
        self.scripts[..end]
            .iter()
            .map(|(version, script)| Entry { version, script })
    }

    /// The number of scripts.
    pub fn len(&self) -> usize {
        self.scripts.len()
    }

    /// Whether there are no scripts.
    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }

    /// The script with this version (build metadata ignored).
    pub fn get(&self, version: &Version) -> Option<&Script> {
        self.scripts
            .binary_search_by(|(v, _)| v.cmp(version))
            .ok()
            .map(|i| &self.scripts[i].1)
    }

    /// Checks that every script runs on connections of type `C`, naming
    /// every one that does not. Executors call this before running anything.
    pub fn check_connection<C: 'static>(&self) -> Result<(), RegistryError> {
        let scripts: Vec<String> = self
            .iter()
            .filter(|e| !e.script.accepts_connection::<C>())
            .map(|e| {
                format!(
                    "{} `{}` (expects `{}`) at {}",
                    e.version,
                    e.script.name(),
                    e.script.connection_type_name(),
                    e.script.location()
                )
            })
            .collect();
        if scripts.is_empty() {
            Ok(())
        } else {
            Err(RegistryError::WrongConnection {
                connection: std::any::type_name::<C>(),
                scripts,
            })
        }
    }

    /// The scripts as the planner sees them, in the same order as
    /// [`iter`](Self::iter).
    pub fn known(&self) -> Vec<KnownScript> {
        self.iter()
            .map(|e| KnownScript {
                version: e.version.clone(),
                name: e.script.name().to_owned(),
                kind: e.script.kind(),
                checksum: e.script.checksum().map(str::to_owned),
                reversible: e.script.reversible(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_to_keeps_exactly_the_scripts_at_or_below_the_version() {
        let registry = Registry::new(
            [
                ("1.0.0-rc.1", "SELECT 1;"),
                ("1.0.0+b", "SELECT 2;"),
                ("1.0.1", "SELECT 3;"),
                ("1.10.0", "SELECT 4;"),
                ("1.9.0", "SELECT 5;"),
            ]
            .map(|(v, sql)| Script::sql(v, "s", sql, None)),
        )
        .unwrap();
        let up_to = |v: &str| -> Vec<String> {
            let version = Version::parse(v).unwrap();
            let fast: Vec<String> = registry
                .up_to(&version)
                .map(|e| e.version.to_string())
                .collect();
            let slow: Vec<String> = (registry.iter().filter(|e| *e.version <= version))
                .map(|e| e.version.to_string())
                .collect();
            assert_eq!(fast, slow, "up to {v}");
            fast
        };
        assert_eq!(up_to("0.1.0"), Vec::<String>::new());
        assert_eq!(up_to("1.0.0"), ["1.0.0-rc.1", "1.0.0+b"]);
        assert_eq!(up_to("1.9.5"), ["1.0.0-rc.1", "1.0.0+b", "1.0.1", "1.9.0"]);
        assert_eq!(up_to("2.0.0").len(), 5);
    }
}
