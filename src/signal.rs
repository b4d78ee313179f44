//! Waiting for the operator to interrupt: SIGINT (Ctrl-C) or SIGTERM, the
//! two ways a foreground command is asked to stop (the daemon turns
//! signals into its own control messages instead).

/// Resolves on SIGINT or SIGTERM. Should the SIGTERM handler not install
/// (it always does on Linux), Ctrl-C still works.
pub async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let term_recv = async {
        match term.as_mut() {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term_recv => {}
    }
}
