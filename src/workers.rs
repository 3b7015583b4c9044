//! Fixed sets of threads for CPU-heavy work (Argon2id, RSA signatures), so
//! that it never runs on the async executor: a task there that computes for
//! a while delays every other task on that thread, among them the one
//! holding SQLite's write turn, and so the whole write queue.

use std::time::Duration;

use crate::error::{Error, Result};

type Job = Box<dyn FnOnce() + Send>;

/// A pool of `n` named threads fed from one queue. Not tokio's blocking
/// pool: that one grows to hundreds of threads under a flood, and each
/// thread's malloc arena keeps what it freed (820 MiB measured under a login
/// flood). A worker idle for `idle` runs `on_idle` once (the hash workers
/// give their memory back).
pub struct Workers {
    tx: flume::Sender<Job>,
    name: &'static str,
}

impl Workers {
    /// Starts the threads `name-0` … `name-{n-1}`.
    pub fn start(name: &'static str, n: usize, idle: Duration, on_idle: fn()) -> Result<Self> {
        let (tx, rx) = flume::unbounded::<Job>();
        for i in 0..n.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.recv_timeout(idle) {
                            Ok(job) => job,
                            Err(flume::RecvTimeoutError::Timeout) => {
                                on_idle();
                                match rx.recv() {
                                    Ok(job) => job,
                                    Err(_) => return,
                                }
                            }
                            // Every owner is gone: the thread ends.
                            Err(flume::RecvTimeoutError::Disconnected) => return,
                        };
                        job();
                    }
                })
                .map_err(Error::internal)?;
        }
        Ok(Self { tx, name })
    }

    /// Runs `work` on a worker and waits for it, keeping the caller's span.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let span = tracing::Span::current();
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx
            .send(Box::new(move || {
                let _ = tx.send(span.in_scope(work));
            }))
            .map_err(|_| Error::internal(format!("{} workers stopped", self.name)))?;
        rx.await.map_err(Error::internal)?
    }
}

/// The number of CPUs this process may use (2 when unknown).
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Returns the allocator's free memory to the operating system. glibc keeps
/// what threads free in its arenas (and after the first free of a large
/// block it stops using mmap for blocks of that size), so a process that
/// was busy stays large when idle; trimming fixes that. A no-op elsewhere.
#[cfg(target_env = "gnu")]
#[expect(
    unsafe_code,
    reason = "malloc_trim is an FFI call without a safe wrapper"
)]
pub fn trim_heap() {
    // SAFETY: malloc_trim only releases free memory; it has no preconditions
    // and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// See the glibc version: other allocators need no help.
#[cfg(not(target_env = "gnu"))]
pub fn trim_heap() {}

/// glibc gives every thread that allocates under contention an arena of its
/// own (up to 8 per core), and memory freed into an arena mostly stays
/// there: after a load run the process kept ~75 MiB. Two arenas (measured:
/// ~40 MiB 15 s after the same run, no throughput change within noise) are
/// enough for a server whose hot work runs on a few fixed threads.
///
/// Blocks of 4 MiB and more (an Argon2id hash's 19 MiB) always get their own
/// mapping, returned whole when freed. glibc would otherwise raise that
/// threshold after the first such free and carve the next hash's memory out
/// of an arena; freed there, it joins the arena's top, which `malloc_trim`
/// never shrinks outside the main arena: one or two hashes' memory (19 or
/// 38 MiB) stayed resident after some load runs and not others. Called once,
/// first thing in `main`, before any thread exists.
#[cfg(target_env = "gnu")]
#[expect(unsafe_code, reason = "mallopt is an FFI call without a safe wrapper")]
pub fn limit_heap_arenas() {
    // SAFETY: mallopt only changes allocator tuning; M_ARENA_MAX and
    // M_MMAP_THRESHOLD take these values, and it is called before other
    // threads allocate.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
    }
}

/// See the glibc version.
#[cfg(not(target_env = "gnu"))]
pub fn limit_heap_arenas() {}
