//! The server: binds the port, serves the HTTP layer over the state, runs
//! the background tasks (hot reload, key reload, sweeps) until shutdown.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use poem::Server;
use poem::listener::{Acceptor, Listener, TcpAcceptor, TcpListener};

use crate::app::AppState;
use crate::config::Settings;
use crate::shutdown::{self, Shutdown, Trigger};

/// A built server, bound to its port, not yet serving.
pub struct Application {
    acceptor: TcpAcceptor,
    port: u16,
    state: AppState,
    trigger: Trigger,
    shutdown: Shutdown,
    config_path: Option<PathBuf>,
}

impl Application {
    /// Builds the state and binds `server.bind` (port 0 picks a free port).
    /// `config_path` is watched for hot reload once serving.
    pub async fn build(settings: Settings, config_path: Option<PathBuf>) -> anyhow::Result<Self> {
        let bind = settings.server.bind;
        let (trigger, shutdown) = shutdown::channel();
        let state = AppState::build(settings, shutdown.clone()).await?;
        let acceptor = TcpListener::bind(bind.to_string())
            .into_acceptor()
            .await
            .with_context(|| format!("binding {bind}"))?;
        let port = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().map(|s| s.port()))
            .unwrap_or(bind.port());
        Ok(Self {
            acceptor,
            port,
            state,
            trigger,
            shutdown,
            config_path,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The state (tests use it to move the clock).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `signal` resolves, then lets in-flight requests finish
    /// (up to 30 s) and stops the background tasks.
    pub async fn run_until_stopped(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            acceptor,
            state,
            trigger,
            shutdown,
            config_path,
            ..
        } = self;
        if let Some(path) = config_path {
            crate::reload::spawn(path, state.live.clone(), shutdown.clone())?;
        }
        spawn_background(state.clone(), shutdown.clone());
        let result = Server::new_with_acceptor(acceptor)
            .run_with_graceful_shutdown(
                crate::api::routes(state),
                signal,
                Some(Duration::from_secs(30)),
            )
            .await;
        trigger.fire();
        result.context("serving")
    }
}

/// The sweeper, the key reloader, the metrics upkeep and the heap trimmer;
/// all end with `shutdown`.
fn spawn_background(state: AppState, shutdown: Shutdown) {
    let stop = shutdown.clone();
    let metrics = state.metrics.clone();
    tokio::spawn(async move {
        // Histograms keep every sample until they are folded into their
        // buckets: at a scrape, or here. Without this, a server nobody
        // scrapes grows by ~20 bytes a request (14 MiB in a 10 s JWKS run).
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                _ = every.tick() => metrics.run_upkeep(),
                () = stop.wait() => break,
            }
        }
    });
    let stop = shutdown.clone();
    tokio::spawn(async move {
        // Give memory freed after a burst back to the system (a few ms of
        // work at most, every 10 s).
        let mut every = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = every.tick() => {
                    let _ = tokio::task::spawn_blocking(crate::workers::trim_heap).await;
                }
                () = stop.wait() => break,
            }
        }
    });
    let s = state.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(crate::keys::RELOAD_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => s.reload_keys().await,
                () = stop.wait() => break,
            }
        }
    });
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(300));
        loop {
            tokio::select! {
                _ = every.tick() => {
                    state.limits.sweep();
                    match state.oauth.sweep().await {
                        Ok(n) if n > 0 => tracing::info!(rows = n, "swept expired tokens"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "sweeping expired tokens failed"),
                    }
                    let now = state.clock.now();
                    let ttl = crate::clock::chrono_duration(
                        state.live.get().accounts.unactivated_ttl,
                    );
                    if let Err(e) =
                        crate::accounts::store::delete_unactivated(&state.db, now - ttl).await
                    {
                        tracing::warn!(error = %e, "sweeping unactivated accounts failed");
                    }
                    let forget_before =
                        now - crate::clock::chrono_duration(crate::accounts::KNOWN_SOURCE_FOR);
                    if let Err(e) =
                        crate::accounts::store::forget_sources(&state.db, forget_before).await
                    {
                        tracing::warn!(error = %e, "sweeping login sources failed");
                    }
                    if let Err(e) = crate::codes::sweep(&state.db, state.clock.now()).await {
                        tracing::warn!(error = %e, "sweeping expired codes failed");
                    }
                }
                () = shutdown.wait() => break,
            }
        }
    });
}
