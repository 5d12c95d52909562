use proptest::prelude::*;

use super::*;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn known(s: &str) -> KnownScript {
    KnownScript {
        version: v(s),
        name: format!("s{s}").into(),
        kind: ScriptKind::Code,
        checksum: None,
        reversible: true,
    }
}

fn irreversible(s: &str) -> KnownScript {
    KnownScript {
        reversible: false,
        ..known(s)
    }
}

fn sql(s: &str, checksum: &str) -> KnownScript {
    KnownScript {
        kind: ScriptKind::Sql,
        checksum: Some(checksum.to_owned().into()),
        ..known(s)
    }
}

fn applied(s: &str) -> AppliedScript {
    AppliedScript::new(v(s), format!("s{s}"))
}

/// Applied by a build that recorded how to revert it.
fn recorded(s: &str, down: RecordedDown) -> AppliedScript {
    AppliedScript { down, ..applied(s) }
}

/// Recorded as reverted without running its `down`.
fn reverted_without_running(s: &str) -> AppliedScript {
    AppliedScript {
        reverted_without_running: true,
        ..applied(s)
    }
}

fn to(s: &str) -> Target {
    Target::Version(v(s))
}

/// The steps as `up 1.0.1` / `down 1.0.2` strings.
fn steps(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|s| format!("{} {}", s.direction, s.version))
        .collect()
}

fn run(target: &Target, applied: &[AppliedScript], known: &[KnownScript]) -> Vec<String> {
    steps(&plan(target, applied, known, PlanOptions::default()).unwrap())
}

#[test]
fn upgrade_from_an_empty_database_runs_every_script_up_to_the_app_version_in_ascending_order() {
    let known = [known("1.0.1"), known("1.0.0"), known("1.1.0")];
    assert_eq!(run(&to("1.0.1"), &[], &known), ["up 1.0.0", "up 1.0.1"]);
}

#[test]
fn scripts_above_the_app_version_are_not_run() {
    let known = [known("1.0.0"), known("2.0.0")];
    assert_eq!(run(&to("1.5.0"), &[], &known), ["up 1.0.0"]);
}

#[test]
fn versions_are_ordered_by_semver_not_as_strings() {
    let known = [
        known("1.0.10"),
        known("1.0.2"),
        known("1.0.9"),
        known("1.0.1"),
        known("1.0.0"),
    ];
    assert_eq!(
        run(&to("1.0.10"), &[], &known),
        ["up 1.0.0", "up 1.0.1", "up 1.0.2", "up 1.0.9", "up 1.0.10"]
    );
}

#[test]
fn pre_releases_run_before_their_release_in_semver_precedence() {
    let known = [
        known("1.0.0"),
        known("1.0.0-rc.1"),
        known("1.0.0-alpha.10"),
        known("1.0.0-alpha.2"),
    ];
    assert_eq!(
        run(&to("1.0.0"), &[], &known),
        [
            "up 1.0.0-alpha.2",
            "up 1.0.0-alpha.10",
            "up 1.0.0-rc.1",
            "up 1.0.0"
        ]
    );
}

#[test]
fn a_pre_release_app_version_excludes_its_release() {
    let known = [known("1.0.0-rc.1"), known("1.0.0")];
    assert_eq!(run(&to("1.0.0-rc.1"), &[], &known), ["up 1.0.0-rc.1"]);
}

#[test]
fn app_version_equal_to_the_database_version_with_nothing_pending_is_an_empty_plan() {
    let known = [known("1.0.0"), known("1.0.1")];
    let p = plan(
        &to("1.0.1"),
        &[applied("1.0.0"), applied("1.0.1")],
        &known,
        PlanOptions::default(),
    )
    .unwrap();
    assert!(p.is_empty());
    assert_eq!(p.to_string(), "nothing to do: the database is at 1.0.1");
    assert_eq!((p.from, p.to), (Some(v("1.0.1")), Some(v("1.0.1"))));
}

#[test]
fn upgrade_applies_only_what_is_pending() {
    let known = [known("1.0.0"), known("1.0.1"), known("1.0.2")];
    assert_eq!(
        run(&to("1.0.2"), &[applied("1.0.0")], &known),
        ["up 1.0.1", "up 1.0.2"]
    );
}

#[test]
fn a_known_script_differing_from_an_applied_one_only_in_build_metadata_is_refused() {
    let err = plan(
        &to("1.0.2"),
        &[applied("1.0.0"), applied("1.0.1")],
        &[known("1.0.0"), known("1.0.1+build.2"), known("1.0.2")],
        PlanOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, PlanError::BuildMetadataOnly { .. }), "{err}");
    assert!(
        err.to_string().starts_with(
            "1.0.1+build.2 `s1.0.1+build.2` and the applied 1.0.1 `s1.0.1` differ only in build metadata"
        ),
        "{err}"
    );
    // The same build metadata on both sides is the same script.
    let same = plan(
        &to("1.0.2"),
        &[applied("1.0.1+build.2")],
        &[known("1.0.1+build.2"), known("1.0.2")],
        PlanOptions::default(),
    )
    .unwrap();
    assert_eq!(steps(&same), ["up 1.0.2"]);
}

#[test]
fn downgrade_runs_down_in_descending_order() {
    let known = [
        known("1.0.0"),
        known("1.0.1"),
        known("1.0.2"),
        known("1.0.10"),
    ];
    let applied = [
        applied("1.0.0"),
        applied("1.0.1"),
        applied("1.0.2"),
        applied("1.0.10"),
    ];
    let p = plan(&to("1.0.0"), &applied, &known, PlanOptions::default()).unwrap();
    assert_eq!(steps(&p), ["down 1.0.10", "down 1.0.2", "down 1.0.1"]);
    assert_eq!((p.from, p.to), (Some(v("1.0.10")), Some(v("1.0.0"))));
}

#[test]
fn downgrade_steps_come_before_upgrade_steps() {
    // 1.0.1 was added after 1.0.2 ran; going to 1.0.1 reverts 1.0.2 first, after
    // which 1.0.1 is no longer out of order.
    let known = [known("1.0.0"), known("1.0.1"), known("1.0.2")];
    assert_eq!(
        run(&to("1.0.1"), &[applied("1.0.0"), applied("1.0.2")], &known),
        ["down 1.0.2", "up 1.0.1"]
    );
}

#[test]
fn downgrade_across_unknown_and_irreversible_scripts_is_refused_naming_every_one() {
    let known = [known("1.0.0"), irreversible("1.0.1"), irreversible("1.0.2")];
    let applied = [
        applied("1.0.0"),
        applied("1.0.1"),
        applied("1.0.2"),
        applied("1.0.3"),
    ];
    let err = plan(&to("1.0.0"), &applied, &known, PlanOptions::default()).unwrap_err();
    let PlanError::CannotDowngrade {
        not_recorded,
        irreversible,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    let names = |r: &[ScriptRef]| r.iter().map(|r| r.version.to_string()).collect::<Vec<_>>();
    assert_eq!(names(not_recorded), ["1.0.3"]);
    assert_eq!(names(irreversible), ["1.0.2", "1.0.1"]);
    let msg = err.to_string();
    assert!(
        msg.starts_with("cannot downgrade the database to 1.0.0; nothing was run"),
        "{msg}"
    );
    assert!(
        msg.contains("1.0.3 `s1.0.3`") && msg.contains("1.0.2 `s1.0.2`, 1.0.1 `s1.0.1`"),
        "{msg}"
    );
}

#[test]
fn skip_irreversible_records_scripts_without_down_as_reverted_without_running_them() {
    let known = [known("1.0.0"), irreversible("1.0.1"), known("1.0.2")];
    let applied = [applied("1.0.0"), applied("1.0.1"), applied("1.0.2")];
    let options = PlanOptions {
        skip_irreversible: true,
        ..PlanOptions::default()
    };
    let p = plan(&to("1.0.0"), &applied, &known, options).unwrap();
    assert_eq!(steps(&p), ["down 1.0.2", "down 1.0.1"]);
    assert_eq!(p.steps[0].action, Action::Run);
    assert_eq!(p.steps[1].action, Action::RecordOnly);
    assert!(
        p.to_string()
            .contains("1.0.1 s1.0.1 (code) [irreversible: recorded as reverted, nothing runs]"),
        "{p}"
    );
}

#[test]
fn skip_irreversible_does_not_cover_scripts_unknown_to_this_build() {
    let options = PlanOptions {
        skip_irreversible: true,
        ..PlanOptions::default()
    };
    let err = plan(
        &to("1.0.0"),
        &[applied("1.0.0"), applied("2.0.0")],
        &[known("1.0.0")],
        options,
    )
    .unwrap_err();
    assert!(
        matches!(&err, PlanError::CannotDowngrade { not_recorded, .. } if not_recorded.len() == 1),
        "{err}"
    );
}

#[test]
fn a_downgrade_to_below_every_known_script_without_recorded_downs_is_refused_rather_than_guessed() {
    let err = plan(
        &to("1.0.0"),
        &[applied("3.0.0")],
        &[known("1.0.0")],
        PlanOptions::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains(
            "not in this build, and applied before their `down` SQL was recorded: 3.0.0 `s3.0.0`; nothing says how to revert them, and it is not guessed: run `down --to 1.0.0` with a build that has them (the application at 3.0.0 or later, whose build applied them)"
        ),
        "{err}"
    );
}

#[test]
fn unknown_applied_scripts_at_or_below_the_app_version_are_left_alone() {
    let known = [known("1.0.0"), known("1.2.0")];
    assert_eq!(
        run(&to("1.2.0"), &[applied("1.0.0"), applied("1.1.0")], &known),
        ["up 1.2.0"]
    );
}

#[test]
fn a_pending_script_below_the_highest_applied_version_is_refused_as_out_of_order() {
    let known = [known("1.0.0"), known("1.0.1"), known("1.0.2")];
    let err = plan(
        &to("1.0.2"),
        &[applied("1.0.0"), applied("1.0.2")],
        &known,
        PlanOptions::default(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        PlanError::OutOfOrder {
            pending: vec![ScriptRef {
                version: v("1.0.1"),
                name: "s1.0.1".into()
            }],
            highest_applied: v("1.0.2"),
        }
    );
    assert_eq!(
        err.to_string(),
        "1.0.1 `s1.0.1` added out of order: the database is already at 1.0.2; give it a version above 1.0.2, or allow out-of-order runs (`--allow-out-of-order`, `allow_out_of_order = true` in migrate.toml, or `Migrator::allow_out_of_order(true)`)"
    );
}

#[test]
fn out_of_order_scripts_run_in_ascending_order_when_allowed() {
    let known = [
        known("1.0.0"),
        known("1.0.1"),
        known("1.0.2"),
        known("1.0.3"),
    ];
    let options = PlanOptions {
        allow_out_of_order: true,
        ..PlanOptions::default()
    };
    let p = plan(
        &to("1.0.3"),
        &[applied("1.0.0"), applied("1.0.2")],
        &known,
        options,
    )
    .unwrap();
    assert_eq!(steps(&p), ["up 1.0.1", "up 1.0.3"]);
}

#[test]
fn known_scripts_with_the_same_version_are_an_error() {
    let err = plan(
        &to("1.0.0"),
        &[],
        &[known("1.0.0"), known("1.0.0")],
        PlanOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, PlanError::DuplicateVersion { .. }), "{err}");
}

#[test]
fn versions_that_differ_only_in_build_metadata_are_the_same_version() {
    let err = plan(
        &to("1.0.1"),
        &[],
        &[known("1.0.1+a"), known("1.0.1+b")],
        PlanOptions::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("two scripts have version 1.0.1+a"),
        "{err}"
    );
    // A known `1.0.1+b` has the applied `1.0.1`'s precedence: the planner
    // cannot tell a renamed version from a new script, so it refuses.
    assert!(matches!(
        plan(
            &to("1.0.1"),
            &[applied("1.0.1")],
            &[known("1.0.1+b")],
            PlanOptions::default()
        ),
        Err(PlanError::BuildMetadataOnly { .. })
    ));
}

#[test]
fn an_applied_sql_script_whose_checksum_changed_is_refused() {
    let mut row = applied("1.0.0");
    row.checksum = Some("aaaa".into());
    let err = plan(
        &to("1.0.0"),
        &[row.clone()],
        &[sql("1.0.0", "bbbb")],
        PlanOptions::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("migration 1.0.0 `s1.0.0` was applied but its SQL has changed"),
        "{err}"
    );
    // The same checksum is fine.
    assert!(run(&to("1.0.0"), &[row], &[sql("1.0.0", "aaaa")]).is_empty());
}

#[test]
fn up_to_a_version_applies_pending_scripts_up_to_it_and_reverts_nothing() {
    let known = [
        known("1.0.0"),
        known("1.0.1"),
        known("1.0.2"),
        known("2.0.0"),
    ];
    assert_eq!(
        run(&Target::UpTo(v("1.0.1")), &[], &known),
        ["up 1.0.0", "up 1.0.1"]
    );
    assert!(
        run(
            &Target::UpTo(v("1.0.0")),
            &[applied("1.0.0"), applied("2.0.0")],
            &known
        )
        .is_empty()
    );
}

#[test]
fn down_to_a_version_reverts_everything_above_it_and_applies_nothing() {
    let known = [
        known("1.0.0"),
        known("1.0.1"),
        known("1.0.2"),
        known("1.0.3"),
    ];
    let applied = [applied("1.0.0"), applied("1.0.1"), applied("1.0.2")];
    assert_eq!(
        run(&Target::DownTo(v("1.0.0")), &applied, &known),
        ["down 1.0.2", "down 1.0.1"]
    );
}

#[test]
fn down_steps_reverts_the_most_recent_scripts_one_by_default_as_db_migrate_does() {
    let known = [known("1.0.0"), known("1.0.1"), known("1.0.2")];
    let applied = [applied("1.0.0"), applied("1.0.1"), applied("1.0.2")];
    assert_eq!(run(&Target::DownSteps(1), &applied, &known), ["down 1.0.2"]);
    assert_eq!(
        run(&Target::DownSteps(2), &applied, &known),
        ["down 1.0.2", "down 1.0.1"]
    );
    assert_eq!(run(&Target::DownSteps(9), &applied, &known).len(), 3);
}

#[test]
fn the_plan_prints_as_a_numbered_list_with_from_and_to() {
    let known = [known("1.0.0"), known("1.0.1"), sql("1.1.0", "x")];
    let p = plan(
        &to("1.1.0"),
        &[applied("1.0.0")],
        &known,
        PlanOptions::default(),
    )
    .unwrap();
    assert_eq!(
        p.to_string(),
        "1.0.0 -> 1.1.0: 2 steps\n    1. up   1.0.1 s1.0.1 (code)\n    2. up   1.1.0 s1.1.0 (sql)"
    );
}

#[test]
fn steps_point_back_at_the_known_scripts() {
    let known = [known("2.0.0"), known("1.0.0")];
    let p = plan(&to("2.0.0"), &[], &known, PlanOptions::default()).unwrap();
    let idx: Vec<Option<usize>> = p.steps.iter().map(Step::known_index).collect();
    assert_eq!(idx, [Some(1), Some(0)]);
}

fn up_to(s: &str) -> Target {
    Target::UpTo(v(s))
}

fn refs(r: &[ScriptRef]) -> Vec<String> {
    r.iter().map(ToString::to_string).collect()
}

#[test]
fn an_upgrade_target_never_reverts_and_names_the_scripts_left_ahead_of_it() {
    let known = [known("1.0.0"), known("1.0.1")];
    let applied = [applied("1.0.0"), applied("1.0.1")];
    let p = plan(&up_to("1.0.0"), &applied, &known, PlanOptions::default()).unwrap();
    assert!(p.is_empty());
    assert_eq!(refs(&p.ahead), ["1.0.1 `s1.0.1`"]);
    assert_eq!((&p.from, &p.to), (&Some(v("1.0.1")), &Some(v("1.0.1"))));
    assert_eq!(
        p.to_string(),
        "nothing to do: the database is at 1.0.1, ahead of the target; left in place: 1.0.1 `s1.0.1`"
    );
}

#[test]
fn scripts_unknown_to_this_build_above_an_upgrade_target_are_left_in_place_not_refused() {
    let known = [known("1.0.0")];
    let applied = [applied("1.0.0"), applied("1.0.1"), applied("1.1.0")];
    let p = plan(&up_to("1.0.0"), &applied, &known, PlanOptions::default()).unwrap();
    assert!(p.is_empty());
    assert_eq!(refs(&p.ahead), ["1.1.0 `s1.1.0`", "1.0.1 `s1.0.1`"]);
}

#[test]
fn an_upgrade_target_still_applies_what_is_pending_below_it_while_the_database_is_ahead() {
    let known = [known("1.0.0"), known("1.0.1"), known("2.0.0")];
    let history = [applied("1.0.0"), applied("1.0.1"), applied("2.0.0")];
    // Nothing pending: nothing runs, and 2.0.0 stays.
    let p = plan(&up_to("1.5.0"), &history, &known, PlanOptions::default()).unwrap();
    assert!(p.is_empty() && refs(&p.ahead) == ["2.0.0 `s2.0.0`"]);
    // A pending script below the top is still out of order.
    let err = plan(
        &up_to("1.5.0"),
        &[applied("1.0.0"), applied("2.0.0")],
        &known,
        PlanOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, PlanError::OutOfOrder { .. }), "{err}");
}

#[test]
fn known_scripts_above_the_target_are_named_as_not_run() {
    let known = [known("1.0.0"), known("1.1.0-1"), known("1.1.0")];
    for target in [to("1.0.0"), up_to("1.0.0")] {
        let p = plan(&target, &[], &known, PlanOptions::default()).unwrap();
        assert_eq!(steps(&p), ["up 1.0.0"]);
        assert_eq!(
            refs(&p.above_target),
            ["1.1.0-1 `s1.1.0-1`", "1.1.0 `s1.1.0`"]
        );
    }
}

#[test]
fn a_script_this_build_lacks_is_reverted_with_the_down_sql_recorded_when_it_was_applied() {
    let known = [known("1.0.0")];
    let applied = [
        applied("1.0.0"),
        recorded(
            "1.0.1",
            RecordedDown::Sql {
                sql: "ALTER TABLE users DROP COLUMN email;".into(),
                transactional: true,
            },
        ),
    ];
    let p = plan(&to("1.0.0"), &applied, &known, PlanOptions::default()).unwrap();
    assert_eq!(steps(&p), ["down 1.0.1"]);
    assert_eq!(
        p.steps[0].origin,
        Origin::Recorded {
            sql: "ALTER TABLE users DROP COLUMN email;".into(),
            transactional: true
        }
    );
    assert_eq!(
        (p.steps[0].kind, p.steps[0].action, p.steps[0].known_index()),
        (ScriptKind::Sql, Action::Run, None)
    );
    assert!(
        p.to_string().ends_with(
            "down 1.0.1 s1.0.1 (sql) [not in this build: runs the down SQL recorded when it was applied]"
        ),
        "{p}"
    );
}

#[test]
fn a_downgrade_across_code_scripts_this_build_lacks_is_refused_naming_the_build_that_can_revert_them()
 {
    let known = [known("1.0.0")];
    let applied = [
        applied("1.0.0"),
        recorded(
            "1.0.1",
            RecordedDown::Sql {
                sql: "DROP TABLE a;".into(),
                transactional: false,
            },
        ),
        recorded("1.1.0", RecordedDown::Code),
        recorded("1.2.0", RecordedDown::Code),
    ];
    let err = plan(&to("1.0.0"), &applied, &known, PlanOptions::default()).unwrap_err();
    let PlanError::CannotDowngrade { needs_build, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(refs(needs_build), ["1.2.0 `s1.2.0`", "1.1.0 `s1.1.0`"]);
    assert!(
        err.to_string().contains(
            "code scripts this build does not have: 1.2.0 `s1.2.0`, 1.1.0 `s1.1.0`; their `down` is compiled into the build that applied them: run `down --to 1.0.0` with a build that has them (the application at 1.2.0 or later, whose build applied them)"
        ),
        "{err}"
    );
}

#[test]
fn a_recorded_sql_migration_without_down_is_irreversible_unless_skipped() {
    let known = [known("1.0.0")];
    let applied = [
        applied("1.0.0"),
        recorded("1.0.1", RecordedDown::Irreversible),
    ];
    let err = plan(&to("1.0.0"), &applied, &known, PlanOptions::default()).unwrap_err();
    assert!(
        matches!(&err, PlanError::CannotDowngrade { irreversible, .. } if irreversible.len() == 1),
        "{err}"
    );
    let options = PlanOptions {
        skip_irreversible: true,
        ..PlanOptions::default()
    };
    let p = plan(&to("1.0.0"), &applied, &known, options).unwrap();
    assert_eq!(steps(&p), ["down 1.0.1"]);
    assert_eq!(p.steps[0].action, Action::RecordOnly);
}

#[test]
fn a_script_reverted_without_running_is_recorded_as_applied_without_running_its_up_again() {
    let known = [known("1.0.0"), irreversible("1.0.1"), known("1.0.2")];
    let history = [applied("1.0.0"), reverted_without_running("1.0.1")];
    // Not applied: the database is at 1.0.0.
    let p = plan(&up_to("1.0.0"), &history, &known, PlanOptions::default()).unwrap();
    assert!(p.is_empty() && p.from == Some(v("1.0.0")), "{p}");
    // Moving up past it records it, and runs what is really pending.
    let p = plan(&up_to("1.0.2"), &history, &known, PlanOptions::default()).unwrap();
    assert_eq!(steps(&p), ["up 1.0.1", "up 1.0.2"]);
    assert_eq!(
        (p.steps[0].action, p.steps[1].action),
        (Action::RecordOnly, Action::Run)
    );
    assert!(
        p.to_string().contains("[recorded as applied, not run"),
        "{p}"
    );
    assert!(p.warnings()[0].contains("its changes are still there"));
}

#[test]
fn a_script_reverted_without_running_whose_sql_changed_is_refused_not_recorded() {
    let known = [known("1.0.0"), sql("1.0.1", "new")];
    let kept = AppliedScript {
        checksum: Some("old".into()),
        ..reverted_without_running("1.0.1")
    };
    let err = plan(
        &up_to("1.0.1"),
        &[applied("1.0.0"), kept],
        &known,
        PlanOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, PlanError::ChecksumMismatch { .. }), "{err}");
}

#[test]
fn recording_a_script_reverted_without_running_is_never_out_of_order() {
    let known = [known("1.0.0"), irreversible("1.0.1"), known("1.0.2")];
    let history = [
        applied("1.0.0"),
        reverted_without_running("1.0.1"),
        applied("1.0.2"),
    ];
    let p = plan(&up_to("1.0.2"), &history, &known, PlanOptions::default()).unwrap();
    assert_eq!(steps(&p), ["up 1.0.1"]);
    assert_eq!(p.steps[0].action, Action::RecordOnly);
}

fn arb_version() -> impl Strategy<Value = Version> {
    (
        0u64..3,
        0u64..3,
        0u64..12,
        prop::option::of(prop_oneof![
            Just("alpha"),
            Just("alpha.1"),
            Just("rc.1"),
            Just("rc.10")
        ]),
    )
        .prop_map(|(a, b, c, pre)| {
            let s = match pre {
                Some(p) => format!("{a}.{b}.{c}-{p}"),
                None => format!("{a}.{b}.{c}"),
            };
            v(&s)
        })
}

/// Applies a plan to a set of applied versions, as an executor would.
fn execute(plan: &Plan, applied: &mut std::collections::BTreeSet<Version>) {
    for s in &plan.steps {
        match s.direction {
            Direction::Up => assert!(
                applied.insert(s.version.clone()),
                "{} applied twice",
                s.version
            ),
            Direction::Down => assert!(
                applied.remove(&s.version),
                "{} reverted but not applied",
                s.version
            ),
        }
    }
}

proptest! {
    #[test]
    fn planning_again_after_executing_a_plan_yields_an_empty_plan_and_the_known_scripts_up_to_the_target(
        versions in prop::collection::btree_set(arb_version(), 0..25),
        applied_mask in prop::collection::vec(any::<bool>(), 25),
        target in arb_version(),
    ) {
        let known: Vec<KnownScript> = versions.iter().map(|v| known(&v.to_string())).collect();
        let mut done: std::collections::BTreeSet<Version> = versions
            .iter()
            .zip(&applied_mask)
            .filter(|(_, m)| **m)
            .map(|(v, _)| v.clone())
            .collect();
        let rows = |set: &std::collections::BTreeSet<Version>| {
            set.iter().map(|v| applied(&v.to_string())).collect::<Vec<_>>()
        };
        let options = PlanOptions { allow_out_of_order: true, ..PlanOptions::default() };
        let target = Target::Version(target);

        let first = plan(&target, &rows(&done), &known, options).unwrap();
        execute(&first, &mut done);
        let second = plan(&target, &rows(&done), &known, options).unwrap();
        prop_assert!(second.is_empty(), "second plan: {second}");

        let Target::Version(a) = &target else { unreachable!() };
        let expected: std::collections::BTreeSet<Version> = versions.iter().filter(|v| *v <= a).cloned().collect();
        prop_assert_eq!(&done, &expected);
        prop_assert_eq!(first.to, done.last().cloned());
    }

    #[test]
    fn an_upgrade_target_never_plans_a_down_whatever_the_database_holds(
        versions in prop::collection::btree_set(arb_version(), 0..25),
        applied_mask in prop::collection::vec(any::<bool>(), 25),
        unknown in prop::collection::btree_set(arb_version(), 0..5),
        target in arb_version(),
    ) {
        let known: Vec<KnownScript> = versions.iter().map(|v| known(&v.to_string())).collect();
        let mut rows: Vec<AppliedScript> = versions
            .iter()
            .zip(&applied_mask)
            .filter(|(_, m)| **m)
            .map(|(v, _)| applied(&v.to_string()))
            .collect();
        rows.extend(unknown.iter().filter(|u| !versions.contains(*u)).map(|v| applied(&v.to_string())));
        let options = PlanOptions { allow_out_of_order: true, ..PlanOptions::default() };
        let p = plan(&Target::UpTo(target.clone()), &rows, &known, options).unwrap();
        prop_assert!(p.steps.iter().all(|s| s.direction == Direction::Up), "{p}");
        let ahead: Vec<Version> = rows.iter().filter(|r| r.version > target).map(|r| r.version.clone()).collect();
        prop_assert_eq!(p.ahead.len(), ahead.len());
        prop_assert!(p.ahead.iter().all(|a| a.version > target));
    }

    #[test]
    fn upgrades_from_a_prefix_never_need_out_of_order_and_run_in_ascending_order(
        versions in prop::collection::btree_set(arb_version(), 0..25),
        applied_count in 0usize..25,
        target in arb_version(),
    ) {
        let known: Vec<KnownScript> = versions.iter().map(|v| known(&v.to_string())).collect();
        let applied: Vec<AppliedScript> = versions.iter().take(applied_count).map(|v| applied(&v.to_string())).collect();
        let p = plan(&Target::UpTo(target.clone()), &applied, &known, PlanOptions::default()).unwrap();
        let highest = applied.last().map(|a| a.version.clone());
        let expected: Vec<String> = versions
            .iter()
            .filter(|v| **v <= target && highest.as_ref().is_none_or(|h| *v > h))
            .map(|v| format!("up {v}"))
            .collect();
        prop_assert_eq!(steps(&p), expected);
    }

    #[test]
    fn with_default_options_the_planner_either_refuses_or_reaches_exactly_the_target(
        versions in prop::collection::btree_set(arb_version(), 0..20),
        applied_mask in prop::collection::vec(any::<bool>(), 20),
        irreversible_mask in prop::collection::vec(any::<bool>(), 20),
        target in arb_version(),
    ) {
        let known: Vec<KnownScript> = versions
            .iter()
            .zip(&irreversible_mask)
            .map(|(v, irr)| KnownScript { reversible: !irr, ..known(&v.to_string()) })
            .collect();
        let mut done: std::collections::BTreeSet<Version> =
            versions.iter().zip(&applied_mask).filter(|(_, m)| **m).map(|(v, _)| v.clone()).collect();
        let rows: Vec<AppliedScript> = done.iter().map(|v| applied(&v.to_string())).collect();
        match plan(&Target::Version(target.clone()), &rows, &known, PlanOptions::default()) {
            Ok(p) => {
                execute(&p, &mut done);
                let expected: std::collections::BTreeSet<Version> =
                    versions.iter().filter(|v| **v <= target).cloned().collect();
                prop_assert_eq!(done, expected);
                prop_assert!(p.steps.iter().all(|s| s.action == Action::Run));
            }
            Err(PlanError::OutOfOrder { pending, highest_applied }) => {
                prop_assert!(pending.iter().all(|p| p.version < highest_applied));
            }
            Err(PlanError::CannotDowngrade { irreversible, needs_build, not_recorded, .. }) => {
                prop_assert!(needs_build.is_empty() && not_recorded.is_empty());
                prop_assert!(irreversible.iter().all(|r| r.version > target));
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }
}
