use super::*;
use std::net::{TcpListener, TcpStream};

fn pair() -> (Connection, Connection) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let server = Connection::new(listener.accept().unwrap().0).unwrap();
    (server, Connection::new(client).unwrap())
}

#[test]
fn a_long_answer_says_it_is_still_working_and_a_quick_one_says_nothing() {
    let (mut server, mut client) = pair();
    let mut alive = KeepAlive::new(10);
    alive.tick(&mut server, 1).unwrap();
    server.send(&Reply::End { count: 0 }).unwrap();
    assert_eq!(client.recv::<Reply>().unwrap(), Reply::End { count: 0 });

    alive.last = Instant::now() - KEEP_ALIVE;
    alive.tick(&mut server, 5).unwrap();
    alive.tick(&mut server, 6).unwrap();
    server.send(&Reply::End { count: 0 }).unwrap();
    assert_eq!(
        client.recv::<Reply>().unwrap(),
        Reply::Working {
            done: 5,
            total: 10,
            scanned: 0
        }
    );
    assert_eq!(
        client.recv::<Reply>().unwrap(),
        Reply::End { count: 0 },
        "once per period"
    );
}

#[test]
fn the_progress_said_never_goes_back_nor_past_the_total() {
    let (mut server, mut client) = pair();
    let mut alive = KeepAlive::new(100);
    for done in [40, 30, 250] {
        alive.last = Instant::now() - KEEP_ALIVE;
        alive.tick(&mut server, done).unwrap();
    }
    for done in [40, 40, 100] {
        let said = client.recv::<Reply>().unwrap();
        let scanned = 0;
        assert_eq!(
            said,
            Reply::Working {
                done,
                total: 100,
                scanned
            }
        );
    }
}

#[test]
fn a_file_to_hash_counts_its_bytes_and_a_known_one_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.bin"), vec![7u8; 3000]).unwrap();
    std::fs::write(dir.path().join("b.bin"), vec![8u8; 500]).unwrap();
    let local = LocalBox::open(dir.path(), "box").unwrap();
    let scanned = local.scan().unwrap();
    assert_eq!(to_hash(&local, scanned.iter()), 3500);
    let (mut server, _client) = pair();
    let mut alive = KeepAlive::new(3500);
    alive
        .md5_of(&mut server, &local, &scanned[0])
        .unwrap()
        .unwrap();
    assert_eq!(alive.done, 3000);
    // Hashed now: the cache vouches for it, and it is not counted twice.
    assert_eq!(to_hash(&local, scanned.iter()), 500);
    alive
        .md5_of(&mut server, &local, &scanned[0])
        .unwrap()
        .unwrap();
    assert_eq!(alive.done, 3000);
}

#[test]
fn a_scan_says_how_far_it_is_then_the_bytes_to_hash() {
    let (mut server, mut client) = pair();
    let mut alive = KeepAlive::new(0);
    for scanned in [300, 200, 900] {
        alive.last = Instant::now() - KEEP_ALIVE;
        alive.scanned(&mut server, scanned).unwrap();
    }
    alive.to_hash(50);
    alive.last = Instant::now() - KEEP_ALIVE;
    alive.tick(&mut server, 20).unwrap();
    for scanned in [300, 300, 900] {
        let said = client.recv::<Reply>().unwrap();
        let (done, total) = (0, 0);
        assert_eq!(
            said,
            Reply::Working {
                done,
                total,
                scanned
            }
        );
    }
    let said = client.recv::<Reply>().unwrap();
    let (done, total, scanned) = (20, 50, 900);
    assert_eq!(
        said,
        Reply::Working {
            done,
            total,
            scanned
        },
        "the scan's count stays"
    );
}
