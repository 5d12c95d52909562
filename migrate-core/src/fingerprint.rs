//! The settled state and its fingerprint: what lets the start-up check read
//! one row instead of the whole history.
//!
//! A database is *settled* at version `T` when its applied scripts are
//! exactly the known scripts at or below `T`, each with its current
//! checksum. Planning towards [`Target::Version`]`(T)` from there is empty
//! (the tests below prove it), so an executor that finds the fingerprint of
//! [`settled`]`(T, known)` recorded for the database's applied set knows
//! the plan without reading the history. Any other fingerprint, or none,
//! means: read the history and plan as usual.
//!
//! [`Target::Version`]: crate::Target::Version

use std::fmt;

use crate::{AppliedScript, KnownScript, Version};

/// The applied set a database holds once it is settled at `target`: every
/// known script at or below `target` (by semver precedence, as the planner
/// compares), with its current checksum. Executors compute its fingerprint
/// straight from their registry; this is the statement the tests prove.
pub fn settled(target: &Version, known: &[KnownScript]) -> Vec<AppliedScript> {
    known
        .iter()
        .filter(|k| k.version <= *target)
        .map(|k| AppliedScript {
            checksum: k.checksum.as_deref().map(str::to_owned),
            ..AppliedScript::new(k.version.clone(), k.name.to_string())
        })
        .collect()
}

/// A 128-bit digest (XXH3-128) of an applied set: of each script's
/// [`entry_digest`] (its version as written, build metadata included, and
/// its checksum), in version order.
/// Names are left out: the planner does not compare them. Equal
/// fingerprints mean equal sets, barring a 1-in-2^128 accident.
///
/// It is a cache key, not a seal: whoever can write the state row can write
/// the history too. So it is a fast non-cryptographic hash (every start-up
/// computes it over the whole registry) and SQL checksums stay SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(String);

/// One script's share of a [`Fingerprint`]: XXH3-128 of its version and
/// checksum, little-endian.
pub type Digest = [u8; 16];

/// The digest of one script with `version` (as written, build metadata
/// included) and `checksum` (`None` for code). `#[migration_script]` and
/// `embed_sql!` call this at compile time, so that a start-up only combines
/// digests; a registry computes it for scripts that come without one.
pub fn entry_digest(version: &semver::Version, checksum: Option<&str>) -> Digest {
    digest_into(&mut Vec::new(), version, checksum)
}

/// [`entry_digest`], encoding into `buffer` (cleared first), so that a
/// history of N rows is digested without N allocations.
fn digest_into(buffer: &mut Vec<u8>, v: &semver::Version, checksum: Option<&str>) -> Digest {
    // Each text field is length-prefixed, so no text can pass for another
    // field.
    fn field(buffer: &mut Vec<u8>, bytes: &[u8]) {
        buffer.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        buffer.extend_from_slice(bytes);
    }
    buffer.clear();
    for n in [v.major, v.minor, v.patch] {
        buffer.extend_from_slice(&n.to_le_bytes());
    }
    // Code or SQL.
    buffer.push(u8::from(checksum.is_some()));
    field(buffer, v.pre.as_str().as_bytes());
    field(buffer, v.build.as_str().as_bytes());
    field(buffer, checksum.unwrap_or_default().as_bytes());
    xxhash_rust::xxh3::xxh3_128(buffer).to_le_bytes()
}

impl Fingerprint {
    /// The fingerprint of `applied`, in whatever order it comes. Scripts
    /// reverted without running are not applied, and do not count.
    pub fn of(applied: &[AppliedScript]) -> Fingerprint {
        let mut buffer = Vec::new();
        let applied = applied.iter().filter(|a| !a.reverted_without_running);
        Fingerprint::of_digests(applied.map(|a| {
            let digest = digest_into(&mut buffer, a.version.as_semver(), a.checksum.as_deref());
            (&a.version, digest)
        }))
    }

    /// The fingerprint of a set given as each script's version and
    /// [`entry_digest`], in whatever order they come: what a registry
    /// computes from digests made when its scripts were compiled.
    pub fn of_digests<'a>(entries: impl IntoIterator<Item = (&'a Version, Digest)>) -> Fingerprint {
        // Precedence first; build metadata breaks ties between versions
        // that differ only in it. Registries and histories come sorted.
        let order = |a: &(&Version, Digest), b: &(&Version, Digest)| {
            a.0.cmp(b.0)
                .then_with(|| a.0.as_semver().build.cmp(&b.0.as_semver().build))
        };
        let mut entries: Vec<(&Version, Digest)> = entries.into_iter().collect();
        if !entries.is_sorted_by(|a, b| order(a, b).is_le()) {
            entries.sort_by(order);
        }
        // Digests have a fixed length: one buffer of them, hashed at once.
        let buffer: Vec<u8> = entries.iter().flat_map(|(_, digest)| *digest).collect();
        let hash = xxhash_rust::xxh3::xxh3_128(&buffer);
        Fingerprint(format!("{hash:032x}"))
    }

    /// The fingerprint as stored: 32 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::{PlanOptions, ScriptKind, Target, plan};

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn known(s: &str, checksum: Option<&str>) -> KnownScript {
        KnownScript {
            version: v(s),
            name: format!("s{s}").into(),
            kind: if checksum.is_some() {
                ScriptKind::Sql
            } else {
                ScriptKind::Code
            },
            checksum: checksum.map(|c| c.to_owned().into()),
            reversible: true,
        }
    }

    fn applied(s: &str, checksum: Option<&str>) -> AppliedScript {
        AppliedScript {
            checksum: checksum.map(str::to_owned),
            ..AppliedScript::new(v(s), format!("s{s}"))
        }
    }

    #[test]
    fn settled_holds_the_known_scripts_up_to_the_target_by_precedence() {
        let scripts = [
            known("1.0.0", None),
            known("1.0.9", Some("a")),
            known("1.0.10", None),
            known("1.1.0-rc.1", None),
            known("1.1.0", None),
        ];
        let versions: Vec<String> = settled(&v("1.1.0-rc.2"), &scripts)
            .iter()
            .map(|a| a.version.to_string())
            .collect();
        assert_eq!(versions, ["1.0.0", "1.0.9", "1.0.10", "1.1.0-rc.1"]);
        assert_eq!(
            settled(&v("1.0.9"), &scripts)[1].checksum.as_deref(),
            Some("a")
        );
    }

    #[test]
    fn the_fingerprint_ignores_order_and_names() {
        let a = [applied("1.0.0", None), applied("1.0.1", Some("c"))];
        let mut b = [applied("1.0.1", Some("c")), applied("1.0.0", None)];
        b[0].name = "renamed".into();
        assert_eq!(Fingerprint::of(&a), Fingerprint::of(&b));
        assert_eq!(Fingerprint::of(&a).as_str().len(), 32);
    }

    #[test]
    fn any_difference_in_versions_or_checksums_changes_the_fingerprint() {
        let base = [applied("1.0.0", None), applied("1.0.1", Some("c"))];
        let variants: [&[AppliedScript]; 7] = [
            &[applied("1.0.0", None)],
            &[applied("1.0.0", None), applied("1.0.1", Some("d"))],
            &[applied("1.0.0", None), applied("1.0.1", None)],
            &[applied("1.0.0", Some("c")), applied("1.0.1", Some("c"))],
            &[applied("1.0.0", None), applied("1.0.1+build.2", Some("c"))],
            &[applied("1.0.0", None), applied("1.0.2", Some("c"))],
            &[
                applied("1.0.0", None),
                applied("1.0.1", Some("c")),
                applied("1.0.2", None),
            ],
        ];
        let fingerprint = Fingerprint::of(&base);
        for variant in variants {
            assert_ne!(Fingerprint::of(variant), fingerprint, "{variant:?}");
        }
        assert_ne!(Fingerprint::of(&[]), fingerprint);
    }

    #[test]
    fn a_checksum_cannot_pass_for_a_code_script_or_the_next_line() {
        // Fields are length-prefixed: a checksum holding what would follow
        // it does not hash like the longer set.
        let a = [applied("1.0.0", Some("x\u{4}\0\0\0\0\0\0\0code"))];
        let b = [applied("1.0.0", Some("x")), applied("1.0.1", None)];
        assert_ne!(Fingerprint::of(&a), Fingerprint::of(&b));
    }

    fn arb_version() -> impl Strategy<Value = Version> {
        (0u64..3, 0u64..4, 0u64..12, prop::option::of(0u64..3)).prop_map(|(a, b, c, pre)| {
            let text = match pre {
                Some(p) => format!("{a}.{b}.{c}-rc.{p}"),
                None => format!("{a}.{b}.{c}"),
            };
            v(&text)
        })
    }

    proptest! {
        /// The fast path's premise: from the settled set, the planner has
        /// nothing to do, whatever the options.
        #[test]
        fn planning_from_the_settled_set_towards_its_version_is_empty(
            versions in prop::collection::btree_set(arb_version(), 0..30),
            sql in prop::collection::vec(any::<bool>(), 30),
            irreversible in prop::collection::vec(any::<bool>(), 30),
            target in arb_version(),
            out_of_order in any::<bool>(),
            skip in any::<bool>(),
        ) {
            let known: Vec<KnownScript> = versions
                .iter()
                .enumerate()
                .map(|(i, v)| KnownScript {
                    reversible: !irreversible[i],
                    ..known(&v.to_string(), sql[i].then_some("sum"))
                })
                .collect();
            let options = PlanOptions { allow_out_of_order: out_of_order, skip_irreversible: skip };
            let from = settled(&target, &known);
            // Towards the version exactly, and as start-up plans (up to it).
            for target in [Target::Version(target.clone()), Target::UpTo(target.clone())] {
                let planned = plan(&target, &from, &known, options).unwrap();
                prop_assert!(planned.is_empty(), "{planned}");
                prop_assert_eq!(planned.to, from.last().map(|a| a.version.clone()));
            }
        }

        /// And the fingerprint of the settled set is what the database
        /// records once it got there by any route.
        #[test]
        fn the_settled_fingerprint_equals_that_of_the_same_set_in_any_order(
            versions in prop::collection::btree_set(arb_version(), 0..30),
            target in arb_version(),
            seed in any::<u64>(),
        ) {
            let known: Vec<KnownScript> = versions.iter().map(|v| known(&v.to_string(), None)).collect();
            let mut shuffled = settled(&target, &known);
            let len = shuffled.len().max(1);
            shuffled.rotate_left((seed as usize) % len);
            prop_assert_eq!(Fingerprint::of(&shuffled), Fingerprint::of(&settled(&target, &known)));
        }
    }
}
