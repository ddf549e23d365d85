//! One instance's process: built from the `--instance-command` template, run in its own process
//! group, its output forwarded to our log, and ended with SIGTERM then SIGKILL. Every child we
//! spawn is waited for (reaped), whichever way it ends.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use futures_util::StreamExt;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio_util::codec::{FramedRead, LinesCodec};

/// Values substituted into the template, per instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholders {
    pub id: u32,
    pub api_port: u16,
    /// Where the program should serve its TCP API (`--program-api-tcp-base-port` + id); the
    /// template may only name it when that flag is set.
    pub api_tcp_port: Option<u16>,
    pub width: u32,
    pub height: u32,
    pub profile: String,
}

const PLACEHOLDERS: [&str; 6] = [
    "{id}",
    "{api_port}",
    "{api_tcp_port}",
    "{width}",
    "{height}",
    "{profile}",
];

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("instance command is not valid shell words: {0}")]
    Syntax(#[from] shell_words::ParseError),
    #[error("instance command is empty")]
    Empty,
    #[error("instance command has an unknown placeholder {0:?} (known: {known})", known = PLACEHOLDERS.join(" "))]
    UnknownPlaceholder(String),
}

/// The instance command, split into words once. Placeholders are substituted per word, after
/// splitting and without a shell, so no value can inject arguments or shell syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandTemplate {
    words: Vec<String>,
}

impl CommandTemplate {
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let words = shell_words::split(template)?;
        if words.is_empty() {
            return Err(TemplateError::Empty);
        }
        for word in &words {
            let mut rest = word.as_str();
            while let Some(open) = rest.find('{') {
                let tail = &rest[open..];
                match tail.find('}') {
                    Some(close) => {
                        let name = &tail[..=close];
                        // Only lowercase words look like our placeholders (a typo is caught);
                        // anything else, such as a shell's `${HOME}`, is left alone.
                        let looks_like_ours = name.len() > 2
                            && name[1..name.len() - 1]
                                .chars()
                                .all(|c| c.is_ascii_lowercase() || c == '_');
                        if looks_like_ours && !PLACEHOLDERS.contains(&name) {
                            return Err(TemplateError::UnknownPlaceholder(name.to_owned()));
                        }
                        rest = &tail[close + 1..];
                    }
                    None => break,
                }
            }
        }
        Ok(Self { words })
    }

    /// Whether some word names `placeholder` (e.g. `{api_tcp_port}`).
    pub fn uses(&self, placeholder: &str) -> bool {
        self.words.iter().any(|w| w.contains(placeholder))
    }

    pub fn render(&self, values: &Placeholders) -> Vec<String> {
        self.words
            .iter()
            .map(|w| {
                w.replace("{id}", &values.id.to_string())
                    .replace("{api_port}", &values.api_port.to_string())
                    .replace(
                        "{api_tcp_port}",
                        &values.api_tcp_port.map_or(String::new(), |p| p.to_string()),
                    )
                    .replace("{width}", &values.width.to_string())
                    .replace("{height}", &values.height.to_string())
                    .replace("{profile}", &values.profile)
            })
            .collect()
    }
}

/// A running instance process and the group it leads.
pub struct InstanceProcess {
    child: Child,
    group: Pid,
}

/// The longest output line forwarded whole; longer ones are cut (the rest is discarded).
const MAX_LOG_LINE: usize = 8 * 1024;

impl InstanceProcess {
    /// Starts `argv` in a new process group with stdin closed and output forwarded to the log
    /// under the instance id. `env` adds to the agent's environment.
    pub fn spawn(id: u32, argv: &[String], env: &[(String, String)]) -> std::io::Result<Self> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| std::io::Error::other("empty command"))?;
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command.spawn()?;
        let pid = child
            .id()
            .ok_or_else(|| std::io::Error::other("child exited before its pid was read"))?;
        if let Some(out) = child.stdout.take() {
            tokio::spawn(forward_lines(id, "stdout", out));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(forward_lines(id, "stderr", err));
        }
        Ok(Self {
            child,
            group: Pid::from_raw(pid as i32),
        })
    }

    pub fn pid(&self) -> i32 {
        self.group.as_raw()
    }

    /// Waits until the group leader exits, then kills whatever it left behind in its group.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await;
        self.signal(Signal::SIGKILL);
        status
    }

    /// SIGTERM to the whole group, `grace` to exit, then SIGKILL. Returns once reaped.
    pub async fn terminate(&mut self, grace: Duration) -> std::io::Result<ExitStatus> {
        self.signal(Signal::SIGTERM);
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => {
                self.signal(Signal::SIGKILL);
                status
            }
            Err(_) => {
                tracing::warn!(
                    pid = self.pid(),
                    ?grace,
                    "instance ignored SIGTERM; killing it"
                );
                self.kill().await
            }
        }
    }

    /// SIGKILL to the whole group; returns once reaped.
    pub async fn kill(&mut self) -> std::io::Result<ExitStatus> {
        self.signal(Signal::SIGKILL);
        self.child.wait().await
    }

    fn signal(&self, signal: Signal) {
        // ESRCH (the group is already gone) is the normal case after the leader exits.
        if let Err(e) = killpg(self.group, signal) {
            if e != nix::errno::Errno::ESRCH {
                tracing::warn!(pid = self.pid(), %signal, error = %e, "could not signal instance group");
            }
        }
    }
}

/// "exited with status 3" or "killed by signal 9 (SIGKILL)".
pub fn describe_exit(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => match Signal::try_from(sig) {
            Ok(name) => format!("killed by signal {sig} ({name})"),
            Err(_) => format!("killed by signal {sig}"),
        },
        (None, None) => "ended".to_owned(),
    }
}

async fn forward_lines<R: tokio::io::AsyncRead + Unpin>(id: u32, stream: &'static str, reader: R) {
    let mut lines = FramedRead::new(reader, LinesCodec::new_with_max_length(MAX_LOG_LINE));
    while let Some(line) = lines.next().await {
        match line {
            Ok(line) => tracing::info!(target: "instance", stream, "[instance {id}] {line}"),
            Err(tokio_util::codec::LinesCodecError::MaxLineLengthExceeded) => {
                tracing::info!(target: "instance", stream, "[instance {id}] [line over {MAX_LOG_LINE} bytes cut]")
            }
            Err(tokio_util::codec::LinesCodecError::Io(_)) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Placeholders {
        Placeholders {
            id: 2,
            api_port: 4684,
            api_tcp_port: Some(4583),
            width: 1280,
            height: 720,
            profile: "mars".into(),
        }
    }

    #[test]
    fn placeholders_are_substituted_per_word() {
        let t = CommandTemplate::parse(
            "OpenSpace --config 'Port={api_port};Size={width}x{height};Tcp={api_tcp_port}' -p {profile} --id={id}",
        )
        .unwrap();
        assert_eq!(
            t.render(&values()),
            vec![
                "OpenSpace",
                "--config",
                "Port=4684;Size=1280x720;Tcp=4583",
                "-p",
                "mars",
                "--id=2"
            ]
        );
    }

    #[test]
    fn values_cannot_split_into_more_words() {
        let t = CommandTemplate::parse("prog {profile}").unwrap();
        let mut v = values();
        v.profile = "a b; rm -rf /".into();
        assert_eq!(t.render(&v).len(), 2);
    }

    #[test]
    fn bad_templates_are_refused() {
        assert!(matches!(
            CommandTemplate::parse(""),
            Err(TemplateError::Empty)
        ));
        assert!(matches!(
            CommandTemplate::parse("a 'b"),
            Err(TemplateError::Syntax(_))
        ));
        assert!(matches!(
            CommandTemplate::parse("prog {port}"),
            Err(TemplateError::UnknownPlaceholder(p)) if p == "{port}"
        ));
        // Braces that are no placeholder of ours (shell variables, JSON) are left alone.
        assert!(CommandTemplate::parse("sh -c 'echo {'").is_ok());
        let t = CommandTemplate::parse("sh -c 'echo ${HOME} {\"a\":1}'").unwrap();
        assert_eq!(t.render(&values())[2], "echo ${HOME} {\"a\":1}");
    }
}
