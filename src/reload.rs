//! Hot reload: the config file's directory is watched (so a Kubernetes
//! ConfigMap update, which swaps a symlink, counts) and SIGHUP re-reads too.
//! Every layer is read again; an invalid file is refused whole and the last
//! good settings keep serving.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::config::{LiveSettings, Settings};
use crate::shutdown::Shutdown;

/// Re-reads `path` and applies the hot sections. Returns whether it worked.
pub fn reload(path: &Path, live: &LiveSettings) -> bool {
    // An empty file is what a write caught half-way (truncate, then write)
    // or a mistaken `> file` looks like: it would parse as "all defaults".
    let empty = std::fs::read_to_string(path).is_ok_and(|t| t.trim().is_empty());
    let loaded = if empty {
        Err(crate::config::ConfigError::Invalid(
            "the file is empty (half-written?)".into(),
        ))
    } else {
        Settings::load(Some(path))
    };
    match loaded {
        Ok(new) => {
            let cold = live.apply(&new);
            for section in &cold {
                tracing::warn!(
                    section,
                    "config section [{section}] changed; it takes effect after a restart"
                );
            }
            tracing::info!(path = %path.display(), "configuration reloaded");
            metrics::counter!("gatehouse_config_reloads_total", "result" => "ok").increment(1);
            true
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "configuration reload refused; keeping the previous settings");
            metrics::counter!("gatehouse_config_reloads_total", "result" => "error").increment(1);
            false
        }
    }
}

/// Watches `path` and listens for SIGHUP until `shutdown`.
pub fn spawn(path: PathBuf, live: LiveSettings, shutdown: Shutdown) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let (tx, mut rx) = mpsc::unbounded_channel::<()>();
    let file_name = path.file_name().map(ToOwned::to_owned);
    let watch_tx = tx.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        let Ok(event) = res else { return };
        if event.kind.is_access() {
            return;
        }
        // Our file, or the `..data` symlink a ConfigMap volume swaps.
        let relevant = event.paths.iter().any(|p| {
            p.file_name()
                .is_some_and(|n| Some(n.to_owned()) == file_name || n == "..data")
        });
        if relevant {
            let _ = watch_tx.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;

    #[cfg(unix)]
    {
        let hup_tx = tx;
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            loop {
                tokio::select! {
                    s = hup.recv() => { if s.is_none() { break } let _ = hup_tx.send(()); }
                    () = shutdown.wait() => break,
                }
            }
        });
    }

    tokio::spawn(async move {
        // Owned here so the watch lasts as long as the task.
        let _watcher = watcher;
        loop {
            tokio::select! {
                got = rx.recv() => {
                    if got.is_none() { break }
                    // Editors and kubelet write in several steps: settle first.
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    while rx.try_recv().is_ok() {}
                    reload(&path, &live);
                }
                () = shutdown.wait() => break,
            }
        }
    });
    Ok(())
}
