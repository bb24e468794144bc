//! The planner's decision table, one test per row, then a simulation of two peers running
//! rounds against each other with random edits in between (no sockets, no sleeps).

use super::*;
use minibox::protocol::md5::Md5;
use minibox::protocol::Kind;
use testkit::Rng;

const T0: i64 = 1_795_600_800_000_000_000; // 2026-11-25T10:00:00Z

/// A file version whose contents are `label` (its MD5 is the label's).
fn file(label: &str, mtime_ns: i64) -> Version {
    Version::file(
        Md5::of(label.as_bytes()),
        label.len() as u64,
        0o644,
        mtime_ns,
    )
}

fn index(items: &[(&str, Version)]) -> Index {
    items
        .iter()
        .map(|(p, v)| ((*p).to_string(), v.clone()))
        .collect()
}

fn agreement(items: &[(&str, Version)]) -> Agreement {
    items
        .iter()
        .map(|(p, v)| {
            (
                (*p).to_string(),
                Agreed {
                    version: v.clone(),
                    since: 1,
                },
            )
        })
        .collect()
}

/// Plans for box1 pulling from box2.
fn plan_for(local: &Index, remote: &Index, agreed: &Agreement) -> Plan {
    plan_seen(local, remote, agreed, None)
}

/// Plans for box1 pulling from box2, knowing what box2 last saw of box1.
fn plan_seen(local: &Index, remote: &Index, agreed: &Agreement, seen: Option<&Seen>) -> Plan {
    plan(&Inputs {
        local,
        remote,
        agreed: &Arc::new(agreed.clone()),
        seen,
        busy: &BTreeSet::new(),
        local_name: "box1",
        remote_name: "box2",
    })
}

/// Plans for box2 pulling from box1: the mirror image.
fn plan_on_box2(local: &Index, remote: &Index, agreed: &Agreement) -> Plan {
    plan(&Inputs {
        local,
        remote,
        agreed: &Arc::new(agreed.clone()),
        seen: None,
        busy: &BTreeSet::new(),
        local_name: "box2",
        remote_name: "box1",
    })
}

fn download(path: &str, v: &Version) -> Action {
    Action::Download {
        path: path.into(),
        to: path.into(),
        version: v.clone(),
    }
}

#[test]
fn unchanged_on_both_sides_does_nothing() {
    let v = file("aa", T0);
    let both = index(&[("a", v.clone()), ("d", Version::dir(0o755))]);
    let agreed = agreement(&[("a", v), ("d", Version::dir(0o755))]);
    let p = plan_for(&both, &both, &agreed);
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    let settled = p.settle(&both, &both, None, 99);
    assert_eq!(*settled, agreed, "a quiet round keeps the state as it is");
    assert!(Arc::ptr_eq(&settled, &p.base), "and does not even copy it");
}

#[test]
fn new_on_the_peer_is_downloaded_and_new_here_is_left_for_the_peer() {
    let theirs = file("bb", T0);
    let ours = file("cc", T0);
    let local = index(&[("mine", ours)]);
    let remote = index(&[("d", Version::dir(0o750)), ("d/theirs", theirs.clone())]);
    let p = plan_for(&local, &remote, &Agreement::new());
    assert_eq!(
        p.actions,
        vec![
            Action::MakeDir {
                path: "d".into(),
                mode: 0o750
            },
            download("d/theirs", &theirs),
        ]
    );
    let after = apply(&p.actions, &local);
    let agreed = p.settle(&after, &remote, None, 7);
    assert_eq!(agreed["d/theirs"].version, theirs);
    assert_eq!(agreed["d/theirs"].since, 7);
    assert!(
        !agreed.contains_key("mine"),
        "the peer does not have it yet"
    );
}

/// A file version of `size` bytes (its MD5 made up from the size).
fn sized(size: u64) -> Version {
    Version::file(Md5::of(&size.to_be_bytes()), size, 0o644, T0)
}

#[test]
fn small_files_are_downloaded_first_in_path_order_then_large_ones_smallest_first() {
    let (small_a, small_z) = (sized(10), sized(IN_MEMORY));
    let (large, larger) = (sized(IN_MEMORY + 1), sized(15 << 20));
    let remote = index(&[
        ("a", larger.clone()),
        ("b", small_z.clone()),
        ("c", large.clone()),
        ("z", small_a.clone()),
    ]);
    let p = plan_for(&Index::new(), &remote, &Agreement::new());
    assert_eq!(
        p.actions,
        vec![
            download("b", &small_z),
            download("z", &small_a),
            download("c", &large),
            download("a", &larger),
        ]
    );
}

#[test]
fn changed_on_the_peer_only_is_downloaded() {
    let old = file("aa", T0);
    let new = file("bb", T0 + 5);
    let p = plan_for(
        &index(&[("a", old.clone())]),
        &index(&[("a", new.clone())]),
        &agreement(&[("a", old)]),
    );
    assert_eq!(p.actions, vec![download("a", &new)]);
}

#[test]
fn changed_here_only_waits_for_the_peer() {
    let old = file("aa", T0);
    let new = file("bb", T0 + 5);
    let p = plan_for(
        &index(&[("a", new)]),
        &index(&[("a", old.clone())]),
        &agreement(&[("a", old.clone())]),
    );
    assert!(p.actions.is_empty());
    assert_eq!(
        p.settle(
            &index(&[("a", file("bb", T0 + 5))]),
            &index(&[("a", old.clone())]),
            None,
            9
        )["a"]
            .version,
        old,
        "the old agreement stays until both hold the same"
    );
}

#[test]
fn changed_on_both_sides_the_same_way_is_no_conflict() {
    let old = file("aa", T0);
    let new = file("bb", T0 + 5);
    let both = index(&[("a", new.clone())]);
    let p = plan_for(&both, &both, &agreement(&[("a", old)]));
    assert!(p.actions.is_empty() && p.conflicts.is_empty());
    assert_eq!(p.settle(&both, &both, None, 9)["a"].version, new);
}

#[test]
fn same_contents_with_different_mtimes_on_first_sync_is_no_conflict() {
    let ours = file("aa", T0);
    let theirs = file("aa", T0 + 1);
    let p = plan_for(
        &index(&[("a", ours.clone())]),
        &index(&[("a", theirs.clone())]),
        &Agreement::new(),
    );
    assert!(p.conflicts.is_empty());
    assert_eq!(
        p.actions,
        vec![Action::SetMeta {
            path: "a".into(),
            version: ours,
            mode: None,
            mtime_ns: Some(theirs.mtime_ns)
        }],
        "the newer mtime is taken"
    );
}

#[test]
fn a_conflict_keeps_the_newer_under_the_name_and_the_older_as_one_copy_on_both_sides() {
    let base = file("00", T0);
    let ours = file("11", T0 + 60_000_000_000); // box1 edited later: it wins
    let theirs = file("22", T0 + 1_000_000_000);
    let copy = "report.conflict-box2-20261125-100001.txt";

    // On box1 (the winner): keep ours, fetch box2's version under the conflict name.
    let p1 = plan_for(
        &index(&[("report.txt", ours.clone())]),
        &index(&[("report.txt", theirs.clone())]),
        &agreement(&[("report.txt", base.clone())]),
    );
    assert_eq!(p1.conflicts, vec!["report.txt".to_string()]);
    assert_eq!(
        p1.actions,
        vec![Action::Download {
            path: "report.txt".into(),
            to: copy.into(),
            version: theirs.clone()
        }]
    );

    // On box2 (the loser), deciding alone from the mirror-image facts: rename ours to the same
    // name, then take the winner.
    let p2 = plan_on_box2(
        &index(&[("report.txt", theirs.clone())]),
        &index(&[("report.txt", ours.clone())]),
        &agreement(&[("report.txt", base)]),
    );
    assert_eq!(
        p2.actions,
        vec![
            Action::Rename {
                from: "report.txt".into(),
                to: copy.into(),
                version: theirs.clone()
            },
            download("report.txt", &ours),
        ]
    );
    // Both end with the same two files.
    let end1 = apply(&p1.actions, &index(&[("report.txt", ours.clone())]));
    let end2 = apply(&p2.actions, &index(&[("report.txt", theirs)]));
    assert_eq!(end1, end2);
}

#[test]
fn the_loser_that_pulls_second_does_not_make_a_second_copy() {
    // box1 won and already fetched box2's version as the copy; box2 now pulls from box1.
    let base = file("00", T0);
    let winner = file("11", T0 + 2_000_000_000);
    let loser = file("22", T0 + 1_000_000_000);
    let copy = conflict_name("a.txt", "box2", loser.mtime_ns, None);
    let p = plan_on_box2(
        &index(&[("a.txt", loser.clone())]),
        &index(&[("a.txt", winner.clone()), (&copy, loser.clone())]),
        &agreement(&[("a.txt", base)]),
    );
    assert_eq!(
        p.actions,
        vec![
            Action::Rename {
                from: "a.txt".into(),
                to: copy.clone(),
                version: loser
            },
            download("a.txt", &winner),
        ],
        "the rename makes the copy; it is not downloaded as well"
    );
}

#[test]
fn equal_mtimes_are_settled_by_the_larger_md5() {
    let (a, b) = (file("aa", T0), file("bb", T0));
    // Ours has the smaller MD5, so ours loses.
    let (ours, theirs) = if a.md5 < b.md5 { (a, b) } else { (b, a) };
    let p = plan_for(
        &index(&[("x", ours.clone())]),
        &index(&[("x", theirs.clone())]),
        &Agreement::new(),
    );
    assert!(matches!(&p.actions[0], Action::Rename { to, .. } if to.contains("conflict-box1")));
}

#[test]
fn deleted_on_the_peer_and_unchanged_here_is_deleted_here() {
    let v = file("aa", T0);
    let p = plan_for(
        &index(&[("a", v.clone())]),
        &Index::new(),
        &agreement(&[("a", v.clone())]),
    );
    assert_eq!(
        p.actions,
        vec![Action::Delete {
            path: "a".into(),
            version: v
        }]
    );
    assert!(p.settle(&Index::new(), &Index::new(), None, 3).is_empty());
}

#[test]
fn a_file_renamed_on_the_peer_is_renamed_here_with_the_peer_s_mtime_and_bits() {
    let v = file("contents", T0);
    let renamed = Version {
        mode: 0o600,
        mtime_ns: T0 + 5,
        ..v.clone()
    };
    let p = plan_for(
        &index(&[("old.txt", v.clone())]),
        &index(&[("new.txt", renamed.clone())]),
        &agreement(&[("old.txt", v.clone())]),
    );
    assert_eq!(
        p.actions,
        vec![Action::Move {
            from: "old.txt".into(),
            to: "new.txt".into(),
            version: renamed.clone()
        }]
    );
    // The box ends as a deletion and a download would have left it.
    let after = apply(&p.actions, &index(&[("old.txt", v)]));
    assert_eq!(after, index(&[("new.txt", renamed)]));
}

#[test]
fn a_file_moved_into_a_new_folder_out_of_one_that_goes_is_moved_between_the_two() {
    let v = file("contents", T0);
    let dir = Version::dir(0o755);
    let p = plan_for(
        &index(&[("a", dir.clone()), ("a/f", v.clone())]),
        &index(&[("b", dir.clone()), ("b/f", v.clone())]),
        &agreement(&[("a", dir.clone()), ("a/f", v.clone())]),
    );
    assert_eq!(
        p.actions,
        vec![
            Action::MakeDir {
                path: "b".into(),
                mode: 0o755
            },
            Action::Move {
                from: "a/f".into(),
                to: "b/f".into(),
                version: v.clone()
            },
            Action::RemoveDir { path: "a".into() },
        ]
    );
}

#[test]
fn only_a_file_gone_there_and_unchanged_here_pairs_with_a_new_one_of_the_same_contents() {
    let (v, w) = (file("contents", T0), file("other", T0));
    let base = agreement(&[("old", v.clone()), ("kept", v.clone())]);
    // Changed here: the change wins, it stays; the new file is downloaded.
    let changed_here = plan_for(
        &index(&[("old", w.clone()), ("kept", v.clone())]),
        &index(&[("new", v.clone()), ("kept", v.clone())]),
        &base,
    );
    assert_eq!(changed_here.actions, vec![download("new", &v)]);
    // Other contents: a deletion and a download.
    let other = plan_for(
        &index(&[("old", v.clone()), ("kept", v.clone())]),
        &index(&[("new", w.clone()), ("kept", v.clone())]),
        &base,
    );
    assert!(matches!(other.actions[0], Action::Delete { .. }));
    assert_eq!(other.actions[1], download("new", &w));
    // A copy (the original stays on the peer): nothing is gone, so a download (the round
    // copies it from this box).
    let copied = plan_for(
        &index(&[("old", v.clone()), ("kept", v.clone())]),
        &index(&[("old", v.clone()), ("new", v.clone()), ("kept", v.clone())]),
        &base,
    );
    assert_eq!(copied.actions, vec![download("new", &v)]);
}

#[test]
fn two_files_of_the_same_contents_renamed_pair_one_to_one_in_path_order() {
    let v = file("same", T0);
    let p = plan_for(
        &index(&[("a1", v.clone()), ("a2", v.clone())]),
        &index(&[("b1", v.clone()), ("b2", v.clone()), ("b3", v.clone())]),
        &agreement(&[("a1", v.clone()), ("a2", v.clone())]),
    );
    let mv = |from: &str, to: &str| Action::Move {
        from: from.into(),
        to: to.into(),
        version: v.clone(),
    };
    assert_eq!(
        p.actions,
        vec![mv("a1", "b1"), mv("a2", "b2"), download("b3", &v)]
    );
}

#[test]
fn deleted_on_the_peer_and_changed_here_is_kept() {
    let old = file("aa", T0);
    let p = plan_for(
        &index(&[("a", file("bb", T0 + 1))]),
        &Index::new(),
        &agreement(&[("a", old)]),
    );
    assert!(
        p.actions.is_empty(),
        "the change wins; the peer will pull it back"
    );
}

#[test]
fn deleted_here_and_changed_on_the_peer_is_downloaded_again() {
    let new = file("bb", T0 + 1);
    let p = plan_for(
        &Index::new(),
        &index(&[("a", new.clone())]),
        &agreement(&[("a", file("aa", T0))]),
    );
    assert_eq!(p.actions, vec![download("a", &new)]);
}

#[test]
fn deleted_here_and_unchanged_on_the_peer_waits_for_the_peer() {
    let v = file("aa", T0);
    let p = plan_for(
        &Index::new(),
        &index(&[("a", v.clone())]),
        &agreement(&[("a", v)]),
    );
    assert!(p.actions.is_empty(), "not brought back");
}

#[test]
fn deleted_on_both_sides_is_forgotten() {
    let v = file("aa", T0);
    let p = plan_for(&Index::new(), &Index::new(), &agreement(&[("a", v)]));
    assert!(p.actions.is_empty());
    assert!(p.settle(&Index::new(), &Index::new(), None, 3).is_empty());
}

#[test]
fn a_folder_deleted_on_the_peer_goes_deepest_first() {
    let v = file("aa", T0);
    let tree = [
        ("d", Version::dir(0o755)),
        ("d/e", Version::dir(0o755)),
        ("d/e/f", v.clone()),
    ];
    let p = plan_for(&index(&tree), &Index::new(), &agreement(&tree));
    assert_eq!(
        p.actions,
        vec![
            Action::Delete {
                path: "d/e/f".into(),
                version: v
            },
            Action::RemoveDir { path: "d/e".into() },
            Action::RemoveDir { path: "d".into() },
        ]
    );
}

#[test]
fn a_folder_deleted_on_the_peer_but_holding_a_new_file_here_stays() {
    let v = file("aa", T0);
    let tree = [("d", Version::dir(0o755)), ("d/old", v.clone())];
    let mut local = index(&tree);
    local.insert("d/new".into(), file("nn", T0 + 1));
    let p = plan_for(&local, &Index::new(), &agreement(&tree));
    assert_eq!(
        p.actions,
        vec![Action::Delete {
            path: "d/old".into(),
            version: v
        }],
        "the unchanged file goes, the folder stays for the new one"
    );
}

#[test]
fn empty_folders_are_synced_and_their_deletion_too() {
    let d = Version::dir(0o700);
    let p = plan_for(
        &Index::new(),
        &index(&[("empty", d.clone())]),
        &Agreement::new(),
    );
    assert_eq!(
        p.actions,
        vec![Action::MakeDir {
            path: "empty".into(),
            mode: 0o700
        }]
    );
    let p = plan_for(
        &index(&[("empty", d.clone())]),
        &Index::new(),
        &agreement(&[("empty", d)]),
    );
    assert_eq!(
        p.actions,
        vec![Action::RemoveDir {
            path: "empty".into()
        }]
    );
}

#[test]
fn permission_only_changes_move_no_data() {
    let v = file("aa", T0);
    let mut chmodded = v.clone();
    chmodded.mode = 0o600;
    let p = plan_for(
        &index(&[("a", v.clone())]),
        &index(&[("a", chmodded)]),
        &agreement(&[("a", v.clone())]),
    );
    assert_eq!(
        p.actions,
        vec![Action::SetMeta {
            path: "a".into(),
            version: v.clone(),
            mode: Some(0o600),
            mtime_ns: None
        }]
    );
    // And a folder's.
    let p = plan_for(
        &index(&[("d", Version::dir(0o755))]),
        &index(&[("d", Version::dir(0o700))]),
        &agreement(&[("d", Version::dir(0o755))]),
    );
    assert!(matches!(
        &p.actions[..],
        [Action::SetMeta {
            mode: Some(0o700),
            mtime_ns: None,
            ..
        }]
    ));
}

#[test]
fn metadata_changed_on_both_sides_is_merged_field_by_field() {
    let base = file("aa", T0);
    let mut ours = base.clone();
    ours.mode = 0o600; // we changed the bits
    let mut theirs = base.clone();
    theirs.mtime_ns = T0 + 9; // they touched it
    let p = plan_for(
        &index(&[("a", ours.clone())]),
        &index(&[("a", theirs)]),
        &agreement(&[("a", base)]),
    );
    assert_eq!(
        p.actions,
        vec![Action::SetMeta {
            path: "a".into(),
            version: ours,
            mode: None,
            mtime_ns: Some(T0 + 9)
        }]
    );
}

#[test]
fn first_sync_with_no_agreed_state_takes_the_union() {
    let same = file("ss", T0);
    let a = file("aa", T0);
    let b = file("bb", T0);
    let p = plan_for(
        &index(&[("same", same.clone()), ("only-here", a)]),
        &index(&[("same", same), ("only-there", b.clone())]),
        &Agreement::new(),
    );
    assert_eq!(p.actions, vec![download("only-there", &b)]);
}

#[test]
fn a_folder_beats_a_file_of_the_same_name() {
    let f = file("ff", T0 + 5);
    // Here a file, there a folder with a file in it: ours becomes the conflict copy.
    let p = plan_for(
        &index(&[("x", f.clone())]),
        &index(&[("x", Version::dir(0o755)), ("x/in", file("ii", T0))]),
        &Agreement::new(),
    );
    let copy = conflict_name("x", "box1", f.mtime_ns, None);
    assert_eq!(
        p.actions,
        vec![
            Action::Rename {
                from: "x".into(),
                to: copy,
                version: f.clone()
            },
            Action::MakeDir {
                path: "x".into(),
                mode: 0o755
            },
            download("x/in", &file("ii", T0)),
        ]
    );
    // The other way round: keep our folder, fetch their file as the copy.
    let p = plan_for(
        &index(&[("x", Version::dir(0o755)), ("x/in", file("ii", T0))]),
        &index(&[("x", f.clone())]),
        &Agreement::new(),
    );
    assert_eq!(
        p.actions,
        vec![Action::Download {
            path: "x".into(),
            to: conflict_name("x", "box2", f.mtime_ns, None).into(),
            version: f
        }]
    );
}

#[test]
fn a_file_that_replaced_an_untouched_folder_wins() {
    let tree = [("x", Version::dir(0o755)), ("x/in", file("ii", T0))];
    let f = file("ff", T0 + 5);
    let p = plan_for(
        &index(&tree),
        &index(&[("x", f.clone())]),
        &agreement(&tree),
    );
    assert_eq!(
        p.actions,
        vec![
            Action::Delete {
                path: "x/in".into(),
                version: file("ii", T0)
            },
            Action::RemoveDir { path: "x".into() },
            download("x", &f),
        ]
    );
}

#[test]
fn busy_paths_and_unreadable_folders_are_left_alone() {
    let v = file("aa", T0);
    let busy: BTreeSet<String> = ["a".to_string()].into();
    let p = plan(&Inputs {
        local: &index(&[("locked", Version::dir(0o000))]),
        remote: &index(&[
            ("a", v.clone()),
            ("locked", Version::dir(0o000)),
            ("locked/x", v),
        ]),
        agreed: &Arc::default(),
        seen: None,
        busy: &busy,
        local_name: "box1",
        remote_name: "box2",
    });
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(p.held.len(), 2);
}

#[test]
fn conflict_names_keep_the_extension_and_the_folder() {
    let t = T0 + 15 * 60 * 1_000_000_000;
    assert_eq!(
        conflict_name("report.txt", "box2", t, None),
        "report.conflict-box2-20261125-101500.txt"
    );
    assert_eq!(
        conflict_name("a/b.c/notes", "box1", t, None),
        "a/b.c/notes.conflict-box1-20261125-101500"
    );
    assert_eq!(
        conflict_name(".bashrc", "x", t, Some("abcd")),
        ".bashrc.conflict-x-20261125-101500-abcd"
    );
    assert_eq!(
        conflict_name("a.tar.gz", "my box/../x", t, None),
        "a.tar.conflict-my_box_.._x-20261125-101500.gz"
    );
    assert!(
        minibox::protocol::name::check_name(&conflict_name("a.tar.gz", "../..", t, None)).is_ok()
    );
}

#[test]
fn a_taken_conflict_name_gets_a_tag() {
    let base = file("00", T0);
    let ours = file("11", T0 + 2);
    let theirs = file("22", T0 + 1);
    let taken = conflict_name("a", "box2", theirs.mtime_ns, None);
    let p = plan_for(
        &index(&[("a", ours), (&taken, file("zz", T0))]),
        &index(&[("a", theirs.clone())]),
        &agreement(&[("a", base)]),
    );
    assert_eq!(
        p.actions,
        vec![Action::Download {
            path: "a".into(),
            to: conflict_name(
                "a",
                "box2",
                theirs.mtime_ns,
                Some(&theirs.md5.unwrap().to_string()[..8])
            )
            .into(),
            version: theirs
        }]
    );
}

#[test]
fn the_fold_learns_what_the_peer_agreed_on() {
    // box1 created `a`; box2 pulled it in its last round (seen). box1 then edited it. Without the
    // fold this looks like a conflict (no stored agreement); with it, a plain local edit.
    let v1 = file("11", T0);
    let v2 = file("22", T0 + 1);
    let seen = Seen {
        listed: 10,
        committed: 11,
        entries: index(&[("a", v1.clone())]),
    };
    let p = plan_seen(
        &index(&[("a", v2)]),
        &index(&[("a", v1.clone())]),
        &Agreement::new(),
        Some(&seen),
    );
    assert!(p.actions.is_empty() && p.conflicts.is_empty(), "{p:?}");
    assert_eq!(p.base["a"].version, v1);
}

#[test]
fn a_delete_the_peer_could_not_know_about_brings_the_file_back() {
    // box2 made `a`; box1 pulled it (agreed at 5) and deleted it before box2 saw it here. box2's
    // next round (listed at 8) saw no `a` here and kept its own. Waiting would never end: fetch.
    let v = file("11", T0);
    let seen = Seen {
        listed: 8,
        committed: 9,
        entries: Index::new(),
    };
    let agreed = Agreement::from([(
        "a".to_string(),
        Agreed {
            version: v.clone(),
            since: 5,
        },
    )]);
    let remote = index(&[("a", v.clone())]);
    let run = |seen: Option<&Seen>| plan_seen(&Index::new(), &remote, &agreed, seen);
    assert_eq!(run(Some(&seen)).actions, vec![download("a", &v)]);
    // If box2's last look was before the agreement, it may still delete it: wait.
    let older = Seen {
        listed: 4,
        committed: 6,
        entries: Index::new(),
    };
    assert!(run(Some(&older)).actions.is_empty());
    assert!(run(None).actions.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Simulation: two peers, random edits, rounds in every order.

/// Picks one of `items`.
fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.below(items.len())]
}

struct Peer {
    name: &'static str,
    files: Index,
    agreed: Arc<Agreement>,
    /// What the other peer saw of this one in its last completed round.
    seen: Option<Seen>,
    /// Every file version this peer moved to its trash.
    trash: Vec<Md5>,
}

/// A round between listing and commit.
struct Pending {
    plan: Plan,
    remote: Index,
    expect: Index,
    now: i64,
    listed: i64,
    seen: Option<Seen>,
}

struct World {
    peers: [Peer; 2],
    clock: i64,
    rng: Rng,
    /// Versions the simulated users deleted or overwrote themselves (not sync's doing).
    removed_by_users: BTreeSet<Md5>,
}

const NAMES: [&str; 5] = ["a", "b.txt", "d", "d/c", "d/e/f.txt"];

impl World {
    fn new(seed: u64) -> Self {
        let peer = |name| Peer {
            name,
            files: Index::new(),
            agreed: Arc::default(),
            seen: None,
            trash: Vec::new(),
        };
        World {
            peers: [peer("box1"), peer("box2")],
            clock: 0,
            rng: Rng::new(seed),
            removed_by_users: BTreeSet::new(),
        }
    }

    fn tick(&mut self) -> i64 {
        self.clock += 1;
        self.clock
    }

    /// `me` lists the other peer and plans.
    fn start(&mut self, me: usize) -> Pending {
        let seen = self.peers[me].seen.clone();
        let listed = self.tick();
        let now = listed;
        let remote = self.peers[1 - me].files.clone();
        let p = &self.peers[me];
        let plan = plan(&Inputs {
            local: &p.files,
            remote: &remote,
            agreed: &p.agreed,
            seen: seen.as_ref(),
            busy: &BTreeSet::new(),
            local_name: p.name,
            remote_name: self.peers[1 - me].name,
        });
        Pending {
            expect: p.files.clone(),
            plan,
            remote,
            now,
            listed,
            seen,
        }
    }

    /// `me` carries out its plan, checking every precondition like the real round does.
    fn finish(&mut self, me: usize, round: Pending) {
        self.carry_out(me, round, None);
    }

    /// `me` carries out its plan; with `crash_after`, the process dies after that many actions:
    /// no state is saved, but its connection still closes as if the round were over.
    fn carry_out(&mut self, me: usize, mut round: Pending, crash_after: Option<usize>) {
        let other = self.peers[1 - me].files.clone();
        let budget = crash_after.unwrap_or(usize::MAX);
        for action in round.plan.actions.clone().into_iter().take(budget) {
            let p = &mut self.peers[me];
            let ok = still_possible(&action, &p.files, &round.expect, &other);
            if !ok {
                continue;
            }
            match &action {
                Action::Delete { version, .. } => p.trash.extend(version.md5),
                Action::Download { to, .. } => {
                    if let Some(old) = p.files.get(&**to) {
                        p.trash.extend(old.md5);
                    }
                }
                _ => {}
            }
            if matches!(
                action,
                Action::Download { .. } | Action::Move { .. } | Action::MakeDir { .. }
            ) {
                let to = action.target();
                make_parents(&mut p.files, to);
                make_parents(&mut round.expect, to);
            }
            apply_one(&action, &mut p.files, None);
            apply_one(&action, &mut round.expect, None);
        }
        let committed = self.tick();
        let p = &mut self.peers[me];
        if crash_after.is_none() {
            p.agreed =
                round
                    .plan
                    .settle(&round.expect, &round.remote, round.seen.as_ref(), round.now);
        }
        // The other peer's server saw this round end.
        self.peers[1 - me].seen = Some(Seen {
            listed: round.listed,
            committed,
            entries: round.remote,
        });
    }

    fn round(&mut self, me: usize) -> usize {
        let r = self.start(me);
        if let Ok(path) = std::env::var("SIM_TRACE") {
            let short = |v: Option<&Version>| {
                v.map(|v| {
                    format!(
                        "{:?}/{:o}/{}",
                        v.md5,
                        v.mode,
                        v.mtime_ns % 1_000_000_000_000
                    )
                })
                .unwrap_or_else(|| "-".into())
            };
            eprintln!(
                "round {} [{path}] local={} remote={} agreed={} seen={:?} base={} actions={:?}",
                self.peers[me].name,
                short(self.peers[me].files.get(&path)),
                short(r.remote.get(&path)),
                short(self.peers[me].agreed.get(&path).map(|a| &a.version)),
                r.seen
                    .as_ref()
                    .map(|s| (s.listed, s.committed, short(s.entries.get(&path)))),
                short(r.plan.base.get(&path).map(|a| &a.version)),
                r.plan
                    .actions
                    .iter()
                    .filter(|a| a.target() == path)
                    .collect::<Vec<_>>()
            );
        }
        let n = r.plan.actions.len();
        self.finish(me, r);
        n
    }

    /// A random user edit on peer `me`.
    fn edit(&mut self, me: usize) {
        let t = T0 + self.tick() * 1_000_000_000;
        let rng = &mut self.rng;
        let path = pick(rng, &NAMES).to_string();
        let op = rng.below(9);
        if std::env::var_os("SIM_TRACE").is_some() {
            eprintln!("edit on {}: op {op} on {path}", self.peers[me].name);
        }
        let md5 = Md5::of(&rng.next_u64().to_le_bytes());
        let mode = *pick(rng, &[0o644, 0o600, 0o755]);
        let files = &mut self.peers[me].files;
        let before: BTreeSet<Md5> = files.values().filter_map(|v| v.md5).collect();
        let current = files.get(&path).cloned();
        match (op, current) {
            // Create or edit a file (sometimes keeping the old mtime: a same-second edit).
            (0..=2, None)
            | (
                0..=2,
                Some(Version {
                    kind: Kind::File, ..
                }),
            ) if parents_ok(files, &path) => {
                let keep_time = op == 2;
                let mtime = match files.get(&path) {
                    Some(old) if keep_time => old.mtime_ns,
                    _ => t,
                };
                make_parents(files, &path);
                files.insert(path, Version::file(md5, 8, 0o644, mtime));
            }
            (3, Some(v)) if !v.is_dir() => {
                files.remove(&path);
            }
            // rm -rf
            (4, Some(_)) => files.retain(|k, _| k != &path && !k.starts_with(&format!("{path}/"))),
            (5, None) if parents_ok(files, &path) => {
                make_parents(files, &path);
                files.insert(path, Version::dir(0o755));
            }
            (6, Some(mut v)) => {
                v.mode = if v.is_dir() { 0o700 } else { mode };
                files.insert(path, v);
            }
            (7, Some(mut v)) if !v.is_dir() => {
                v.mtime_ns = t;
                files.insert(path, v);
            }
            // Rename a file to another free name.
            (8, Some(v)) if !v.is_dir() => {
                let to = pick(rng, &NAMES).to_string();
                if !files.contains_key(&to) && parents_ok(files, &to) {
                    files.remove(&path);
                    make_parents(files, &to);
                    files.insert(to, v);
                }
            }
            _ => {}
        }
        let after: BTreeSet<Md5> = files.values().filter_map(|v| v.md5).collect();
        self.removed_by_users
            .extend(before.difference(&after).cloned());
    }

    fn versions(&self) -> BTreeSet<Md5> {
        self.peers
            .iter()
            .flat_map(|p| p.files.values().filter_map(|v| v.md5))
            .collect()
    }

    fn kept(&self, md5: &Md5) -> bool {
        self.removed_by_users.contains(md5)
            || self.peers.iter().any(|p| {
                p.files.values().any(|v| v.md5 == Some(*md5)) || p.trash.iter().any(|t| t == md5)
            })
    }
}

/// Whether `action` can still be carried out in a box holding `files`, which the round expected
/// to hold `expect`, pulling from a peer that now holds `other`: the checks of the real round.
fn still_possible(action: &Action, files: &Index, expect: &Index, other: &Index) -> bool {
    let here = |path: &str| files.get(path).cloned();
    let as_planned = |path: &str| here(path) == expect.get(path).cloned();
    match action {
        Action::Rename { from, to, .. } => as_planned(from) && here(to).is_none(),
        Action::Delete { path, .. } | Action::SetMeta { path, .. } => as_planned(path),
        Action::RemoveDir { path } => {
            as_planned(path) && !files.keys().any(|k| k.starts_with(&format!("{path}/")))
        }
        Action::MakeDir { path, .. } => here(path).is_none() && parents_ok(files, path),
        Action::Move { from, to, .. } => {
            as_planned(from) && here(to).is_none() && parents_ok(files, to)
        }
        Action::Download {
            path, to, version, ..
        } => {
            other.get(&**path) == Some(version)
                && as_planned(to)
                && !here(to).is_some_and(|v| v.is_dir())
                && parents_ok(files, to)
        }
    }
}

/// No file stands where a parent folder of `path` should be.
fn parents_ok(files: &Index, path: &str) -> bool {
    let mut p = path;
    while let Some(i) = p.rfind('/') {
        p = &p[..i];
        if files.get(p).is_some_and(|v| !v.is_dir()) {
            return false;
        }
    }
    true
}

/// `mkdir -p` of `path`'s parents.
fn make_parents(files: &mut Index, path: &str) {
    let mut p = path;
    while let Some(i) = p.rfind('/') {
        p = &p[..i];
        files
            .entry(p.to_string())
            .or_insert_with(|| Version::dir(0o755));
    }
}

fn simulate(seed: u64, concurrent: bool) {
    let mut w = World::new(seed);
    let mut history: BTreeSet<Md5> = BTreeSet::new();
    for step in 0..40 {
        for _ in 0..w.rng.below(4) {
            let who = w.rng.below(2);
            w.edit(who);
        }
        some_rounds(&mut w, concurrent);
        // Quiet now: a few rounds in turn must converge and then do nothing.
        if step % 5 == 4 {
            quiet_rounds_converge_and_keep_every_version(&mut w, seed, step, &history);
            // A round boundary: every version here now must never be lost.
            history.extend(w.versions());
            a_lone_change_arrives_as_it_is(&mut w, seed, step);
            history.extend(w.versions());
        }
    }
}

/// One random turn of rounds: two concurrent rounds (both list before either acts), a round
/// that crashes partway, or one plain round.
fn some_rounds(w: &mut World, concurrent: bool) {
    if concurrent && w.rng.below(2) == 0 {
        // Both rounds list before either acts, with an edit in between sometimes.
        let first = w.rng.below(2);
        let r1 = w.start(first);
        let r2 = w.start(1 - first);
        if w.rng.below(3) == 0 {
            let who = w.rng.below(2);
            w.edit(who);
        }
        w.finish(first, r1);
        w.finish(1 - first, r2);
    } else if w.rng.below(5) == 0 {
        let who = w.rng.below(2);
        let round = w.start(who);
        let crash = w.rng.below(round.plan.actions.len() + 1);
        w.carry_out(who, round, Some(crash));
    } else {
        let first = w.rng.below(2);
        w.round(first);
    }
}

/// With no edits, a few rounds in turn converge and then do nothing, and every version in
/// `history` is still kept.
fn quiet_rounds_converge_and_keep_every_version(
    w: &mut World,
    seed: u64,
    step: u32,
    history: &BTreeSet<Md5>,
) {
    let mut quiet = 0;
    for i in 0..16 {
        if w.round(i % 2) == 0 {
            quiet += 1;
            if quiet == 3 {
                break;
            }
        } else {
            quiet = 0;
        }
    }
    assert_eq!(
        w.peers[0].files, w.peers[1].files,
        "seed {seed} step {step}: not converged"
    );
    assert!(
        quiet >= 3,
        "seed {seed} step {step}: still busy after 16 rounds"
    );
    for md5 in history {
        assert!(w.kept(md5), "seed {seed} step {step}: version {md5} lost");
    }
}

/// Settled: a change on one side alone must arrive as it is (no conflict copy, no file coming
/// back), whichever side pulls first.
fn a_lone_change_arrives_as_it_is(w: &mut World, seed: u64, step: u32) {
    let who = w.rng.below(2);
    w.edit(who);
    let wanted = w.peers[who].files.clone();
    let first = w.rng.below(2);
    for i in 0..4 {
        w.round((first + i) % 2);
    }
    assert_eq!(
        w.peers[0].files, wanted,
        "seed {seed} step {step}: box1 drifted"
    );
    assert_eq!(
        w.peers[1].files, wanted,
        "seed {seed} step {step}: box2 drifted"
    );
}

/// How many seeds each simulation runs (`SIM_SEEDS` to search harder).
fn seeds() -> u64 {
    std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

/// Replays one simulation, for a seed that a failure message named. Ignored in normal runs (it
/// has nothing to do without a seed); run it on purpose:
///
/// ```text
/// SIM_SEED=n [SIM_CONCURRENT=1] [SIM_TRACE=NAME] \
///     cargo test -p with_sync --lib replay_one_seed -- --ignored --nocapture
/// ```
///
/// `n` is the seed as the failure printed it; `SIM_CONCURRENT=1` if it came from the test with
/// overlapping rounds; `SIM_TRACE=NAME` prints every edit, and each round's view of the simulated
/// path `NAME` (e.g. `a`), on stderr. Without `SIM_SEED` the test fails and says so, rather than
/// passing without doing anything.
#[test]
#[ignore = "replays one seed: needs SIM_SEED=n (see its doc comment)"]
fn replay_one_seed() {
    let seed = std::env::var("SIM_SEED")
        .expect("set SIM_SEED=n to the seed a failure printed (see the doc comment)");
    let seed = seed
        .parse()
        .unwrap_or_else(|_| panic!("SIM_SEED={seed:?} is not a number"));
    simulate(seed, std::env::var_os("SIM_CONCURRENT").is_some());
}

#[test]
fn two_simulated_peers_always_converge_and_lose_nothing() {
    for seed in 1..seeds() {
        simulate(seed * 7919, false);
    }
}

#[test]
fn two_simulated_peers_with_overlapping_rounds_converge_and_lose_nothing() {
    for seed in 1..seeds() {
        simulate(seed * 104_729, true);
    }
}
