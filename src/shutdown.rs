//! When a process is asked to stop: SIGTERM (a deploy, `systemctl stop`,
//! `docker stop`) or SIGINT (Ctrl-C). Both stop it gracefully; see
//! `startup::Application::run_until_stopped` and `jobs::worker::Workers`.

/// Resolves at the first SIGTERM or SIGINT.
pub async fn requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = int.recv() => tracing::info!("SIGINT received"),
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                // Without a handler the signal's default action still ends
                // the process, only not gracefully.
                tracing::warn!(error = %e, "cannot listen for SIGTERM and SIGINT; stopping will not be graceful");
                std::future::pending::<()>().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
