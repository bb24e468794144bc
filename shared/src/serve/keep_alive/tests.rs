use super::*;
use std::net::{TcpListener, TcpStream};

#[test]
fn a_long_answer_says_it_is_still_working_and_a_quick_one_says_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let mut server = Connection::new(listener.accept().unwrap().0).unwrap();
    let mut client = Connection::new(client).unwrap();

    let mut alive = KeepAlive::default();
    alive.tick(&mut server, 1, 10).unwrap();
    server.send(&Reply::End { count: 0 }).unwrap();
    assert_eq!(client.recv::<Reply>().unwrap(), Reply::End { count: 0 });

    alive.last = Instant::now() - KEEP_ALIVE;
    alive.tick(&mut server, 5, 10).unwrap();
    alive.tick(&mut server, 6, 10).unwrap();
    server.send(&Reply::End { count: 0 }).unwrap();
    assert_eq!(
        client.recv::<Reply>().unwrap(),
        Reply::Working { done: 5, total: 10 }
    );
    assert_eq!(
        client.recv::<Reply>().unwrap(),
        Reply::End { count: 0 },
        "once per period"
    );
}
