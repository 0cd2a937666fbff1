//! Serving the router on a listener, over plain HTTP or HTTPS (rustls), until shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Why the admin server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AdminServeError {
    /// The plain-HTTP server failed.
    #[error("admin HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A TLS handshake that has not finished by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` resolves; with `tls`, over HTTPS.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AdminServeError> {
    let Some(tls) = tls else {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await?;
        return Ok(());
    };
    tokio::pin!(shutdown);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (socket, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin HTTPS: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(socket)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::info!(%peer, error = %e, "admin HTTPS: TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::info!(%peer, "admin HTTPS: TLS handshake timed out");
                        return;
                    }
                };
            let service = TowerToHyperService::new(router);
            let served = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "admin HTTPS connection ended with an error");
            }
        });
    }
}
