use proptest::prelude::*;

use super::*;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn known(s: &str) -> KnownScript {
    KnownScript {
        version: v(s),
        name: format!("s{s}"),
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
        checksum: Some(checksum.into()),
        ..known(s)
    }
}

fn applied(s: &str) -> AppliedScript {
    AppliedScript {
        version: v(s),
        name: format!("s{s}"),
        checksum: None,
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
        unknown,
        irreversible,
        ..
    } = &err
    else {
        panic!("{err}")
    };
    let names = |r: &[ScriptRef]| r.iter().map(|r| r.version.to_string()).collect::<Vec<_>>();
    assert_eq!(names(unknown), ["1.0.3"]);
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
        matches!(&err, PlanError::CannotDowngrade { unknown, .. } if unknown.len() == 1),
        "{err}"
    );
}

#[test]
fn a_database_ahead_of_every_known_script_is_refused_rather_than_ignored() {
    let err = plan(
        &to("1.0.0"),
        &[applied("3.0.0")],
        &[known("1.0.0")],
        PlanOptions::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("applied but unknown to this build: 3.0.0"),
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
        "1.0.1 `s1.0.1` added out of order: the database is already at 1.0.2; give it a version above 1.0.2, or allow out-of-order runs"
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
    let idx: Vec<usize> = p.steps.iter().map(|s| s.known_index).collect();
    assert_eq!(idx, [1, 0]);
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
        let options = PlanOptions { allow_out_of_order: true, skip_irreversible: false };
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
            Err(PlanError::CannotDowngrade { irreversible, unknown, .. }) => {
                prop_assert!(unknown.is_empty());
                prop_assert!(irreversible.iter().all(|r| r.version > target));
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }
}
