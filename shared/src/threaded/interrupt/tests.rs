use super::*;
use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;

#[test]
fn stop_breaks_the_running_commands_connection_and_waits_for_it() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let interrupt = Arc::new(Interrupt::new());
    let worker = {
        let interrupt = Arc::clone(&interrupt);
        std::thread::spawn(move || {
            let job = interrupt.begin().expect("not stopped yet");
            let mut stream = TcpStream::connect(addr).unwrap();
            assert!(interrupt.watch(&stream));
            // Blocks until `stop` shuts the socket down (the peer never sends anything).
            let n = stream.read(&mut [0u8; 16]).unwrap_or(0);
            drop(job);
            n
        })
    };
    let (_held_open, _) = listener.accept().unwrap();
    // The worker may not have called `watch` yet; `stop` then makes `watch` fail instead.
    assert!(testing_wait(|| interrupt.state().socket.is_some()));
    interrupt.stop();
    assert!(interrupt.wait_idle(Duration::from_secs(10)));
    assert_eq!(
        worker.join().unwrap(),
        0,
        "the read ended with end of stream"
    );
    assert!(interrupt.begin().is_none(), "no command starts after stop");
}

#[test]
fn a_connection_opened_after_stop_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let interrupt = Interrupt::new();
    let job = interrupt.begin().unwrap();
    interrupt.stop();
    assert!(!interrupt.watch(&stream));
    assert!(
        !interrupt.wait_idle(Duration::from_millis(10)),
        "still busy"
    );
    drop(job);
    assert!(interrupt.wait_idle(Duration::from_millis(10)));
}

#[test]
fn cancel_breaks_only_the_running_command() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let interrupt = Interrupt::new();
    assert!(!interrupt.cancel(), "nothing runs: nothing to cancel");
    let job = interrupt.begin().unwrap();
    let mut stream = TcpStream::connect(addr).unwrap();
    assert!(interrupt.watch(&stream));
    assert!(interrupt.cancel());
    assert!(interrupt.is_cancelled());
    assert_eq!(stream.read(&mut [0u8; 4]).unwrap_or(0), 0, "shut down");
    let later = TcpStream::connect(addr).unwrap();
    assert!(
        !interrupt.watch(&later),
        "the cancelled command opens nothing more"
    );
    drop(job);
    let _next = interrupt.begin().expect("the next command runs");
    assert!(!interrupt.is_cancelled());
    assert!(interrupt.watch(&later));
}

/// Polls for up to 10 s.
fn testing_wait(mut check: impl FnMut() -> bool) -> bool {
    (0..1000).any(|_| {
        check() || {
            std::thread::sleep(Duration::from_millis(10));
            false
        }
    })
}
