//! What start-up does when the database is ahead of the application: the
//! policy, and the one-time authorization to downgrade.
//!
//! Start-up never reverts anything on its own. An older application meets
//! a newer database in every rolling deploy, and an application version can
//! come from a stray variable; neither may undo a migration. A database
//! ahead is *tolerated* by default (nothing changes, with a warning), or
//! *refused* by policy. Only a [`DowngradeAuthorization`] for exactly the
//! application's version makes start-up revert, once: the executor records
//! it with the steps it ran, and never honours it again.

use std::fmt;

use crate::{Version, VersionError};

/// The variable that authorizes start-up to downgrade the database to the
/// application's version, once: `MIGRATE_AUTHORIZE_DOWNGRADE_TO=1.0.0`.
pub const AUTHORIZE_DOWNGRADE_VAR: &str = "MIGRATE_AUTHORIZE_DOWNGRADE_TO";
/// The variable that chooses what start-up does when the database is ahead
/// of the application: `tolerate` (the default) or `refuse`.
pub const WHEN_AHEAD_VAR: &str = "MIGRATE_WHEN_AHEAD";

/// What start-up does when scripts above the application version are
/// applied and no downgrade is authorized.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WhenAhead {
    /// Start, change nothing, and warn, naming the scripts ahead (Flyway's
    /// default): what an old instance in a rolling deploy needs.
    #[default]
    Tolerate,
    /// Fail before anything is touched.
    Refuse,
}

impl WhenAhead {
    /// The policy called `name`: `tolerate` or `refuse`.
    pub fn parse(name: &str) -> Option<WhenAhead> {
        match name.trim().to_ascii_lowercase().as_str() {
            "tolerate" => Some(WhenAhead::Tolerate),
            "refuse" => Some(WhenAhead::Refuse),
            _ => None,
        }
    }

    /// `tolerate` or `refuse`.
    pub fn as_str(self) -> &'static str {
        match self {
            WhenAhead::Tolerate => "tolerate",
            WhenAhead::Refuse => "refuse",
        }
    }
}

impl fmt::Display for WhenAhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Where a start-up setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingSource {
    /// The configuration: the `Migrator`, or the environment's section of
    /// `migrate.toml`.
    Config,
    /// Its environment variable.
    Environment,
}

/// Permission for start-up to downgrade the database to one version, once.
///
/// It names the target: it applies only when the application's version is
/// that version (by semver precedence), so a setting left behind after a
/// rollback cannot revert anything at another version. Its text, build
/// metadata included, is its identity: the executor records it with the
/// steps it ran, and an authorization already spent is never honoured
/// again. To downgrade to the same version a second time, give a new one,
/// such as `1.0.0+2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DowngradeAuthorization {
    /// The version start-up may downgrade to, as written.
    pub version: Version,
    /// Where it came from.
    pub source: SettingSource,
}

impl DowngradeAuthorization {
    /// The text that names it in the history: the version as written.
    pub fn id(&self) -> String {
        self.version.to_string()
    }
}

impl fmt::Display for DowngradeAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.source {
            SettingSource::Config => write!(f, "authorize_downgrade_to = \"{}\"", self.version),
            SettingSource::Environment => write!(f, "{AUTHORIZE_DOWNGRADE_VAR}={}", self.version),
        }
    }
}

/// What start-up does about a database ahead of the application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartupPolicy {
    /// Without an authorization that applies: tolerate or refuse.
    pub when_ahead: WhenAhead,
    /// The one downgrade start-up may run.
    pub authorization: Option<DowngradeAuthorization>,
}

/// A start-up setting that is set but invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}=`{value}` {reason}")]
pub struct PolicyError {
    /// The setting: the variable, or the configuration key.
    pub setting: &'static str,
    /// The bad value.
    pub value: String,
    /// What is wrong, and what is expected.
    pub reason: String,
}

/// Resolves the start-up policy: each setting from the configuration, else
/// its variable ([`WHEN_AHEAD_VAR`], [`AUTHORIZE_DOWNGRADE_VAR`]). A value
/// that is set but invalid is an error naming where it came from; it never
/// falls through.
pub fn resolve_startup_policy(
    when_ahead: Option<WhenAhead>,
    authorize_downgrade_to: Option<&str>,
) -> Result<StartupPolicy, PolicyError> {
    let var = |name: &str| {
        std::env::var_os(name).map(|v| {
            v.into_string()
                .unwrap_or_else(|raw| raw.to_string_lossy().into_owned())
        })
    };
    resolve_startup_policy_from(
        when_ahead,
        authorize_downgrade_to,
        var(WHEN_AHEAD_VAR).as_deref(),
        var(AUTHORIZE_DOWNGRADE_VAR).as_deref(),
    )
}

/// [`resolve_startup_policy`] with the variables' values passed in. An
/// empty variable counts as unset.
pub fn resolve_startup_policy_from(
    when_ahead: Option<WhenAhead>,
    authorize_downgrade_to: Option<&str>,
    when_ahead_var: Option<&str>,
    authorize_var: Option<&str>,
) -> Result<StartupPolicy, PolicyError> {
    let when_ahead = match (when_ahead, when_ahead_var.filter(|v| !v.is_empty())) {
        (Some(w), _) => w,
        (None, Some(text)) => WhenAhead::parse(text).ok_or_else(|| PolicyError {
            setting: WHEN_AHEAD_VAR,
            value: text.to_owned(),
            reason: "is not a policy: expected `tolerate` or `refuse`".to_owned(),
        })?,
        (None, None) => WhenAhead::default(),
    };
    let (text, setting, source) = match (authorize_downgrade_to, authorize_var) {
        (Some(text), _) => (text, "authorize_downgrade_to", SettingSource::Config),
        (None, Some(text)) if !text.is_empty() => {
            (text, AUTHORIZE_DOWNGRADE_VAR, SettingSource::Environment)
        }
        _ => {
            return Ok(StartupPolicy {
                when_ahead,
                authorization: None,
            });
        }
    };
    let version = Version::parse(text).map_err(|VersionError { reason, .. }| PolicyError {
        setting,
        value: text.to_owned(),
        reason: format!(
            "is not a semver version: {reason}; it names the one application version start-up may downgrade the database to, e.g. `1.0.0`"
        ),
    })?;
    Ok(StartupPolicy {
        when_ahead,
        authorization: Some(DowngradeAuthorization { version, source }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_settings_start_up_tolerates_a_database_ahead_and_may_not_downgrade() {
        let policy = resolve_startup_policy_from(None, None, None, None).unwrap();
        assert_eq!(policy, StartupPolicy::default());
        assert_eq!(policy.when_ahead, WhenAhead::Tolerate);
    }

    #[test]
    fn the_configuration_wins_over_the_variables() {
        let policy = resolve_startup_policy_from(
            Some(WhenAhead::Refuse),
            Some("2.0.0"),
            Some("tolerate"),
            Some("1.0.0"),
        )
        .unwrap();
        assert_eq!(policy.when_ahead, WhenAhead::Refuse);
        let auth = policy.authorization.unwrap();
        assert_eq!(
            (auth.id(), auth.source),
            ("2.0.0".into(), SettingSource::Config)
        );
        assert_eq!(auth.to_string(), "authorize_downgrade_to = \"2.0.0\"");
    }

    #[test]
    fn the_variables_apply_when_nothing_is_configured_and_empty_ones_count_as_unset() {
        let policy =
            resolve_startup_policy_from(None, None, Some("Refuse"), Some("1.0.0+again")).unwrap();
        assert_eq!(policy.when_ahead, WhenAhead::Refuse);
        let auth = policy.authorization.unwrap();
        // Build metadata names the authorization, and is kept.
        assert_eq!(auth.id(), "1.0.0+again");
        assert_eq!(
            auth.to_string(),
            "MIGRATE_AUTHORIZE_DOWNGRADE_TO=1.0.0+again"
        );
        let empty = resolve_startup_policy_from(None, None, Some(""), Some("")).unwrap();
        assert_eq!(empty, StartupPolicy::default());
    }

    #[test]
    fn invalid_values_are_errors_naming_their_setting_and_never_fall_through() {
        let err = resolve_startup_policy_from(None, None, None, Some("yes")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("MIGRATE_AUTHORIZE_DOWNGRADE_TO=`yes` is not a semver version"),
            "{err}"
        );
        let err = resolve_startup_policy_from(None, Some("v1"), None, Some("1.0.0")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("authorize_downgrade_to=`v1` is not a semver version"),
            "{err}"
        );
        let err = resolve_startup_policy_from(None, None, Some("ignore"), None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "MIGRATE_WHEN_AHEAD=`ignore` is not a policy: expected `tolerate` or `refuse`"
        );
    }
}
