//! The application's own version: configuration, else `APPLICATION_VERSION`,
//! else the application's Cargo package version.

use std::fmt;

use crate::{Version, VersionError};

/// The environment variable that overrides the package version.
pub const APPLICATION_VERSION_VAR: &str = "APPLICATION_VERSION";

/// Where the application version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSource {
    /// Set explicitly in the configuration.
    Config,
    /// The `APPLICATION_VERSION` environment variable.
    Environment,
    /// The application's Cargo package version, captured by
    /// [`package_version!`](crate::package_version).
    Package,
}

impl fmt::Display for VersionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VersionSource::Config => "the configured application version",
            VersionSource::Environment => APPLICATION_VERSION_VAR,
            VersionSource::Package => "the Cargo package version",
        })
    }
}

/// The resolved application version and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppVersion {
    /// The version.
    pub version: Version,
    /// Where it came from.
    pub source: VersionSource,
}

/// An application version that could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}=`{value}` is not a semver version: {reason}; expected MAJOR.MINOR.PATCH such as `1.0.1`", reason = error.reason)]
pub struct AppVersionError {
    /// Where the bad value came from.
    pub source_name: String,
    /// The bad value.
    pub value: String,
    /// The parse error.
    pub error: VersionError,
}

/// Expands to the Cargo package version of the crate that invokes it, the
/// application's own version. (`env!("CARGO_PKG_VERSION")` inside a library
/// would give the library's version, which is why this is a macro.)
#[macro_export]
macro_rules! package_version {
    () => {
        ::core::env!("CARGO_PKG_VERSION")
    };
}

/// Resolves the application version from `configured`, else the
/// `APPLICATION_VERSION` environment variable, else `package` (pass
/// [`package_version!()`](crate::package_version)).
///
/// A value that is set but invalid is an error naming its source; it never
/// falls through to the next source.
pub fn resolve_app_version(
    configured: Option<&str>,
    package: &str,
) -> Result<AppVersion, AppVersionError> {
    let env = std::env::var_os(APPLICATION_VERSION_VAR).map(|v| {
        v.into_string()
            .unwrap_or_else(|raw| raw.to_string_lossy().into_owned())
    });
    resolve_app_version_from(configured, env.as_deref(), package)
}

/// [`resolve_app_version`] with the environment variable's value passed in.
pub fn resolve_app_version_from(
    configured: Option<&str>,
    env: Option<&str>,
    package: &str,
) -> Result<AppVersion, AppVersionError> {
    let (value, source) = match (configured, env) {
        (Some(v), _) => (v, VersionSource::Config),
        (None, Some(v)) => (v, VersionSource::Environment),
        (None, None) => (package, VersionSource::Package),
    };
    Version::parse(value)
        .map(|version| AppVersion { version, source })
        .map_err(|error| AppVersionError {
            source_name: match source {
                VersionSource::Config => "app_version".to_owned(),
                VersionSource::Environment => APPLICATION_VERSION_VAR.to_owned(),
                VersionSource::Package => "CARGO_PKG_VERSION".to_owned(),
            },
            value: value.to_owned(),
            error,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_wins_over_environment_and_package() {
        let v = resolve_app_version_from(Some("3.0.0"), Some("2.0.0"), "1.0.0").unwrap();
        assert_eq!(
            (v.version.to_string(), v.source),
            ("3.0.0".into(), VersionSource::Config)
        );
    }

    #[test]
    fn environment_wins_over_package() {
        let v = resolve_app_version_from(None, Some("2.0.0"), "1.0.0").unwrap();
        assert_eq!(
            (v.version.to_string(), v.source),
            ("2.0.0".into(), VersionSource::Environment)
        );
    }

    #[test]
    fn package_version_is_the_fallback() {
        let v = resolve_app_version_from(None, None, "1.0.0").unwrap();
        assert_eq!(
            (v.version.to_string(), v.source),
            ("1.0.0".into(), VersionSource::Package)
        );
    }

    #[test]
    fn invalid_environment_value_names_the_variable_and_does_not_fall_through() {
        let err = resolve_app_version_from(None, Some("abc"), "1.0.0").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("APPLICATION_VERSION=`abc` is not a semver version"),
            "{err}"
        );
    }

    #[test]
    fn loose_and_empty_values_are_errors() {
        for bad in ["1.0", "v1.0.0", ""] {
            assert!(
                resolve_app_version_from(None, Some(bad), "1.0.0").is_err(),
                "{bad:?}"
            );
            assert!(
                resolve_app_version_from(Some(bad), None, "1.0.0").is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn package_version_macro_captures_the_calling_crate() {
        assert_eq!(crate::package_version!(), env!("CARGO_PKG_VERSION"));
    }
}
