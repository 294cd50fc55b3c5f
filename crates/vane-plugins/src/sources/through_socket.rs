//! For unit tests of the line listeners: text sent over one TCP connection
//! to a `socket` job run by the harness, and the events it made.

use vane_core::event::Event;
use vane_core::testing::Harness;

/// Sends `text` over one connection to a `socket` listener with `config`
/// (its settings but `listen`) and waits for `want` events.
pub async fn through_socket(config: &str, text: Vec<u8>, want: usize) -> (Harness, Vec<Event>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!("listen: tcp://127.0.0.1:{port}\n{config}");
    let (h, socket) = Harness::service(&crate::registry(), "socket", &config).unwrap();
    let client = std::thread::spawn(move || {
        use std::io::Write;
        loop {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                return s.write_all(&text).unwrap();
            }
            std::thread::yield_now();
        }
    });
    let got = h.run_until(socket, std::time::Duration::from_secs(60), |e| e.len() >= want).await.unwrap();
    client.join().unwrap();
    (h, got)
}
