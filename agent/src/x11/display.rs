//! The display an X11 instance runs on: an X server the agent starts per slot at `:BASE+id` with
//! its own cookie (what to run comes from `xvfb.rs`), or one the pod already provides. This file
//! is the handle: start and wait until it answers, connect, environment, exit, shut down.

use std::path::{Path, PathBuf};
use std::time::Duration;

use x11rb::rust_connection::RustConnection;

use super::auth::{display_in_use, Cookie};
use super::X11Error;
use crate::instances::process::{describe_exit, InstanceProcess};

/// How often the new server's socket is tried while it starts.
const POLL: Duration = Duration::from_millis(10);

#[derive(Debug, Clone)]
pub enum Connector {
    Virtual { number: u32, cookie: Cookie },
    Existing { name: String },
}

impl Connector {
    /// A new connection and its screen number (blocking: call off the async runtime).
    pub fn connect(&self) -> Result<(RustConnection, usize), X11Error> {
        match self {
            Self::Virtual { number, cookie } => Ok((cookie.connect(*number)?, 0)),
            Self::Existing { name } => Ok(x11rb::connect(Some(name))?),
        }
    }
}

/// What to run for a display the agent starts: the server's argv and the files made for it
/// (removed when it is shut down).
pub struct Launch {
    /// For messages: "Xvfb".
    pub program: &'static str,
    pub argv: Vec<String>,
    /// Files and (empty) folders made for it.
    pub files: Vec<PathBuf>,
    /// Where the server logs, read for its errors when it exits while starting (Xorg).
    pub log: Option<PathBuf>,
}

pub enum Display {
    Virtual {
        number: u32,
        cookie: Cookie,
        auth_file: PathBuf,
        files: Vec<PathBuf>,
        server: Box<InstanceProcess>,
    },
    Existing {
        name: String,
    },
}

impl Display {
    /// Writes a new cookie for display `:number`, starts the server `launch` describes (given
    /// the cookie's file) and returns once it accepts our connection. The caller bounds this by
    /// its start timeout.
    pub async fn start(
        id: u32,
        number: u32,
        launch: impl FnOnce(&Path) -> Result<Launch, String>,
    ) -> Result<Self, String> {
        if display_in_use(number) {
            return Err(format!(
                "display :{number} is already in use (another X server?)"
            ));
        }
        let cookie = Cookie::random();
        let auth_file = std::env::temp_dir().join(format!("openspace-x11-{number}.xauth"));
        cookie
            .write_file(&auth_file, number)
            .map_err(|e| format!("cannot write {}: {e}", auth_file.display()))?;
        let Launch {
            program,
            argv,
            files,
            log,
        } = match launch(&auth_file) {
            Ok(launch) => launch,
            Err(reason) => {
                let _ = std::fs::remove_file(&auth_file);
                return Err(reason);
            }
        };
        let remove_files = |files: &[PathBuf]| {
            let _ = std::fs::remove_file(&auth_file);
            remove_all(files);
        };
        let mut server = match InstanceProcess::spawn(id, &argv, &[]) {
            Ok(server) => server,
            Err(e) => {
                remove_files(&files);
                return Err(format!("could not start {program}: {e}"));
            }
        };
        loop {
            tokio::select! {
                status = server.wait() => {
                    let mut reason = server_ended(status);
                    if let Some(errors) = log.as_deref().and_then(log_errors) {
                        reason = format!("{program}: {reason}: {errors}");
                    }
                    remove_files(&files);
                    return Err(reason);
                }
                _ = tokio::time::sleep(POLL) => {}
            }
            let probe = cookie.clone();
            let answered = tokio::task::spawn_blocking(move || probe.connect(number).is_ok())
                .await
                .unwrap_or(false);
            if answered {
                return Ok(Self::Virtual {
                    number,
                    cookie,
                    auth_file,
                    files,
                    server: Box::new(server),
                });
            }
        }
    }

    /// A display the pod provides; `XAUTHORITY` from the agent's environment applies.
    pub fn existing(name: String) -> Self {
        Self::Existing { name }
    }

    /// What it takes to open more connections to the display, for other threads.
    pub fn connector(&self) -> Connector {
        match self {
            Self::Virtual { number, cookie, .. } => Connector::Virtual {
                number: *number,
                cookie: cookie.clone(),
            },
            Self::Existing { name } => Connector::Existing { name: name.clone() },
        }
    }

    /// `DISPLAY` and `XAUTHORITY` for the program.
    pub fn env(&self) -> Vec<(String, String)> {
        match self {
            Self::Virtual {
                number, auth_file, ..
            } => vec![
                ("DISPLAY".into(), format!(":{number}")),
                ("XAUTHORITY".into(), auth_file.display().to_string()),
            ],
            Self::Existing { name } => vec![("DISPLAY".into(), name.clone())],
        }
    }

    pub fn name(&self) -> String {
        match self {
            Self::Virtual { number, .. } => format!(":{number}"),
            Self::Existing { name } => name.clone(),
        }
    }

    /// Resolves when the X server we started exits (never for an existing display).
    pub async fn exited(&mut self) -> String {
        match self {
            Self::Virtual { server, .. } => server_ended(server.wait().await),
            Self::Existing { .. } => std::future::pending().await,
        }
    }

    /// Stops the X server we started (SIGTERM, then SIGKILL after `grace`) and removes its
    /// cookie, files, lock and socket.
    pub async fn shut_down(self, grace: Duration) {
        if let Self::Virtual {
            number,
            mut server,
            auth_file,
            files,
            ..
        } = self
        {
            let _ = server.terminate(grace).await;
            let _ = std::fs::remove_file(auth_file);
            remove_all(&files);
            // A server that was killed (SIGKILL) left its lock and socket: gone now, not at the
            // slot's next start (display_in_use removes those of a dead holder).
            let _ = display_in_use(number);
        }
    }
}

/// Removes files and empty folders, whichever each is.
fn remove_all(paths: &[PathBuf]) {
    for path in paths {
        if std::fs::remove_file(path).is_err() {
            let _ = std::fs::remove_dir(path);
        }
    }
}

/// The last error lines of a server's log ("no screens found"), or None when it has none.
fn log_errors(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let errors = super::xorg::log_errors(&text);
    let last: Vec<_> = errors.iter().rev().take(3).rev().cloned().collect();
    (!last.is_empty()).then(|| last.join("; "))
}

/// "the X server killed by signal 9 (SIGKILL)", for the instance's failure reason.
fn server_ended(status: std::io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(s) => format!("the X server {}", describe_exit(&s)),
        Err(e) => format!("lost the X server: {e}"),
    }
}
