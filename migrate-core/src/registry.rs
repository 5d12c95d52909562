//! The registry: every `#[migration_script]` linked into the binary, plus
//! the scripts listed by hand, validated and sorted by version.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::hash::BuildHasher;
use std::ops::Deref;
use std::sync::Arc;

use hashbrown::hash_table::{Entry as Seen, HashTable};
use rustc_hash::FxBuildHasher;

use crate::fingerprint::{Digest, entry_digest};
use crate::plan::KnownScript;
use crate::{Fingerprint, Script, Version, VersionError};

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
    /// A hand-listed SQL script that runs in a transaction holds a
    /// statement that starts or ends one. (`embed_sql!` refuses these at
    /// compile time.)
    #[error(
        "SQL migration {version} `{name}` at {location}: its {direction} SQL, line {line}, has `{statement}`, which would end the transaction the migration runs in, so part of it could be kept without its history row; remove it (each migration runs in a transaction of its own), or run the migration outside a transaction (`with_transaction(false)`) to manage transactions yourself"
    )]
    TransactionControl {
        /// The version, as written.
        version: String,
        /// The name.
        name: String,
        /// Where it is declared.
        location: String,
        /// `up` or `down`.
        direction: &'static str,
        /// The line of the statement, from 1.
        line: usize,
        /// The statement's first words.
        statement: String,
    },
    /// An SQL script holds the mysql client's `DELIMITER` command, which
    /// no server runs. (`embed_sql!` refuses these at compile time.)
    #[error(
        "SQL migration {version} `{name}` at {location}: its {direction} SQL, line {line}, has `DELIMITER`, a command of the mysql client that no server runs; remove the `DELIMITER` lines and end each routine with `END;` (a routine's body keeps its `;` inside it here)"
    )]
    ClientCommand {
        /// The version, as written.
        version: String,
        /// The name.
        name: String,
        /// Where it is declared.
        location: String,
        /// `up` or `down`.
        direction: &'static str,
        /// The line of the command, from 1.
        line: usize,
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

/// One row of the history, as start-up reads it: what tells whether the
/// database is settled ([`Registry::settled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowSummary<'a> {
    /// The script's version, as written.
    pub version: &'a str,
    /// Whether the row applied the script or reverted it.
    pub direction: crate::Direction,
    /// Whether the step ran (`false`: only recorded).
    pub executed: bool,
    /// Whether the step is marked in progress.
    pub dirty: bool,
    /// The SQL checksum, for SQL migrations.
    pub checksum: Option<&'a str>,
}

/// A database settled at a target ([`Registry::settled`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// Its version: the highest applied.
    pub version: Option<Version>,
    /// Whether scripts this build does not have are applied too (below
    /// the target).
    pub unknown_applied: bool,
}

/// Start-up's check over a history's rows, one at a time
/// ([`Registry::settled_check`]).
#[derive(Debug)]
pub struct SettledCheck<'a> {
    registry: &'a Registry,
    /// The last row seen of each known script (by its place in `order`).
    known: Vec<Option<LastRow>>,
    /// The last row seen of each version this build does not have.
    others: BTreeMap<Version, LastRow>,
    /// Where the next row's script most likely is: histories mostly apply
    /// scripts in version order, and then a row is placed by comparing its
    /// text, without parsing it.
    next: usize,
    /// A row was in progress, or unreadable.
    unsettled: bool,
}

/// What decides of a version's last row.
#[derive(Debug, Clone, Copy)]
struct LastRow {
    direction: crate::Direction,
    executed: bool,
    /// Its version's text and its checksum are the known script's.
    as_known: bool,
}

impl SettledCheck<'_> {
    /// Takes the next row of the history (rows come in the order they were
    /// written).
    pub fn row(&mut self, row: RowSummary<'_>) {
        if self.unsettled {
            return;
        }
        if row.dirty {
            self.unsettled = true;
            return;
        }
        let registry = self.registry;
        let last = |script: Option<&Script>| LastRow {
            direction: row.direction,
            executed: row.executed,
            as_known: script
                .is_some_and(|s| s.version() == row.version && s.checksum() == row.checksum),
        };
        if let Some(slot) = registry.order.get(self.next)
            && let script = &registry.scripts[slot.index as usize]
            && script.version() == row.version
        {
            self.known[self.next] = Some(last(Some(script)));
            self.next += 1;
            return;
        }
        let Ok(version) = Version::parse(row.version) else {
            self.unsettled = true;
            return;
        };
        match registry.order.binary_search_by(|s| s.version.cmp(&version)) {
            Ok(at) => {
                let script = &registry.scripts[registry.order[at].index as usize];
                self.known[at] = Some(last(Some(script)));
                self.next = at + 1;
            }
            // Removed first: `insert` would keep the old key, and with it
            // the build metadata of an earlier row.
            Err(_) => {
                self.others.remove(&version);
                self.others.insert(version, last(None));
            }
        }
    }

    /// Whether the rows taken leave the database settled at `target` (see
    /// [`Registry::settled`]).
    pub fn finish(self, target: &Version) -> Option<Settled> {
        if self.unsettled {
            return None;
        }
        let end = self.registry.end_of(target);
        let mut highest: Option<&Version> = None;
        for (at, (slot, last)) in self.registry.order.iter().zip(&self.known).enumerate() {
            match last {
                Some(LastRow {
                    direction: crate::Direction::Up,
                    as_known: true,
                    ..
                }) if at < end => highest = Some(&slot.version),
                // Reverted, and pending again, or not applied.
                Some(LastRow {
                    direction: crate::Direction::Down,
                    executed: true,
                    ..
                })
                | None
                    if at >= end => {}
                _ => return None,
            }
        }
        for (version, last) in &self.others {
            match last.direction {
                crate::Direction::Up if version <= target => {
                    highest = highest.max(Some(version));
                }
                crate::Direction::Down if last.executed => {}
                _ => return None,
            }
        }
        Some(Settled {
            version: highest.cloned(),
            unknown_applied: self
                .others
                .values()
                .any(|last| last.direction == crate::Direction::Up),
        })
    }
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
    /// The scripts as given, not copied.
    scripts: Scripts,
    /// Their order by version, without the duplicates of a script.
    order: Vec<Slot>,
}

/// Where a registry's scripts are: the binary's registered ones, or a list
/// shared with whoever built it. Never a copy: a start-up builds a registry.
#[derive(Debug, Clone)]
enum Scripts {
    Registered(&'static [Script]),
    Shared(Arc<[Script]>),
}

impl Default for Scripts {
    fn default() -> Self {
        Scripts::Registered(&[])
    }
}

impl Deref for Scripts {
    type Target = [Script];

    fn deref(&self) -> &[Script] {
        match self {
            Scripts::Registered(scripts) => scripts,
            Scripts::Shared(scripts) => scripts,
        }
    }
}

/// A script's place in `scripts`, with what the registry derived from it.
#[derive(Debug, Clone)]
struct Slot {
    version: Version,
    digest: Digest,
    index: u32,
}

/// Sorts slots whose versions are all plain releases (no pre-release, each
/// number below 2^32) by one integer each: the three numbers and the
/// slot's place, packed into a `u128`. Every start-up sorts the registered
/// scripts, which come in link order, and comparing versions made that
/// sort most of building a registry. Leaves `order` as it was and returns
/// `false` when a version does not fit or two versions are equal; the
/// general sort handles those (and reports the duplicate).
fn sort_releases(order: &mut Vec<Slot>) -> bool {
    let keys: Option<Vec<u128>> = (0u32..)
        .zip(order.iter())
        .map(|(at, slot)| {
            let v = slot.version.as_semver();
            let [major, minor, patch] = [v.major, v.minor, v.patch].map(u32::try_from);
            match (v.pre.is_empty(), major, minor, patch) {
                (true, Ok(major), Ok(minor), Ok(patch)) => Some(
                    u128::from(major) << 96
                        | u128::from(minor) << 64
                        | u128::from(patch) << 32
                        | u128::from(at),
                ),
                _ => None,
            }
        })
        .collect();
    let Some(mut keys) = keys else {
        return false;
    };
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] >> 32 == w[1] >> 32) {
        return false;
    }
    let mut slots: Vec<Option<Slot>> = std::mem::take(order).into_iter().map(Some).collect();
    *order = keys
        .iter()
        .map(|&key| {
            slots[key as u32 as usize]
                .take()
                .expect("each slot is taken once")
        })
        .collect();
    true
}

/// Every script registered with `#[migration_script]` in this binary,
/// validated and sorted by version.
///
/// Scripts in a library crate are only linked when the binary uses that
/// crate: add `use my_migrations as _;` to the binary.
pub fn registered() -> Result<Registry, RegistryError> {
    Registry::build(Scripts::Registered(&MIGRATE_CORE_REGISTERED_SCRIPTS_V1[..]))
}

/// Refuses an SQL script whose `up` or `down` holds no statement, or,
/// when it runs in a transaction, starts or ends one.
fn refuse_sql(script: &Script, sql: crate::SqlBody) -> Result<(), RegistryError> {
    for (direction, text) in [("up", Some(sql.up)), ("down", sql.down)] {
        let Some(text) = text else { continue };
        if !crate::sql_has_statement(text) {
            return Err(RegistryError::NoStatement {
                version: script.version().to_owned(),
                name: script.name().to_owned(),
                location: script.location(),
                direction,
            });
        }
        if let Some(statement) = crate::sql::client_command(text) {
            return Err(RegistryError::ClientCommand {
                version: script.version().to_owned(),
                name: script.name().to_owned(),
                location: script.location(),
                direction,
                line: statement.line,
            });
        }
        if script.transactional()
            && let Some(statement) = crate::sql::transaction_control_in_every_dialect(text)
        {
            return Err(RegistryError::TransactionControl {
                version: script.version().to_owned(),
                name: script.name().to_owned(),
                location: script.location(),
                direction,
                line: statement.line,
                statement: statement.head(),
            });
        }
    }
    Ok(())
}

impl Registry {
    /// Builds a registry from scripts. The same script listed twice (for
    /// example registered and also listed by hand) is kept once.
    pub fn new(scripts: impl IntoIterator<Item = Script>) -> Result<Registry, RegistryError> {
        Registry::shared(scripts.into_iter().collect())
    }

    /// [`new`](Self::new) over scripts the caller keeps too, without
    /// copying them.
    pub fn shared(scripts: Arc<[Script]>) -> Result<Registry, RegistryError> {
        Registry::build(Scripts::Shared(scripts))
    }

    fn build(scripts: Scripts) -> Result<Registry, RegistryError> {
        let mut order: Vec<Slot> = Vec::with_capacity(scripts.len());
        // Each identity's place in `order`: listing N scripts stays O(N).
        // Identities hash as one word, and no one picks them to collide, so
        // a fast hasher is enough.
        let mut seen: HashTable<u32> = HashTable::with_capacity(scripts.len());
        let identity_at =
            |order: &[Slot], at: u32| scripts[order[at as usize].index as usize].identity();
        for (index, script) in scripts.iter().enumerate() {
            let index = u32::try_from(index).expect("fewer than 2^32 scripts");
            let parse = || {
                Version::parse(script.version()).map_err(|source| RegistryError::InvalidVersion {
                    name: script.name().to_owned(),
                    location: script.location(),
                    source,
                })
            };
            // What the attribute, `embed_sql!` or the script's constructor
            // worked out and checked already is not done again.
            let (version, digest) = match script.precomputed() {
                Some(p) => match p.release() {
                    Some(release) => (Version::release(release), p.digest()),
                    None => (parse()?, p.digest()),
                },
                None => {
                    let version = parse()?;
                    if let crate::Body::Sql(sql) = script.body() {
                        refuse_sql(script, sql)?;
                    }
                    let digest = entry_digest(version.as_semver(), script.checksum());
                    (version, digest)
                }
            };
            let identity = script.identity();
            let hash = FxBuildHasher.hash_one(identity);
            let same = |&at: &u32| identity_at(&order, at) == identity;
            let rehash = |&at: &u32| FxBuildHasher.hash_one(identity_at(&order, at));
            match seen.entry(hash, same, rehash) {
                Seen::Occupied(first) => {
                    let first = &order[*first.get() as usize];
                    if first.version == version {
                        continue;
                    }
                    return Err(RegistryError::SameScriptTwice {
                        name: script.name().to_owned(),
                        first: first.version.clone(),
                        first_location: scripts[first.index as usize].location(),
                        second: version,
                        second_location: script.location(),
                    });
                }
                Seen::Vacant(slot) => {
                    slot.insert(order.len() as u32);
                    order.push(Slot {
                        version,
                        digest,
                        index,
                    });
                }
            }
        }
        // Link order is arbitrary; sort by precedence, ties by location so the
        // duplicate error is stable. Input that comes strictly ascending (as
        // a list written in order does) is sorted and free of duplicates.
        let at = |slot: &Slot| &scripts[slot.index as usize];
        if !order.is_sorted_by(|a, b| a.version < b.version) && !sort_releases(&mut order) {
            order.sort_unstable_by(|a, b| {
                (a.version.cmp(&b.version)).then_with(|| at(a).location().cmp(&at(b).location()))
            });
            if let Some(pair) = order.windows(2).find(|w| w[0].version == w[1].version) {
                let (first, second) = (at(&pair[0]), at(&pair[1]));
                return Err(RegistryError::DuplicateVersion {
                    version: pair[0].version.clone(),
                    first: first.name().to_owned(),
                    first_location: first.location(),
                    second: second.name().to_owned(),
                    second_location: second.location(),
                });
            }
        }
        Ok(Registry { scripts, order })
    }

    /// Adds scripts listed by hand; a script already present is kept once.
    pub fn with(self, extra: impl IntoIterator<Item = Script>) -> Result<Registry, RegistryError> {
        Registry::new(self.scripts.iter().copied().chain(extra))
    }

    /// The scripts, in ascending version order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Entry<'_>> {
        self.order.iter().map(|slot| self.entry(slot))
    }

    /// The script at `at` in precedence order (as [`known`](Self::known)
    /// lists it, and as a plan's steps index it).
    pub fn script(&self, at: usize) -> &Script {
        &self.scripts[self.order[at].index as usize]
    }

    fn entry<'a>(&'a self, slot: &'a Slot) -> Entry<'a> {
        Entry {
            version: &slot.version,
            script: &self.scripts[slot.index as usize],
        }
    }

    /// The scripts at or below `version` (by precedence), in ascending
    /// order: found by binary search, not by comparing every version.
    pub fn up_to(
        &self,
        version: &Version,
    ) -> impl DoubleEndedIterator<Item = Entry<'_>> + ExactSizeIterator {
        self.order[..self.end_of(version)]
            .iter()
            .map(|slot| self.entry(slot))
    }

    /// The scripts above `version` (by precedence), in ascending order.
    pub fn above(&self, version: &Version) -> impl DoubleEndedIterator<Item = Entry<'_>> {
        self.order[self.end_of(version)..]
            .iter()
            .map(|slot| self.entry(slot))
    }

    /// The index past the last script at or below `version`.
    fn end_of(&self, version: &Version) -> usize {
        self.order.partition_point(|s| s.version <= *version)
    }

    /// What a database settled at `target` records (see
    /// [`settled`](crate::settled)): the fingerprint of the scripts at or
    /// below `target`, combined from the digests computed with the
    /// registry, and the highest of their versions.
    pub fn settled_at(&self, target: &Version) -> (Fingerprint, Option<&Version>) {
        let up_to = &self.order[..self.end_of(target)];
        let fingerprint = Fingerprint::of_digests(up_to.iter().map(|s| (&s.version, s.digest)));
        (fingerprint, up_to.last().map(|s| &s.version))
    }

    /// Whether a history leaves the database *settled* at `target`, read
    /// from its rows (in the order they were written) in one pass, without
    /// planning: start-up's check. [`settled_check`](Self::settled_check)
    /// takes the rows one at a time.
    ///
    /// Settled means: nothing is marked in progress; every script of this
    /// build at or below `target` is applied, under the version it is
    /// written with here and, for SQL, with its checksum; and nothing is
    /// applied above `target`. (Scripts this build does not have may be
    /// applied at or below `target`.) The last row of each version decides,
    /// as it does for the planner. Then planning towards
    /// [`Target::UpTo`](crate::Target::UpTo)`(target)` is empty, refuses
    /// nothing and leaves nothing ahead: a property test proves it against
    /// [`plan`](crate::plan). `None` for anything else (work to do, a
    /// changed script, a database ahead, a row in progress): plan.
    pub fn settled<'r>(
        &self,
        rows: impl IntoIterator<Item = RowSummary<'r>>,
        target: &Version,
    ) -> Option<Settled> {
        let mut check = self.settled_check();
        for row in rows {
            check.row(row);
        }
        check.finish(target)
    }

    /// [`settled`](Self::settled), a row at a time: nothing of a row is
    /// kept but what decides, so rows may be read and dropped one by one.
    pub fn settled_check(&self) -> SettledCheck<'_> {
        SettledCheck {
            registry: self,
            known: vec![None; self.order.len()],
            others: BTreeMap::new(),
            next: 0,
            unsettled: false,
        }
    }

    /// The number of scripts.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there are no scripts.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The script with this version (build metadata ignored).
    pub fn get(&self, version: &Version) -> Option<&Script> {
        self.order
            .binary_search_by(|s| s.version.cmp(version))
            .ok()
            .map(|i| &self.scripts[self.order[i].index as usize])
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
                name: Cow::Borrowed(e.script.name()),
                kind: e.script.kind(),
                checksum: e.script.checksum().map(Cow::Borrowed),
                reversible: e.script.reversible(),
            })
            .collect()
    }
}

/// [`Registry::script`]: `registry[at]`.
impl std::ops::Index<usize> for Registry {
    type Output = Script;

    fn index(&self, at: usize) -> &Script {
        self.script(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        /// Both sorts: releases alone take the numbers-only sort, and any
        /// pre-release or number of 2^32 or more the general one.
        #[test]
        fn scripts_in_any_order_come_out_in_precedence_order_or_a_duplicate_is_named(
            versions in prop::collection::vec(
                (
                    0u64..3,
                    prop_oneof![20 => 0u64..3, 1 => Just(u64::from(u32::MAX)), 1 => Just(1 << 32)],
                    0u64..100,
                    prop::option::weighted(0.05, "(rc|a)\\.[0-9]"),
                    prop::option::of("b[0-9]"),
                ),
                0..25,
            ),
        ) {
            let versions: Vec<String> = versions
                .into_iter()
                .map(|(major, minor, patch, pre, build)| {
                    let pre = pre.map(|p| format!("-{p}")).unwrap_or_default();
                    let build = build.map(|b| format!("+{b}")).unwrap_or_default();
                    format!("{major}.{minor}.{patch}{pre}{build}")
                })
                .collect();
            let scripts = versions.iter().enumerate().map(|(i, v)| {
                let (name, sql) = (leak(format!("s{i}")), leak(format!("SELECT {i};")));
                Script::sql(leak(v.clone()), name, sql, None)
            });
            let mut expected: Vec<semver::Version> =
                versions.iter().map(|v| semver::Version::parse(v).unwrap()).collect();
            expected.sort_by(|a, b| a.cmp_precedence(b));
            let duplicate = expected.windows(2).find(|w| w[0].cmp_precedence(&w[1]).is_eq());
            match (Registry::new(scripts), duplicate) {
                (Ok(registry), None) => {
                    let got: Vec<&semver::Version> =
                        registry.iter().map(|e| e.version.as_semver()).collect();
                    prop_assert_eq!(got, expected.iter().collect::<Vec<_>>());
                }
                (Err(RegistryError::DuplicateVersion { version, .. }), Some(pair)) => {
                    let same = version.as_semver().cmp_precedence(&pair[0]).is_eq();
                    prop_assert!(same, "{version} against {}", pair[0]);
                }
                (other, duplicate) => prop_assert!(false, "{other:?} against {duplicate:?}"),
            }
        }
    }

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

    struct Seed;

    impl crate::MigrationScript for Seed {
        type Connection = ();
        fn up(&self, _: &mut ()) -> Result<(), crate::BoxError> {
            Ok(())
        }
    }

    #[test]
    fn the_settled_fingerprint_is_that_of_the_settled_set_whether_digests_were_precomputed_or_not()
    {
        let registry = Registry::new([
            Script::sql("1.0.0-rc.1", "pre", "SELECT 1;", None),
            Script::new("1.0.0+b", &Seed),
            Script::sql("1.0.1", "plain", "SELECT 2;", None),
            // As an expansion without a precomputed part: digested here.
            Script::__sql("1.9.0", "late", "SELECT 3;", None, "c3", true, "m", 0, None),
        ])
        .unwrap();
        assert!(
            registry
                .iter()
                .take(3)
                .all(|e| e.script.precomputed().is_some())
        );
        for target in ["0.1.0", "1.0.0", "1.0.1", "1.9.0", "2.0.0"] {
            let target = Version::parse(target).unwrap();
            let settled = crate::settled(&target, &registry.known());
            let (fingerprint, highest) = registry.settled_at(&target);
            assert_eq!(fingerprint, Fingerprint::of(&settled), "at {target}");
            assert_eq!(highest, settled.last().map(|a| &a.version), "at {target}");
        }
    }

    #[test]
    fn a_history_that_applied_exactly_the_scripts_up_to_the_target_is_settled_and_any_other_is_not()
    {
        use crate::Direction::{Down, Up};
        let registry = Registry::new([
            Script::sql("1.0.0-rc.1", "pre", "SELECT 1;", None),
            Script::new("1.0.0+b", &Seed),
            Script::sql("1.0.1", "plain", "SELECT 2;", None),
            Script::sql("1.9.0", "late", "SELECT 3;", None),
        ])
        .unwrap();
        let checksum = |v: &str| {
            registry
                .iter()
                .find(|e| e.script.version() == v)
                .and_then(|e| e.script.checksum())
        };
        let row = |version: &'static str, direction| RowSummary {
            version,
            direction,
            executed: true,
            dirty: false,
            checksum: checksum(version),
        };
        let target = Version::parse("1.0.1").unwrap();
        let settled = |rows: &[RowSummary<'_>]| {
            registry
                .settled(rows.iter().copied(), &target)
                .map(|s| s.version.map(|v| v.to_string()))
        };
        let applied = [row("1.0.0-rc.1", Up), row("1.0.0+b", Up), row("1.0.1", Up)];
        assert_eq!(settled(&applied), Some(Some("1.0.1".to_owned())));
        // In any order, with reverts and re-applies: the last row decides.
        let cycled = [
            row("1.0.1", Up),
            row("1.0.0-rc.1", Up),
            row("1.0.1", Down),
            row("1.0.0+b", Up),
            row("1.0.1", Up),
        ];
        assert_eq!(settled(&cycled), Some(Some("1.0.1".to_owned())));
        // A script this build does not have, applied below the target.
        let with_old = [row("0.9.0", Up), applied[0], applied[1], applied[2]];
        assert_eq!(settled(&with_old), Some(Some("1.0.1".to_owned())));
        // Below 1.0.0-rc.1 nothing is known: an empty history is settled.
        assert_eq!(
            registry.settled([], &Version::parse("0.1.0").unwrap()),
            Some(Settled {
                version: None,
                unknown_applied: false
            })
        );
        let not_settled: [&[RowSummary<'_>]; 8] = [
            // Pending.
            &applied[..2],
            &[applied[0], applied[1], applied[2], row("1.0.1", Down)],
            // Ahead: known, and not known.
            &[applied[0], applied[1], applied[2], row("1.9.0", Up)],
            &[applied[0], applied[1], applied[2], row("1.5.0", Up)],
            // Build metadata differs.
            &[applied[0], row("1.0.0", Up), applied[2]],
            // Changed SQL.
            &[
                applied[0],
                applied[1],
                RowSummary {
                    checksum: Some("other"),
                    ..applied[2]
                },
            ],
            // In progress.
            &[
                applied[0],
                applied[1],
                RowSummary {
                    dirty: true,
                    ..applied[2]
                },
            ],
            // Reverted without running: its changes are there.
            &[
                applied[0],
                applied[1],
                applied[2],
                RowSummary {
                    executed: false,
                    ..row("0.9.0", Down)
                },
            ],
        ];
        for rows in not_settled {
            assert_eq!(settled(rows), None, "{rows:?}");
        }
    }
}
