use super::*;

fn p(line: &str) -> Result<Option<Command>, String> {
    parse_with(line, 100 * DAY_NS, |t| timestamp::parse_in(t, &chrono::Utc))
}

#[test]
fn tokens_and_quotes() {
    assert_eq!(tokenize("  a  b\tc ").unwrap(), ["a", "b", "c"]);
    assert_eq!(
        tokenize(r#"download TCP "my file.txt""#).unwrap(),
        ["download", "TCP", "my file.txt"]
    );
    assert_eq!(tokenize(r#"x "" y"#).unwrap(), ["x", "", "y"]);
    assert_eq!(tokenize(r#"a"b c"d"#).unwrap(), ["ab cd"]);
    assert_eq!(tokenize(r#""say \"hi\"""#).unwrap(), [r#"say "hi""#]);
    assert_eq!(tokenize(r"regex \.txt$").unwrap(), ["regex", r"\.txt$"]);
    assert!(tokenize(r#"download TCP "unclosed"#).is_err());
    assert!(tokenize("").unwrap().is_empty());
}

#[test]
fn every_command() {
    assert_eq!(p("").unwrap(), None);
    assert_eq!(
        p("INDEX LongList").unwrap(),
        Some(Command::Index(Filter::All))
    );
    assert_eq!(
        p("index shortlist").unwrap(),
        Some(Command::Index(Filter::Modified {
            start_ns: 99 * DAY_NS,
            end_ns: 100 * DAY_NS
        }))
    );
    assert_eq!(
        p("index shortlist @10").unwrap(),
        Some(Command::Index(Filter::Modified {
            start_ns: 10_000_000_000,
            end_ns: 100 * DAY_NS
        }))
    );
    assert_eq!(
        p(r#"index shortlist 1970-01-01 "1970-01-02 00:00:00""#).unwrap(),
        Some(Command::Index(Filter::Modified {
            start_ns: 0,
            end_ns: DAY_NS
        }))
    );
    assert_eq!(
        p(r"index regex \.TXT$").unwrap(),
        Some(Command::Index(Filter::Regex {
            pattern: r"\.TXT$".into()
        }))
    );
    assert_eq!(
        p(r#"hash verify "a b""#).unwrap(),
        Some(Command::HashVerify("a b".into()))
    );
    assert_eq!(p("hash CHECKALL").unwrap(), Some(Command::HashCheckall));
    assert_eq!(
        p("download tcp F.txt").unwrap(),
        Some(Command::Download(Transport::Tcp, "F.txt".into()))
    );
    assert_eq!(
        p("Download UDP x").unwrap(),
        Some(Command::Download(Transport::Udp, "x".into()))
    );
    assert_eq!(p("sync").unwrap(), Some(Command::Sync));
    assert_eq!(p("help").unwrap(), Some(Command::Help));
    assert_eq!(p("exit").unwrap(), Some(Command::Quit));
    assert_eq!(p("QUIT").unwrap(), Some(Command::Quit));
}

#[test]
fn errors_name_the_problem() {
    let err = |line: &str| p(line).expect_err(line);
    assert!(err("frobnicate").contains("unknown command"));
    assert!(err("index").contains("usage: index"));
    assert!(err("index longlist extra").contains("usage: index longlist"));
    assert!(err("index regex (").contains("not a valid regular expression"));
    assert!(err("index regex").contains("usage"));
    assert!(err("index shortlist yesterday").contains("not a timestamp"));
    assert!(err("index shortlist @20 @10").contains("after its end"));
    assert!(err("index shortlist a b c").contains("usage"));
    assert!(err("hash verify").contains("usage"));
    assert!(err("hash nothing").contains("usage"));
    assert!(err("download FTP x").contains("usage"));
    assert!(err("download TCP").contains("usage"));
    assert!(err("download TCP a b").contains("usage"));
    assert!(err("sync now").contains("usage"));
    assert!(err("download TCP \"x").contains("not closed"));
}

#[test]
fn local_box_commands() {
    let p = |line: &str| parse(line, 0);
    assert_eq!(p("conflicts").unwrap(), Some(Command::Conflicts));
    assert_eq!(p("STATUS").unwrap(), Some(Command::Status));
    assert_eq!(p("trash list").unwrap(), Some(Command::TrashList));
    assert_eq!(
        p("trash restore \"notes/todo list.txt\"").unwrap(),
        Some(Command::TrashRestore("notes/todo list.txt".into()))
    );
    assert_eq!(p("trash").unwrap_err(), "usage: trash list | restore PATH");
    assert_eq!(p("trash restore").unwrap_err(), "usage: trash restore PATH");
    assert_eq!(p("conflicts now").unwrap_err(), "usage: conflicts");
}
