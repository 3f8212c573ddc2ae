//! Ctrl-C for long operations: they race their work against it and say what state they leave.

/// Resolves when the user presses Ctrl-C. If the handler cannot be installed it never
/// resolves, and Ctrl-C keeps its default effect (the process ends): nothing is lost by that.
pub(crate) async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
