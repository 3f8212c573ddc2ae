//! Loopback ports: picking free ones, waiting for them to open, checking they are free again.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::Result;

const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);

/// `count` distinct loopback ports that are free, each with `port + offset` free too for
/// every offset (Redis Cluster's bus port).
///
/// Every candidate stays bound until all are chosen, so the kernel cannot hand out one port
/// twice; they are released on return, and the caller starts its servers right away.
pub(crate) fn free_ports(count: usize, offsets: &[u16]) -> io::Result<Vec<u16>> {
    let mut held = Vec::new();
    let mut ports = Vec::with_capacity(count);
    for _ in 0..200 {
        if ports.len() == count {
            return Ok(ports);
        }
        let listener = TcpListener::bind((LOOPBACK, 0))?;
        let port = listener.local_addr()?.port();
        held.push(listener);
        let extras: Option<Vec<TcpListener>> = offsets
            .iter()
            .map(|&offset| port.checked_add(offset).and_then(|extra| TcpListener::bind((LOOPBACK, extra)).ok()))
            .collect();
        if let Some(extras) = extras {
            held.extend(extras);
            ports.push(port);
        }
    }
    if ports.len() == count {
        Ok(ports)
    } else {
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("no {count} free loopback ports with offsets {offsets:?}"),
        ))
    }
}

/// Something accepts connections on the port.
pub(crate) fn port_open(port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((LOOPBACK, port)), CONNECT_TIMEOUT).is_ok()
}

/// Nothing listens on the port and a new server could bind it.
///
/// A process can outlive its pid's usefulness here (PID 1 does not reap, so a dead server
/// stays a zombie), and memcached restarted too soon on a port it just left fails silently:
/// the port is what matters.
pub(crate) fn port_free(port: u16) -> bool {
    // std sets SO_REUSEADDR, so connections left in TIME_WAIT do not count as busy.
    let bindable = TcpListener::bind((LOOPBACK, port)).is_ok();
    bindable && !port_open(port)
}

/// Polls `check` until it says yes, fails, or `timeout` passes.
pub(crate) fn wait_for(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<bool>) -> Result<Duration> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        if check()? {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return Err(format!("{what}: not after {:.1} s", timeout.as_secs_f64()));
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Waits until the port is free.
pub(crate) fn wait_port_free(port: u16, timeout: Duration) -> Result<Duration> {
    wait_for(&format!("port {port} free"), timeout, || Ok(port_free(port)))
}

/// The status code of `GET path` on the port (HTTP/1.0, so the server closes after answering).
pub(crate) fn http_status(port: u16, path: &str) -> io::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&SocketAddr::from((LOOPBACK, port)), CONNECT_TIMEOUT)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    // One write: `write!` would send the pieces separately.
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())?;
    let mut head = Vec::new();
    let mut buf = [0; 256];
    while !head.contains(&b'\n') {
        let read = stream.read(&mut buf)?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&buf[..read]);
    }
    let line = String::from_utf8_lossy(&head);
    let status = line.lines().next().unwrap_or_default();
    // "HTTP/1.1 200 OK"
    status
        .split_whitespace()
        .nth(1)
        .filter(|_| status.starts_with("HTTP/"))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("not an HTTP status line: {status:?}")))
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;
    use std::io::BufReader;

    use super::*;

    /// What `launch` does for a node without a child to watch.
    fn wait_port_open(port: u16, timeout: Duration) -> Result<Duration> {
        wait_for(&format!("port {port} open"), timeout, || Ok(port_open(port)))
    }

    #[test]
    fn free_ports_are_distinct_and_bindable() {
        let _ports = crate::port_lock();
        let ports = free_ports(3, &[]).expect("three free ports");
        assert_eq!(ports.len(), 3);
        assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2], "{ports:?}");
        for port in ports {
            assert!(port > 0);
            // Released on return: a server can take it.
            TcpListener::bind((LOOPBACK, port)).expect("the picked port is free");
        }
    }

    #[test]
    fn free_ports_leave_room_at_the_offsets() {
        let _ports = crate::port_lock();
        let ports = free_ports(2, &[10000]).expect("two ports with a bus port each");
        for port in ports {
            let bus = port.checked_add(10000).expect("the bus port fits in u16");
            let _main = TcpListener::bind((LOOPBACK, port)).expect("the picked port is free");
            let _bus = TcpListener::bind((LOOPBACK, bus)).expect("its bus port is free");
        }
        // An offset that cannot fit any ephemeral port is an error, not a hang or a wrap.
        assert!(free_ports(1, &[65535]).is_err());
    }

    #[test]
    fn port_states_follow_a_listener() {
        let _ports = crate::port_lock();
        let listener = TcpListener::bind((LOOPBACK, 0)).expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        assert!(port_open(port));
        assert!(!port_free(port));
        drop(listener);
        assert!(!port_open(port));
        assert!(port_free(port));
    }

    #[test]
    fn waiting_sees_a_port_that_opens_later() {
        let _ports = crate::port_lock();
        let port = free_ports(1, &[]).expect("a free port")[0];
        let opener = thread::spawn(move || {
            thread::sleep(Duration::from_millis(300));
            let listener = TcpListener::bind((LOOPBACK, port)).expect("bind the awaited port");
            // Keep it open while the waiter connects.
            thread::sleep(Duration::from_secs(2));
            drop(listener);
        });
        let waited = wait_port_open(port, Duration::from_secs(10)).expect("the port opens");
        assert!(waited >= Duration::from_millis(250), "returned before the port opened: {waited:?}");
        assert!(waited < Duration::from_secs(2), "took {waited:?}");
        opener.join().expect("the opener thread");
        wait_port_free(port, Duration::from_secs(5)).expect("free after the listener closed");
    }

    #[test]
    fn waiting_times_out_on_a_closed_port() {
        let _ports = crate::port_lock();
        let port = free_ports(1, &[]).expect("a free port")[0];
        let start = Instant::now();
        let error = wait_port_open(port, Duration::from_millis(300)).expect_err("nothing listens");
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert!(error.contains(&port.to_string()), "{error}");
    }

    #[test]
    fn waiting_stops_at_the_first_error() {
        let mut calls = 0;
        let error = wait_for("thing", Duration::from_secs(10), || {
            calls += 1;
            if calls == 3 { Err("it died".to_owned()) } else { Ok(false) }
        })
        .expect_err("the check fails");
        assert_eq!(error, "it died");
        assert_eq!(calls, 3);
    }

    /// Answers one request with `status_line` and returns the request line it got.
    fn one_shot_http(status_line: &'static str) -> (u16, thread::JoinHandle<String>) {
        let listener = TcpListener::bind((LOOPBACK, 0)).expect("bind");
        let port = listener.local_addr().expect("local addr").port();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream);
            let mut request = String::new();
            reader.read_line(&mut request).expect("read the request line");
            // The whole head: closing with unread input would reset the connection.
            let mut header = String::new();
            while header != "\r\n" {
                header.clear();
                assert!(reader.read_line(&mut header).expect("read a header") > 0, "the request head ended early");
            }
            let mut stream = reader.into_inner();
            write!(stream, "{status_line}\r\nContent-Length: 0\r\n\r\n").expect("answer");
            request
        });
        (port, server)
    }

    #[test]
    fn http_status_reads_the_status_code() {
        let _ports = crate::port_lock();
        let (port, server) = one_shot_http("HTTP/1.1 200 OK");
        assert_eq!(http_status(port, "/moto-api/").expect("a status"), 200);
        assert_eq!(server.join().expect("server thread"), "GET /moto-api/ HTTP/1.0\r\n");

        let (port, server) = one_shot_http("HTTP/1.0 503 Service Unavailable");
        assert_eq!(http_status(port, "/").expect("a status"), 503);
        server.join().expect("server thread");

        let (port, server) = one_shot_http("+PONG");
        assert!(http_status(port, "/").is_err(), "a non-HTTP answer is not a status");
        server.join().expect("server thread");
    }
}
