//! The pure planner: from the target, the applied scripts and the known
//! scripts to an ordered list of steps. No I/O happens here.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use crate::Version;

/// Whether a script is written in Rust or as SQL files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScriptKind {
    /// A `#[migration_script]` struct (or one listed by hand).
    Code,
    /// An `up.sql` / `down.sql` folder embedded at build time.
    Sql,
}

impl ScriptKind {
    /// The kind named `code` or `sql` (as the tracking table records it).
    pub fn parse(name: &str) -> Option<ScriptKind> {
        match name {
            "code" => Some(ScriptKind::Code),
            "sql" => Some(ScriptKind::Sql),
            _ => None,
        }
    }

    /// `code` or `sql`, as the tracking table records it.
    pub fn as_str(self) -> &'static str {
        match self {
            ScriptKind::Code => "code",
            ScriptKind::Sql => "sql",
        }
    }
}

impl fmt::Display for ScriptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A script this build knows, as the planner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownScript {
    /// Its version.
    pub version: Version,
    /// Its name (borrowed from the script; a build's names are `'static`).
    pub name: Cow<'static, str>,
    /// Code or SQL.
    pub kind: ScriptKind,
    /// The checksum of its SQL, for SQL scripts.
    pub checksum: Option<Cow<'static, str>>,
    /// Whether it has a `down`.
    pub reversible: bool,
}

/// A script the database records as applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedScript {
    /// Its version.
    pub version: Version,
    /// The name it was applied under.
    pub name: String,
    /// The checksum recorded when it ran, for SQL scripts.
    pub checksum: Option<String>,
    /// What the history recorded about reverting it: what a build that does
    /// not have the script can do to revert it.
    pub down: RecordedDown,
    /// `true` when the script is *not* applied, but its changes are: its
    /// last row reverted it without running a `down` (an irreversible
    /// script skipped on a downgrade). It counts as not applied, and moving
    /// up past it again records it as applied without running its `up`
    /// twice.
    pub reverted_without_running: bool,
}

impl AppliedScript {
    /// An applied script with nothing recorded about its `down`.
    pub fn new(version: Version, name: impl Into<String>) -> AppliedScript {
        AppliedScript {
            version,
            name: name.into(),
            checksum: None,
            down: RecordedDown::NotRecorded,
            reverted_without_running: false,
        }
    }
}

/// How an applied script can be reverted by a build that does not have it,
/// as its history row recorded when it was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordedDown {
    /// An SQL migration's `down` SQL, recorded with its row: any build can
    /// run it.
    Sql {
        /// The SQL.
        sql: String,
        /// Whether it runs in a transaction (the migration's own choice).
        transactional: bool,
    },
    /// An SQL migration without a `down`: nothing can revert it.
    Irreversible,
    /// A code script: its `down` is compiled code, which only a build that
    /// has the script can run.
    Code,
    /// Nothing was recorded: the row was written before this tool recorded
    /// `down` SQL. It is never guessed.
    NotRecorded,
}

/// Where the plan should take the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Exactly this version: revert what is above it, apply what is pending
    /// up to it. A downgrade someone asked for: `plan --to`, or a start-up
    /// whose downgrade was authorized for this version.
    Version(Version),
    /// Apply pending scripts up to and including this version; revert
    /// nothing. What start-up does by default: scripts applied above the
    /// version stay, and the plan names them ([`Plan::ahead`]).
    UpTo(Version),
    /// Revert applied scripts above this version; apply nothing.
    DownTo(Version),
    /// Revert the `n` most recent (highest) applied scripts.
    DownSteps(usize),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Version(v) => write!(f, "version {v}"),
            Target::UpTo(v) => write!(f, "up to {v}"),
            Target::DownTo(v) => write!(f, "down to {v}"),
            Target::DownSteps(n) => write!(f, "down {n} step(s)"),
        }
    }
}

/// Options that relax the planner's refusals. Both default to off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Run a pending script whose version is below the highest applied one,
    /// instead of refusing.
    pub allow_out_of_order: bool,
    /// When a downgrade crosses a script without `down`, record it as reverted
    /// without running anything (and warn), instead of refusing the plan.
    pub skip_irreversible: bool,
}

/// The direction of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Apply: run `up`.
    Up,
    /// Revert: run `down`.
    Down,
}

impl Direction {
    /// `up` or `down`, as the tracking table records it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What the executor does for a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run the script and record it.
    Run,
    /// Record the step without running anything. Down: the script has no
    /// `down` and the user chose [`PlanOptions::skip_irreversible`]. Up: the
    /// script was reverted that way before, so its changes are still there
    /// ([`AppliedScript::reverted_without_running`]).
    RecordOnly,
}

/// Where a step's script comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The script at this index of the `known` slice given to [`plan`].
    Known(usize),
    /// A script this build does not have, reverted with the `down` SQL its
    /// history row recorded when it was applied (empty for a step only
    /// recorded).
    Recorded {
        /// The SQL.
        sql: String,
        /// Whether it runs in a transaction, as the migration chose.
        transactional: bool,
    },
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Up or down.
    pub direction: Direction,
    /// The script's version.
    pub version: Version,
    /// The script's name: borrowed from a script this build knows, owned
    /// when it comes from the history.
    pub name: Cow<'static, str>,
    /// Code or SQL.
    pub kind: ScriptKind,
    /// Run it, or only record it.
    pub action: Action,
    /// The script: one this build knows, or the recorded `down` SQL of one
    /// it does not.
    pub origin: Origin,
}

impl Step {
    /// The script's index in the `known` slice given to [`plan`], unless
    /// this build does not have it ([`Origin::Recorded`]).
    pub fn known_index(&self) -> Option<usize> {
        match self.origin {
            Origin::Known(i) => Some(i),
            Origin::Recorded { .. } => None,
        }
    }

    /// What the step does beyond running its script, as a plan's listing
    /// notes it.
    pub fn note(&self) -> Option<&'static str> {
        match (self.action, self.direction, &self.origin) {
            (Action::RecordOnly, Direction::Down, _) => {
                Some("irreversible: recorded as reverted, nothing runs")
            }
            (Action::RecordOnly, Direction::Up, _) => Some(
                "recorded as applied, not run: its changes stayed when it was reverted without running",
            ),
            (Action::Run, _, Origin::Recorded { .. }) => {
                Some("not in this build: runs the down SQL recorded when it was applied")
            }
            (Action::Run, _, Origin::Known(_)) => None,
        }
    }
}

/// An ordered list of steps: what a dry run shows and what the executor runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The database version before the plan: the highest applied version.
    pub from: Option<Version>,
    /// The database version after the plan.
    pub to: Option<Version>,
    /// The steps, in the order they run.
    pub steps: Vec<Step>,
    /// Applied scripts above an [`Target::UpTo`] target, which the plan
    /// leaves in place: the database is ahead of the target. Highest first.
    pub ahead: Vec<ScriptRef>,
    /// Known scripts above an [`Target::UpTo`] or [`Target::Version`]
    /// target that are not applied, which the plan does not run.
    pub above_target: Vec<ScriptRef>,
}

impl Plan {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Whether the plan reverts anything.
    pub fn reverts(&self) -> bool {
        self.steps.iter().any(|s| s.direction == Direction::Down)
    }

    /// What the executor should warn about before running: each step only
    /// recorded, whose changes stay in the database.
    pub fn warnings(&self) -> Vec<String> {
        self.steps
            .iter()
            .filter(|s| s.action == Action::RecordOnly)
            .map(|s| match s.direction {
                Direction::Down => format!(
                    "{} `{}` has no `down`: it is recorded as reverted, but nothing undoes its changes, which stay in the database",
                    s.version, s.name
                ),
                Direction::Up => format!(
                    "{} `{}` is recorded as applied without running: it was reverted without running its `down`, so its changes are still there",
                    s.version, s.name
                ),
            })
            .collect()
    }
}

fn show(v: &Option<Version>) -> String {
    v.as_ref()
        .map_or_else(|| "(empty)".to_owned(), ToString::to_string)
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            match &self.from {
                Some(v) => write!(f, "nothing to do: the database is at {v}")?,
                None => write!(f, "nothing to do: no script applies at this version")?,
            }
            if !self.ahead.is_empty() {
                write!(
                    f,
                    ", ahead of the target; left in place: {}",
                    list(&self.ahead)
                )?;
            }
            return Ok(());
        }
        let n = self.steps.len();
        write!(
            f,
            "{} -> {}: {n} step{}",
            show(&self.from),
            show(&self.to),
            if n == 1 { "" } else { "s" }
        )?;
        for (i, s) in self.steps.iter().enumerate() {
            write!(
                f,
                "\n  {:>3}. {:<4} {} {} ({})",
                i + 1,
                s.direction,
                s.version,
                s.name,
                s.kind
            )?;
            if let Some(note) = s.note() {
                write!(f, " [{note}]")?;
            }
        }
        Ok(())
    }
}

/// A script named in an error: its version and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptRef {
    /// The version.
    pub version: Version,
    /// The name.
    pub name: String,
}

impl fmt::Display for ScriptRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.version, self.name)
    }
}

impl ScriptRef {
    /// `1.0.1 `a`, 1.0.2 `b``: scripts named in a message.
    pub fn list(refs: &[ScriptRef]) -> String {
        refs.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn list(refs: &[ScriptRef]) -> String {
    ScriptRef::list(refs)
}

/// Why no plan could be made. Nothing has run when the planner refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// Two known scripts have the same version (build metadata ignored).
    #[error("two scripts have version {}: {} and {}; give one of them another version", first.version, first, second)]
    DuplicateVersion {
        /// The first script.
        first: ScriptRef,
        /// The second script.
        second: ScriptRef,
    },
    /// A downgrade would cross scripts that cannot be reverted.
    #[error(
        "{}",
        downgrade_message(target, needs_build, not_recorded, irreversible)
    )]
    CannotDowngrade {
        /// The version the plan would go down to.
        target: String,
        /// Applied code scripts this build does not have: only a build that
        /// has them can run their `down`.
        needs_build: Vec<ScriptRef>,
        /// Applied scripts this build does not have, whose history row
        /// records no `down` (written before this tool recorded it).
        not_recorded: Vec<ScriptRef>,
        /// Scripts without `down`.
        irreversible: Vec<ScriptRef>,
    },
    /// Pending scripts have versions below the highest applied one.
    #[error(
        "{} added out of order: the database is already at {highest_applied}; give {} a version above {highest_applied}, or allow out-of-order runs (`--allow-out-of-order`, `allow_out_of_order = true` in migrate.toml, or `Migrator::allow_out_of_order(true)`)",
        list(pending), if pending.len() == 1 { "it" } else { "them" }
    )]
    OutOfOrder {
        /// The pending scripts below the database version.
        pending: Vec<ScriptRef>,
        /// The highest applied version.
        highest_applied: Version,
    },
    /// A known script and an applied one differ only in build metadata,
    /// which semver precedence ignores: the planner cannot tell whether the
    /// known one is the applied one or a new script.
    #[error(
        "{known} and the applied {applied} differ only in build metadata, which semver ignores, so they are the same version; nothing was run. If {known} is a new script, give it a version of its own; if it is the applied script, restore its version `{}`",
        applied.version
    )]
    BuildMetadataOnly {
        /// The script in this build.
        known: ScriptRef,
        /// The script the database records.
        applied: ScriptRef,
    },
    /// An applied SQL script has changed since it ran.
    #[error(
        "migration {script} was applied but its SQL has changed since (recorded checksum {recorded}, now {current}); restore the file, or put the change in a new migration"
    )]
    ChecksumMismatch {
        /// The script.
        script: ScriptRef,
        /// The checksum recorded when it ran.
        recorded: String,
        /// The checksum of the SQL in this build.
        current: String,
    },
}

fn downgrade_message(
    target: &str,
    needs_build: &[ScriptRef],
    not_recorded: &[ScriptRef],
    irreversible: &[ScriptRef],
) -> String {
    let mut msg = format!("cannot downgrade the database to {target}; nothing was run:");
    // The newest build that must have them: one at the highest of them.
    let build = |refs: &[ScriptRef]| {
        let highest = refs.iter().map(|r| &r.version).max();
        highest.map_or_else(String::new, |v| {
            format!(" (the application at {v} or later, whose build applied them)")
        })
    };
    if !needs_build.is_empty() {
        msg += &format!(
            "\n  - code scripts this build does not have: {}; their `down` is compiled into the build that applied them: run `down --to {target}` with a build that has them{}",
            list(needs_build),
            build(needs_build)
        );
    }
    if !not_recorded.is_empty() {
        msg += &format!(
            "\n  - not in this build, and applied before their `down` SQL was recorded: {}; nothing says how to revert them, and it is not guessed: run `down --to {target}` with a build that has them{}",
            list(not_recorded),
            build(not_recorded)
        );
    }
    if !irreversible.is_empty() {
        msg += &format!(
            "\n  - no `down`: {}; implement `down` (and set `REVERSIBLE = true`), or choose to skip irreversible scripts",
            list(irreversible)
        );
    }
    msg
}

/// Plans the steps that take the database from its `applied` scripts to
/// `target`, using the `known` scripts of this build.
///
/// The rules, in order:
/// 1. Known scripts with the same version are an error.
/// 2. An applied SQL script whose checksum changed is an error.
/// 3. Downgrade steps come first, for [`Target::Version`],
///    [`Target::DownTo`] and [`Target::DownSteps`]: applied scripts above
///    the target, in descending order. A script this build does not have
///    is reverted with the `down` SQL its row recorded. The whole plan is
///    refused, naming every such script, if any of them is a code script
///    this build does not have, has no recorded `down`, or has no `down`
///    at all (unless [`PlanOptions::skip_irreversible`]).
/// 4. Then upgrade steps: known, unapplied scripts up to the target, in
///    ascending order. One below the highest version still applied is out of
///    order, an error unless [`PlanOptions::allow_out_of_order`]. A script
///    that was reverted without running its `down` is recorded as applied
///    without running its `up` again.
/// 5. [`Target::UpTo`] reverts nothing: the applied scripts above it stay,
///    and [`Plan::ahead`] names them.
///
/// Versions compare by semver precedence: build metadata is ignored.
pub fn plan(
    target: &Target,
    applied: &[AppliedScript],
    known: &[KnownScript],
    options: PlanOptions,
) -> Result<Plan, PlanError> {
    let known_by_version = index_known(known)?;
    let mut applied_by_version: BTreeMap<&Version, &AppliedScript> = BTreeMap::new();
    let mut kept: BTreeMap<&Version, &AppliedScript> = BTreeMap::new();
    for a in applied {
        if a.reverted_without_running {
            kept.insert(&a.version, a);
        } else {
            applied_by_version.insert(&a.version, a);
        }
    }
    // Scripts reverted without running are recorded as applied again
    // without running: their SQL must be what ran, as for applied ones.
    check_checksums(&applied_by_version, &known_by_version, known)?;
    check_checksums(&kept, &known_by_version, known)?;

    let from = applied_by_version.keys().next_back().map(|v| (*v).clone());
    let above = |v: &Version| {
        (
            std::ops::Bound::Excluded(v.clone()),
            std::ops::Bound::Unbounded,
        )
    };

    // 3. Downgrade steps, highest first.
    let to_revert: Vec<&AppliedScript> = match target {
        Target::Version(v) | Target::DownTo(v) => applied_by_version
            .range::<Version, _>(above(v))
            .rev()
            .map(|(_, a)| *a)
            .collect(),
        Target::DownSteps(n) => applied_by_version
            .values()
            .rev()
            .take(*n)
            .copied()
            .collect(),
        Target::UpTo(_) => Vec::new(),
    };
    let mut steps = Vec::new();
    let (mut needs_build, mut not_recorded, mut irreversible) =
        (Vec::new(), Vec::new(), Vec::new());
    for a in &to_revert {
        let script_ref = ScriptRef {
            version: a.version.clone(),
            name: a.name.clone(),
        };
        let (kind, action, origin) = match known_by_version.get(&a.version) {
            Some(&i) => match (known[i].reversible, options.skip_irreversible) {
                (true, _) => (known[i].kind, Action::Run, Origin::Known(i)),
                (false, true) => (known[i].kind, Action::RecordOnly, Origin::Known(i)),
                (false, false) => {
                    irreversible.push(script_ref);
                    continue;
                }
            },
            None => match &a.down {
                RecordedDown::Sql { sql, transactional } => (
                    ScriptKind::Sql,
                    Action::Run,
                    Origin::Recorded {
                        sql: sql.clone(),
                        transactional: *transactional,
                    },
                ),
                RecordedDown::Irreversible if options.skip_irreversible => (
                    ScriptKind::Sql,
                    Action::RecordOnly,
                    Origin::Recorded {
                        sql: String::new(),
                        transactional: true,
                    },
                ),
                RecordedDown::Irreversible => {
                    irreversible.push(script_ref);
                    continue;
                }
                RecordedDown::Code => {
                    needs_build.push(script_ref);
                    continue;
                }
                RecordedDown::NotRecorded => {
                    not_recorded.push(script_ref);
                    continue;
                }
            },
        };
        steps.push(Step {
            direction: Direction::Down,
            version: a.version.clone(),
            name: match origin {
                Origin::Known(i) => known[i].name.clone(),
                Origin::Recorded { .. } => Cow::Owned(a.name.clone()),
            },
            kind,
            action,
            origin,
        });
    }
    if !needs_build.is_empty() || !not_recorded.is_empty() || !irreversible.is_empty() {
        let target = match target {
            Target::DownSteps(n) => format!(
                "{} ({n} steps down)",
                show(&remaining_top(&applied_by_version, to_revert.len()))
            ),
            Target::Version(v) | Target::DownTo(v) | Target::UpTo(v) => v.to_string(),
        };
        return Err(PlanError::CannotDowngrade {
            target,
            needs_build,
            not_recorded,
            irreversible,
        });
    }

    // 4. Upgrade steps, lowest first.
    let highest_remaining = remaining_top(&applied_by_version, to_revert.len());
    let up_to = match target {
        Target::Version(v) | Target::UpTo(v) => Some(v),
        Target::DownTo(_) | Target::DownSteps(_) => None,
    };
    let mut out_of_order = Vec::new();
    let mut above_target = Vec::new();
    if let Some(up_to) = up_to {
        for (&version, &i) in known_by_version.range::<Version, _>(..=up_to) {
            if applied_by_version.contains_key(version) {
                continue;
            }
            // Recording what is already there cannot be out of order.
            let only_record = kept.contains_key(version);
            if !only_record
                && highest_remaining.as_ref().is_some_and(|h| version < h)
                && !options.allow_out_of_order
            {
                out_of_order.push(ScriptRef {
                    version: version.clone(),
                    name: known[i].name.to_string(),
                });
                continue;
            }
            steps.push(Step {
                direction: Direction::Up,
                version: known[i].version.clone(),
                name: known[i].name.clone(),
                kind: known[i].kind,
                action: if only_record {
                    Action::RecordOnly
                } else {
                    Action::Run
                },
                origin: Origin::Known(i),
            });
        }
        above_target = known_by_version
            .range::<Version, _>(above(up_to))
            .filter(|(v, _)| !applied_by_version.contains_key(*v))
            .map(|(_, &i)| ScriptRef {
                version: known[i].version.clone(),
                name: known[i].name.to_string(),
            })
            .collect();
    }
    if let Some(highest_applied) = highest_remaining.filter(|_| !out_of_order.is_empty()) {
        return Err(PlanError::OutOfOrder {
            pending: out_of_order,
            highest_applied,
        });
    }

    // 5. What an upgrade leaves in place above its target.
    let ahead = match target {
        Target::UpTo(v) => applied_by_version
            .range::<Version, _>(above(v))
            .rev()
            .map(|(_, a)| ScriptRef {
                version: a.version.clone(),
                name: a.name.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };

    let to = final_version(&applied_by_version, &steps);
    // The steps grew by doubling; a run holds them to its end, beside its
    // report, so give back the slack (up to half of it, for a long plan).
    steps.shrink_to_fit();
    Ok(Plan {
        from,
        to,
        steps,
        ahead,
        above_target,
    })
}

/// Known scripts by version; rule 1 (no duplicates).
fn index_known(known: &[KnownScript]) -> Result<BTreeMap<&Version, usize>, PlanError> {
    let mut by_version = BTreeMap::new();
    for (i, k) in known.iter().enumerate() {
        if let Some(&j) = by_version.get(&k.version) {
            let r = |s: &KnownScript| ScriptRef {
                version: s.version.clone(),
                name: s.name.to_string(),
            };
            return Err(PlanError::DuplicateVersion {
                first: r(&known[j]),
                second: r(k),
            });
        }
        by_version.insert(&k.version, i);
    }
    Ok(by_version)
}

/// Rule 2: applied SQL must not have changed.
/// Refuses applied scripts whose known counterpart differs in build metadata
/// or in its SQL.
fn check_checksums(
    applied: &BTreeMap<&Version, &AppliedScript>,
    known_by_version: &BTreeMap<&Version, usize>,
    known: &[KnownScript],
) -> Result<(), PlanError> {
    for (version, a) in applied {
        let Some(&i) = known_by_version.get(version) else {
            continue;
        };
        if known[i].version.as_semver().build != a.version.as_semver().build {
            return Err(PlanError::BuildMetadataOnly {
                known: ScriptRef {
                    version: known[i].version.clone(),
                    name: known[i].name.to_string(),
                },
                applied: ScriptRef {
                    version: a.version.clone(),
                    name: a.name.clone(),
                },
            });
        }
        if let (Some(recorded), Some(current)) = (&a.checksum, &known[i].checksum)
            && recorded != current
        {
            return Err(PlanError::ChecksumMismatch {
                script: ScriptRef {
                    version: a.version.clone(),
                    name: a.name.clone(),
                },
                recorded: recorded.clone(),
                current: current.to_string(),
            });
        }
    }
    Ok(())
}

/// The highest applied version once the `reverted` highest ones are gone.
fn remaining_top(applied: &BTreeMap<&Version, &AppliedScript>, reverted: usize) -> Option<Version> {
    applied.keys().rev().nth(reverted).map(|v| (*v).clone())
}

fn final_version(applied: &BTreeMap<&Version, &AppliedScript>, steps: &[Step]) -> Option<Version> {
    let mut versions: std::collections::BTreeSet<&Version> = applied.keys().copied().collect();
    for s in steps {
        match s.direction {
            Direction::Up => versions.insert(&s.version),
            Direction::Down => versions.remove(&s.version),
        };
    }
    versions.last().map(|v| (*v).clone())
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
