//! The accept loop: a cap on open connections, a deadline for each request's
//! headers, accept errors (out of file descriptors) backed off, and a graceful
//! drain at shutdown. `axum::serve` offers none of these; slow clients holding
//! connections open would otherwise exhaust the process's descriptors.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::Config;

/// Descriptors kept for everything but client connections: the database and
/// Redis pools, the listener, mail, logs, files being read.
const RESERVED_FDS: u64 = 256;
/// Wait after an accept error such as EMFILE before trying again, rather than spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    /// Bounds each request (the router's timeout), hence the drain at shutdown.
    pub request_timeout: Duration,
}

impl Limits {
    pub fn from_config(config: &Config) -> Self {
        Self {
            max_connections: config.max_connections,
            header_read_timeout: Duration::from_secs(config.header_read_timeout),
            request_timeout: Duration::from_secs(config.request_timeout),
        }
    }

    /// How long a graceful shutdown waits for what is in flight: the longest a
    /// request may take, and a second.
    pub fn drain(&self) -> Duration {
        self.request_timeout.max(self.header_read_timeout) + Duration::from_secs(1)
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests
/// in flight finish.
pub async fn run(
    router: Router,
    listener: TcpListener,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let max_connections = connection_cap(limits.max_connections, raise_fd_limit());
    if max_connections < limits.max_connections {
        tracing::warn!(
            max_connections,
            configured = limits.max_connections,
            "the open-file limit holds fewer connections than configured"
        );
    }
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut http = http1::Builder::new();
    // The deadline runs from the connection's start and again after each
    // response while the connection waits for the next request's headers.
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // A request's line and headers in 32 KiB (431 beyond), as fronts
        // cap them, rather than hyper's ~400 KiB a connection.
        .max_buf_size(MAX_HEAD);
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        // At the cap, stop accepting until a connection ends: further clients
        // wait in the kernel's backlog rather than being accepted and dropped.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.context("connection slots closed")?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // The client went away before we took its connection.
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    tracing::error!(%error, "accept error; retrying shortly");
                    tokio::select! {
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        // Handlers read the peer address as `ConnectInfo<SocketAddr>`.
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            tower::Service::call(&mut router.clone(), request)
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                // Slow clients cut off by the header deadline end here.
                tracing::debug!(%peer, %error, "connection closed");
            }
            drop(slot);
        });
    }
    drop(listener);
    // Idle connections close now; requests in flight are bounded by the
    // request timeout, slow headers by their own deadline.
    if tokio::time::timeout(limits.drain(), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain; closing them");
    }
    Ok(())
}

/// The read buffer of a connection: a request's line and headers must fit.
const MAX_HEAD: usize = 32 * 1024;

/// Errors about one connection, not the listener: go on accepting at once.
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Raises the soft limit on open files to the hard limit; returns the limit in force.
fn raise_fd_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::warn!(%error, "could not raise the open-file limit");
            None
        }
    }
}

/// The configured cap, lowered so that connections cannot take the
/// descriptors the rest of the process needs.
fn connection_cap(configured: usize, fd_limit: Option<u64>) -> usize {
    let Some(limit) = fd_limit else {
        return configured;
    };
    let available = limit.saturating_sub(RESERVED_FDS).max(16);
    configured.min(usize::try_from(available).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_descriptors_for_the_pools_and_files() {
        assert_eq!(connection_cap(10_000, Some(1024)), 1024 - 256);
        assert_eq!(connection_cap(10_000, Some(1_048_576)), 10_000);
        assert_eq!(connection_cap(10_000, Some(u64::MAX)), 10_000);
        assert_eq!(connection_cap(10_000, Some(100)), 16);
        assert_eq!(connection_cap(500, None), 500);
    }
}
