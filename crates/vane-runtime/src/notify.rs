//! Telling the service manager how the agent is (systemd's notification
//! protocol, `sd_notify`): one datagram of `KEY=VALUE` lines to the Unix
//! socket `$NOTIFY_SOCKET` names, a path or, starting with `@`, an abstract
//! name. Without the variable (not run by a service manager) it does
//! nothing; a manager that cannot be reached is logged, never fatal.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (`READY=1`, `STOPPING=1`, `STATUS=…`) when a manager listens.
pub fn notify(state: &str) {
    let Some(to) = std::env::var_os("NOTIFY_SOCKET") else { return };
    if let Err(e) = send(&to, state) {
        tracing::warn!("cannot tell the service manager {state:?} at {to:?}: {e}");
    }
}

/// `RELOADING=1` with the time it began, as systemd asks of a reload.
pub fn reloading() {
    // SAFETY: clock_gettime writes into the struct it is given.
    let mut t: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    let usec = t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1000;
    notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
}

fn send(to: &std::ffi::OsStr, state: &str) -> std::io::Result<usize> {
    use std::os::unix::ffi::OsStrExt as _;
    let socket = UnixDatagram::unbound()?;
    let bytes = to.as_bytes();
    match bytes.strip_prefix(b"@") {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt as _;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            socket.send_to_addr(state.as_bytes(), &addr)
        }
        None => socket.send_to(state.as_bytes(), to),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_state_reaches_a_socket_by_path_or_abstract_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let listener = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        super::send(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        use std::os::linux::net::SocketAddrExt as _;
        let name = format!("vane-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let abstract_listener = std::os::unix::net::UnixDatagram::bind_addr(&addr).unwrap();
        super::send(std::ffi::OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let n = abstract_listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }
}
