//! Semantic versions ordered by semver precedence.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// A strict semantic version (`MAJOR.MINOR.PATCH[-PRE][+BUILD]`).
///
/// Equality, ordering and hashing follow semver *precedence*: build metadata is
/// ignored (`1.0.1+a == 1.0.1`), pre-releases sort before their release
/// (`1.0.0-rc.1 < 1.0.0`) and numbers compare as numbers (`1.0.9 < 1.0.10`).
/// [`Display`](fmt::Display) prints the version exactly as it was written.
#[derive(Clone, Debug)]
pub struct Version(semver::Version);

/// A string that is not a strict semantic version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a semver version (expected MAJOR.MINOR.PATCH, e.g. `1.0.1`): {reason}")]
pub struct VersionError {
    /// The text that failed to parse.
    pub input: String,
    /// Why the parser rejected it.
    pub reason: String,
}

impl Version {
    /// Parses a strict semantic version: no `v` prefix, no missing parts, no
    /// leading zeros, no surrounding whitespace.
    pub fn parse(input: &str) -> Result<Self, VersionError> {
        if let Some(release) = plain_release(input) {
            return Ok(Version(release));
        }
        semver::Version::parse(input)
            .map(Version)
            .map_err(|e| VersionError {
                input: input.to_owned(),
                reason: e.to_string(),
            })
    }

    /// `MAJOR.MINOR.PATCH`, from numbers read at compile time.
    pub(crate) fn release([major, minor, patch]: [u64; 3]) -> Version {
        Version(semver::Version::new(major, minor, patch))
    }

    /// The underlying [`semver::Version`], build metadata included.
    pub fn as_semver(&self) -> &semver::Version {
        &self.0
    }
}

/// `MAJOR.MINOR.PATCH` and nothing else, as most migration versions are,
/// read without semver's general parser: every start-up parses every
/// script's version. It follows semver's rules (ASCII digits, no leading
/// zero, each part fits in a `u64`), and returns `None` for anything else,
/// errors included, which then go to `semver` itself. A property test
/// checks that the two agree.
fn plain_release(input: &str) -> Option<semver::Version> {
    let mut parts = [0u64; 3];
    let mut bytes = input.bytes();
    for (i, part) in parts.iter_mut().enumerate() {
        let mut digits = 0;
        loop {
            match bytes.next() {
                Some(b @ b'0'..=b'9') => {
                    // A leading zero is allowed only as the whole number.
                    if digits == 1 && *part == 0 {
                        return None;
                    }
                    *part = part.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
                    digits += 1;
                }
                Some(b'.') if i < 2 && digits > 0 => break,
                None if i == 2 && digits > 0 => break,
                _ => return None,
            }
        }
    }
    Some(semver::Version::new(parts[0], parts[1], parts[2]))
}

/// Why an SQL migration folder's name is not `<version>_<name>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FolderNameError {
    /// There is no `_` between a version and a name.
    #[error("must be named `<version>_<name>`, e.g. `1.0.0_create_users`")]
    NoSeparator,
    /// The part before the first `_` is not a strict semver version.
    #[error(
        "invalid version `{}`: expected strict semver MAJOR.MINOR.PATCH, e.g. `1.0.1` ({})",
        .0.input,
        .0.reason
    )]
    InvalidVersion(VersionError),
    /// Nothing follows the `_`.
    #[error("has an empty name after the version")]
    EmptyName,
}

/// Splits an SQL migration folder's name, `<version>_<name>`, at its first
/// `_` and parses the version: `1.0.2_add_note` is `1.0.2` and `add_note`.
/// Build metadata may hold no `_`, so the first one always ends the version.
pub fn parse_folder_name(folder: &str) -> Result<(Version, &str), FolderNameError> {
    let (version, name) = folder.split_once('_').ok_or(FolderNameError::NoSeparator)?;
    let version = Version::parse(version).map_err(FolderNameError::InvalidVersion)?;
    if name.is_empty() {
        return Err(FolderNameError::EmptyName);
    }
    Ok((version, name))
}

/// The version diesel_migrations gives a folder named like its own
/// (`2023-05-01-120000_create_users` is `20230501120000`): the part before
/// the first `_` when it holds only digits and dashes, at least 8 digits,
/// dashes removed. `None` for any other name, semver folders included.
pub fn diesel_folder_version(folder: &str) -> Option<String> {
    let (version, _) = folder.split_once('_')?;
    let digits: String = version.chars().filter(|c| *c != '-').collect();
    (digits.len() >= 8 && digits.chars().all(|c| c.is_ascii_digit())).then_some(digits)
}

impl From<semver::Version> for Version {
    fn from(v: semver::Version) -> Self {
        Version(v)
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (&self.0, &other.0);
        // The numbers decide nearly every comparison: compare them inline,
        // and leave pre-releases to semver.
        (a.major, a.minor, a.patch)
            .cmp(&(b.major, b.minor, b.patch))
            .then_with(|| a.cmp_precedence(b))
    }
}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Everything that precedence looks at, and nothing else.
        (
            self.0.major,
            self.0.minor,
            self.0.patch,
            self.0.pre.as_str(),
        )
            .hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn loose_versions_are_rejected() {
        for bad in [
            "", "1.0", "v1.0.0", "1.0.01", " 1.0.0", "1.0.0 ", "1", "1.0.0.0", "abc",
        ] {
            let err = Version::parse(bad).unwrap_err();
            assert_eq!(err.input, bad);
            assert!(err.to_string().contains("is not a semver version"), "{err}");
        }
    }

    #[test]
    fn numbers_compare_as_numbers_not_strings() {
        assert!(v("1.0.9") < v("1.0.10"));
        assert!(v("1.9.0") < v("1.10.0"));
    }

    #[test]
    fn build_metadata_is_ignored_for_equality_and_order() {
        assert_eq!(v("1.0.1+build.7"), v("1.0.1"));
        assert_eq!(v("1.0.1+a").cmp(&v("1.0.1+b")), Ordering::Equal);
        let mut set = std::collections::HashSet::new();
        set.insert(v("1.0.1+a"));
        assert!(set.contains(&v("1.0.1")));
    }

    #[test]
    fn pre_releases_follow_semver_precedence() {
        let mut versions = [
            v("1.0.0"),
            v("1.0.0-rc.1"),
            v("1.0.0-alpha.10"),
            v("1.0.0-alpha.2"),
            v("1.0.0-alpha"),
        ];
        versions.sort();
        let shown: Vec<String> = versions.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "1.0.0-alpha",
                "1.0.0-alpha.2",
                "1.0.0-alpha.10",
                "1.0.0-rc.1",
                "1.0.0"
            ]
        );
    }

    #[test]
    fn plain_releases_read_without_semver_match_semver() {
        for text in ["0.0.0", "1.0.10", "18446744073709551615.0.1"] {
            assert_eq!(
                plain_release(text),
                Some(semver::Version::parse(text).unwrap())
            );
        }
        for text in [
            "1.0.01",
            "+1.0.0",
            "1.0.+1",
            "1.0",
            "1.0.0.0",
            "1..0",
            "1.0.0-rc.1",
            "1.0.0+b",
            "18446744073709551616.0.0",
            "",
        ] {
            assert_eq!(plain_release(text), None, "{text}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { failure_persistence: None, ..Default::default() })]
        #[test]
        fn the_plain_release_reader_agrees_with_semver(text in "[0-9+.a-]{0,10}|[0-9]{1,21}\\.[0-9]{1,3}\\.[0-9]{1,3}") {
            let parsed = semver::Version::parse(&text).ok();
            match plain_release(&text) {
                Some(release) => proptest::prop_assert_eq!(Some(release), parsed),
                None => proptest::prop_assert!(parsed.is_none_or(|v| !v.pre.is_empty() || !v.build.is_empty())),
            }
        }
    }

    #[test]
    fn display_keeps_the_text_as_written() {
        assert_eq!(v("1.2.3-rc.1+sha.5").to_string(), "1.2.3-rc.1+sha.5");
    }
}
