//! Stopping: the process's signals turn one `watch` flag true, and every long-running part
//! (DICOM server, sync worker, admin interface) waits on that flag. SIGHUP never ends the
//! process: `serve` reloads its configuration ([`hangups`]), other commands log it.

use tokio::sync::{mpsc, watch};

/// What a long-running command does on SIGHUP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnHangup {
    /// Logs it and goes on (`sync`, `demo`: they have nothing to reload).
    Ignore,
    /// Nothing here: the caller listens with [`hangups`] (`serve` reloads).
    Listen,
}

/// A stop flag that turns true on Ctrl-C or SIGTERM, after logging `message` (what is
/// still finished before the process exits).
pub fn stop_on_signal(message: &'static str, hangup: OnHangup) -> watch::Receiver<bool> {
    #[cfg(unix)]
    if hangup == OnHangup::Ignore {
        tokio::spawn(survive_sighup());
    }
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

/// Each SIGHUP, as a message, from the moment this is called (SIGHUP's default action,
/// ending the process at once and without a word, is then off). Listening failures are
/// logged, and the channel then stays silent.
pub fn hangups() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        // One pending reload covers any number of signals.
                        let _ = tx.try_send(());
                    }
                });
            }
            Err(e) => tracing::error!(error = %e, "cannot listen for SIGHUP"),
        }
    }
    #[cfg(not(unix))]
    drop(tx);
    rx
}

/// SIGHUP (a closed terminal, or an admin expecting a reload) would end the process
/// at once and without a word, which systemd counts as a clean exit: commands that have
/// nothing to reload log it and go on.
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
            "SIGHUP received and ignored: this command reads its configuration at start \
             only (`mwlbridge serve` reloads it on SIGHUP)"
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
