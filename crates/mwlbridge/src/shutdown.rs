//! Stopping: the process's signals turn one `watch` flag true, and every long-running part
//! (DICOM server, sync worker, admin interface) waits on that flag.

use tokio::sync::watch;

/// A stop flag that turns true on Ctrl-C or SIGTERM, after logging `message` (what is
/// still finished before the process exits).
pub fn stop_on_signal(message: &'static str) -> watch::Receiver<bool> {
    #[cfg(unix)]
    tokio::spawn(survive_sighup());
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        signal().await;
        tracing::info!("{message}");
        let _ = stop_tx.send(true);
    });
    stop_rx
}

/// Returns once `stop` turns true (or its sender is gone, which is a stop too).
pub async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// SIGHUP (a closed terminal, or an admin expecting a reload) would end the process
/// at once and without a word, which systemd counts as a clean exit: it is logged and
/// otherwise ignored instead. The configuration is read at start only.
#[cfg(unix)]
async fn survive_sighup() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGHUP");
            return;
        }
    };
    while hup.recv().await.is_some() {
        tracing::warn!(
            "SIGHUP received and ignored: mwlbridge reads its configuration at start only; \
             restart the service to apply changes (systemctl restart mwlbridge)"
        );
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
