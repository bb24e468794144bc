use super::*;

#[test]
fn folders_are_dealt_to_the_installers_in_turn_and_stay_with_theirs() {
    let names: Vec<String> = (0..100)
        .flat_map(|d| (0..3).map(move |f| format!("d{d:04}/f{f}")))
        .chain(["top.txt".to_string(), "d0000/late".to_string()])
        .collect();
    let mut owners = Owners::new(2);
    let got: Vec<usize> = names.iter().map(|n| owners.of(n)).collect();
    for (name, owner) in names.iter().zip(&got) {
        let folder = split_parent(name).0;
        let want = match folder.strip_prefix('d') {
            Some(n) => n.parse::<usize>().unwrap() % 2,
            None => 100 % 2,
        };
        assert_eq!(*owner, want, "{name}");
    }
    let per: Vec<usize> = (0..2)
        .map(|i| got.iter().filter(|&&o| o == i).count())
        .collect();
    assert_eq!(per, [152, 150]);
    assert_eq!(
        Owners::new(0).of("a/b"),
        0,
        "no installers: this thread's lane"
    );
}
