//! Work that may take long (a script, a blocking library) run where it
//! cannot hold up the async tasks: on a multi-threaded runtime the calling
//! worker hands its other tasks to a new worker first (tokio's
//! `block_in_place`); elsewhere (a current-thread runtime, no runtime) the
//! work runs as it is. Called again inside such work, it costs nothing.

/// Runs `f` off the async workers where there are several.
pub fn run<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn other_tasks_go_on_while_blocking_work_runs() {
        let (tx, rx) = std::sync::mpsc::channel();
        // The only worker blocks until a task it would have run answers.
        tokio::spawn(async move { tx.send(()).unwrap() });
        super::run(|| rx.recv_timeout(std::time::Duration::from_secs(10))).unwrap();
    }

    #[tokio::test]
    async fn a_current_thread_runtime_runs_it_in_place() {
        assert_eq!(super::run(|| 7), 7);
    }
}
