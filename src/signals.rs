//! SIGINT (Ctrl-C) and SIGTERM for `run`, `load` and `serve`.
//!
//! `run` and `load` use [`Interrupts`]: the first signal stops new work (the caller polls
//! [`Interrupts::flag`] or its own stop flag) while what is running finishes and the reports
//! are written; a second signal, of either kind, exits at once with 130. `serve` waits for
//! the first signal with [`shutdown_signal`] and shuts down gracefully.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// The exit code of an interrupted `run` or `load` (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;

const RUNNING: u8 = 0;
const INTERRUPTED_STATE: u8 = 1;
/// The graceful part is over (reports being written): a signal exits at once.
const FINISHING: u8 = 2;

/// The signals that stop a command: SIGINT and SIGTERM (Ctrl-C only where there is no
/// SIGTERM). Registered when created, so from then on neither kills the process outright.
struct Listener {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Listener {
    /// Registers the handlers; a signal that cannot be listened for is reported on stderr
    /// and keeps its default action.
    fn new() -> Listener {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let register = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!(
                        "warning: cannot listen for {name} ({e}); it will stop the process without writing reports"
                    );
                    None
                }
            };
            Listener {
                interrupt: register(SignalKind::interrupt(), "SIGINT"),
                terminate: register(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        {
            Listener {}
        }
    }

    /// The next signal's name; pending forever when nothing can be listened for.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                if let Some(s) = s
                    && s.recv().await.is_some()
                {
                    return;
                }
                std::future::pending().await
            }
            tokio::select! {
                _ = recv(&mut self.interrupt) => "SIGINT",
                _ = recv(&mut self.terminate) => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            match tokio::signal::ctrl_c().await {
                Ok(()) => "Ctrl-C",
                Err(_) => std::future::pending().await,
            }
        }
    }
}

/// Listens for SIGINT and SIGTERM while `run` or `load` works; stops listening when dropped.
pub struct Interrupts {
    state: Arc<AtomicU8>,
    flag: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Interrupts {
    /// Starts listening (call inside a Tokio runtime). On the first signal: `flag` and
    /// every flag of `stops` become true and `message` (what happens now) is printed on
    /// stderr with the signal's name. On a second signal, or on any signal after
    /// [`Interrupts::abort`], the process exits at once with 130.
    pub fn listen(
        flag: Arc<AtomicBool>,
        stops: Vec<Arc<AtomicBool>>,
        message: &'static str,
    ) -> Interrupts {
        let mut listener = Listener::new();
        let state = Arc::new(AtomicU8::new(RUNNING));
        let task = {
            let (state, flag) = (state.clone(), flag.clone());
            tokio::spawn(async move {
                loop {
                    let name = listener.next().await;
                    let first = state
                        .compare_exchange(
                            RUNNING,
                            INTERRUPTED_STATE,
                            Ordering::SeqCst,
                            Ordering::SeqCst,
                        )
                        .is_ok();
                    if first {
                        flag.store(true, Ordering::SeqCst);
                        for stop in &stops {
                            stop.store(true, Ordering::SeqCst);
                        }
                        eprintln!(
                            "\ninterrupted ({name}): {message} (Ctrl-C or SIGTERM again to quit now)"
                        );
                    } else {
                        eprintln!("\n{name}: quitting now");
                        std::process::exit(i32::from(INTERRUPTED));
                    }
                }
            })
        };
        Interrupts { state, flag, task }
    }

    /// What `run` and `load` do: listen, with a fresh stop flag (given back) that the first
    /// signal sets, so no new work starts.
    pub fn stopping(message: &'static str) -> (Interrupts, Arc<AtomicBool>) {
        let stop = Arc::new(AtomicBool::new(false));
        let interrupts = Interrupts::listen(
            Arc::new(AtomicBool::new(false)),
            vec![stop.clone()],
            message,
        );
        (interrupts, stop)
    }

    /// Whether a signal arrived.
    pub fn interrupted(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// The work is over: from now on any signal exits at once with 130 (there is nothing
    /// left to stop gracefully). Listening ends when this value is dropped.
    pub fn abort(&self) {
        let _ = self
            .state
            .compare_exchange(RUNNING, FINISHING, Ordering::SeqCst, Ordering::SeqCst);
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// For `serve`: listens from this call on (inside a Tokio runtime); the future resolves with
/// the name of the first SIGINT or SIGTERM, after which a second one exits the process at
/// once with 130 (a graceful shutdown waits for open connections).
pub fn shutdown_signal() -> impl Future<Output = &'static str> + Send + 'static {
    let mut listener = Listener::new();
    async move {
        let name = listener.next().await;
        tokio::spawn(async move {
            let again = listener.next().await;
            eprintln!("{again}: quitting now");
            std::process::exit(i32::from(INTERRUPTED));
        });
        name
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A SIGTERM sent to this test process is caught, sets the flags, and does not kill it.
    #[tokio::test]
    async fn the_first_sigterm_sets_the_flags() {
        let flag = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let interrupts = Interrupts::listen(flag.clone(), vec![stop.clone()], "testing");
        assert!(!interrupts.interrupted());
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        for _ in 0..200 {
            if interrupts.interrupted() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(interrupts.interrupted(), "SIGTERM was not seen within 2 s");
        assert!(stop.load(Ordering::SeqCst));
    }
}
