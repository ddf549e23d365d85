//! The seed's command protocol (backend -> rendering server): request and answer types, and a
//! parser that turns any text into either a valid [`Request`] or a [`ParseError`] that already
//! knows the answer to send back. Shared with the operator, which uses the same types through
//! [`crate::client`].
//!
//! Wire facts (see `shared/spec/protocols.md`): every answer repeats `command`, carries `error`
//! (`"none"` on success) and `id`. Fields this project adds (`session`, `width`, `height`,
//! `profile`, `reason`, `slots`, `detail`, the `WATCH` command) are optional, so clients of the
//! original supervisor keep working.
//!
//! Warm pools (extensions): START with `"warm": true` and a pool owner (`session` =
//! `pool:UID`, see [`crate::owner`]) starts an instance no session owns yet; SERVER_STATUS
//! counts those apart in `warm`; `CLAIM {id, session}` binds a warm RUNNING instance to a
//! session and answers a new viewer `token` (a warm START answers none); STATUS then says which
//! pool the instance came from in `pool`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Largest WebSocket message the command server accepts; bigger ones close with 1009.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
pub const WIDTH_RANGE: std::ops::RangeInclusive<u32> = 16..=7680;
pub const HEIGHT_RANGE: std::ops::RangeInclusive<u32> = 16..=4320;
const MAX_SESSION_CHARS: usize = 256;
const MAX_PROFILE_CHARS: usize = 64;

/// The `error` strings of the protocol. The first five are the original's.
pub mod errors {
    pub const NONE: &str = "none";
    pub const NO_AVAILABLE_SLOTS: &str = "no available slots";
    pub const NOT_RUNNING: &str = "not running";
    pub const INVALID_ID: &str = "invalid id";
    pub const JSON_DECODE: &str = "json decode error";
    /// Prefix of the original's answer to an unknown command: `invalid message received: X`.
    pub const UNKNOWN_COMMAND_PREFIX: &str = "invalid message received: ";
    pub const INVALID_MESSAGE: &str = "invalid message";
    pub const MISSING_COMMAND: &str = "missing command";
    pub const MISSING_ID: &str = "missing id";
    pub const INVALID_RESOLUTION: &str = "invalid resolution";
    pub const INVALID_SESSION: &str = "invalid session";
    pub const INVALID_PROFILE: &str = "invalid profile";
    pub const SHUTTING_DOWN: &str = "shutting down";
    /// CLAIM of an instance another session claimed already.
    pub const ALREADY_CLAIMED: &str = "already claimed";
    /// CLAIM of an instance that is not a warm RUNNING one (still initialising, stopping, or
    /// started for a session), or by a session that owns another instance.
    pub const NOT_CLAIMABLE: &str = "not claimable";
}

/// The state of one slot, as STATUS reports it. `Invalid` only ever answers a bad id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SlotStatus {
    Idle,
    Initializing,
    Running,
    Deinitializing,
    Invalid,
}

impl SlotStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "IDLE",
            Self::Initializing => "INITIALIZING",
            Self::Running => "RUNNING",
            Self::Deinitializing => "DEINITIALIZING",
            Self::Invalid => "INVALID",
        }
    }
}

/// A request, as the client sends it and as the server understands it after [`Request::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Request {
    Start(StartRequest),
    Stop {
        id: u32,
    },
    Resolution {
        id: u32,
        width: u32,
        height: u32,
    },
    Status {
        id: u32,
    },
    ServerStatus,
    /// Extension: keep the connection open and push a STATUS message on every slot change.
    Watch,
    /// Extension: bind warm instance `id` to `session` (answers a new viewer token).
    Claim {
        id: u32,
        session: String,
    },
}

/// START's optional extensions. A bare `{"command":"START"}` is all defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRequest {
    /// Opaque owner, e.g. the OpenSpaceSession UID; a second START with the same session while
    /// its instance lives answers that instance's id instead of starting another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// Start a warm instance for the pool named by `session` (`pool:UID`): no session owns it
    /// until CLAIM, a plain START never gets it, and START answers no token for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warm: bool,
}

impl Request {
    /// The `command` string this request travels under.
    pub fn command(&self) -> &'static str {
        match self {
            Self::Start(_) => "START",
            Self::Stop { .. } => "STOP",
            Self::Resolution { .. } => "RESOLUTION",
            Self::Status { .. } => "STATUS",
            Self::ServerStatus => "SERVER_STATUS",
            Self::Watch => "WATCH",
            Self::Claim { .. } => "CLAIM",
        }
    }

    /// Parses one text message. Never panics; every failure names what was wrong.
    pub fn parse(text: &str) -> Result<Request, ParseError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ParseError::new(None, errors::JSON_DECODE, e.to_string()))?;
        let Value::Object(map) = value else {
            return Err(ParseError::new(
                None,
                errors::INVALID_MESSAGE,
                format!(
                    "expected a JSON object such as {{\"command\":\"SERVER_STATUS\"}}, got {}",
                    kind_of(&value)
                ),
            ));
        };
        let command = match map.get("command") {
            Some(Value::String(c)) => c.as_str(),
            Some(other) => {
                return Err(ParseError::new(
                    None,
                    errors::INVALID_MESSAGE,
                    format!("\"command\" must be a string, got {}", kind_of(other)),
                ))
            }
            None => {
                return Err(ParseError::new(
                    None,
                    errors::MISSING_COMMAND,
                    "the object has no \"command\" field",
                ))
            }
        };
        let fields = Fields { command, map: &map };
        match command {
            "START" => Ok(Request::Start(fields.start()?)),
            "STOP" => Ok(Request::Stop { id: fields.id()? }),
            "STATUS" => Ok(Request::Status { id: fields.id()? }),
            "RESOLUTION" => {
                let id = fields.id()?;
                let (width, height) = fields.resolution(id)?;
                match (width, height) {
                    (Some(width), Some(height)) => Ok(Request::Resolution { id, width, height }),
                    _ => Err(fields.error(
                        Some(id.into()),
                        errors::INVALID_RESOLUTION,
                        "RESOLUTION needs both \"width\" and \"height\"",
                    )),
                }
            }
            "SERVER_STATUS" => Ok(Request::ServerStatus),
            "WATCH" => Ok(Request::Watch),
            "CLAIM" => {
                let id = fields.id()?;
                let session = fields.session(Some(id.into()))?.ok_or_else(|| {
                    fields.error(
                        Some(id.into()),
                        errors::INVALID_SESSION,
                        "CLAIM needs the claiming \"session\"",
                    )
                })?;
                if crate::Owner::parse(&session).pool_uid().is_some() {
                    return Err(fields.error(
                        Some(id.into()),
                        errors::INVALID_SESSION,
                        "a pool cannot claim an instance; name the session",
                    ));
                }
                Ok(Request::Claim { id, session })
            }
            other => Err(ParseError {
                command: Some(other.to_owned()),
                id: None,
                error: format!("{}{}", errors::UNKNOWN_COMMAND_PREFIX, truncate(other, 64)),
                detail:
                    "known commands: START, STOP, RESOLUTION, STATUS, SERVER_STATUS, WATCH, CLAIM"
                        .to_owned(),
            }),
        }
    }
}

/// Why a message is not a valid request, carrying everything needed to answer it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {detail}")]
pub struct ParseError {
    /// The command, when the message named one.
    pub command: Option<String>,
    /// The id, when the message carried an integer one (echoed so clients can correlate).
    pub id: Option<i64>,
    /// One of [`errors`], stable for programs.
    pub error: String,
    /// For people: what exactly was wrong.
    pub detail: String,
}

impl ParseError {
    fn new(command: Option<&str>, error: &str, detail: impl Into<String>) -> Self {
        Self {
            command: command.map(str::to_owned),
            id: None,
            error: error.to_owned(),
            detail: detail.into(),
        }
    }

    /// The answer to send for this error.
    pub fn answer(&self) -> Answer {
        Answer {
            command: self.command.clone(),
            error: self.error.clone(),
            id: self.id.unwrap_or(-1),
            detail: Some(self.detail.clone()),
            ..Answer::default()
        }
    }
}

/// Field access for one command's object, producing errors that name the command.
struct Fields<'a> {
    command: &'a str,
    map: &'a Map<String, Value>,
}

impl Fields<'_> {
    fn error(&self, id: Option<i64>, error: &str, detail: impl Into<String>) -> ParseError {
        ParseError {
            id,
            ..ParseError::new(Some(self.command), error, detail)
        }
    }

    fn id(&self) -> Result<u32, ParseError> {
        let value = self.map.get("id").ok_or_else(|| {
            self.error(
                None,
                errors::MISSING_ID,
                format!("{} needs an integer \"id\"", self.command),
            )
        })?;
        match value.as_i64() {
            Some(n) if n < 0 => Err(self.error(
                Some(n),
                errors::INVALID_ID,
                format!("id must not be negative, got {n}"),
            )),
            Some(n) => u32::try_from(n).map_err(|_| {
                self.error(
                    Some(n),
                    errors::INVALID_ID,
                    format!("id {n} is out of range"),
                )
            }),
            None => Err(self.error(
                None,
                errors::INVALID_ID,
                format!("id must be a non-negative integer, got {}", kind_of(value)),
            )),
        }
    }

    fn dimension(
        &self,
        id: Option<i64>,
        name: &str,
        range: &std::ops::RangeInclusive<u32>,
    ) -> Result<Option<u32>, ParseError> {
        let Some(value) = self.map.get(name) else {
            return Ok(None);
        };
        let bad = |got: String| {
            self.error(
                id,
                errors::INVALID_RESOLUTION,
                format!(
                    "{name} must be an integer in {}..={}, got {got}",
                    range.start(),
                    range.end()
                ),
            )
        };
        match value.as_u64() {
            Some(n) => match u32::try_from(n) {
                Ok(n) if range.contains(&n) => Ok(Some(n)),
                _ => Err(bad(n.to_string())),
            },
            None => Err(bad(kind_of(value))),
        }
    }

    fn resolution(&self, id: u32) -> Result<(Option<u32>, Option<u32>), ParseError> {
        let id = Some(i64::from(id));
        Ok((
            self.dimension(id, "width", &WIDTH_RANGE)?,
            self.dimension(id, "height", &HEIGHT_RANGE)?,
        ))
    }

    fn optional_string(&self, name: &str, error: &str) -> Result<Option<&str>, ParseError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(other) => Err(self.error(
                None,
                error,
                format!("{name} must be a string, got {}", kind_of(other)),
            )),
        }
    }

    fn start(&self) -> Result<StartRequest, ParseError> {
        let width = self.dimension(None, "width", &WIDTH_RANGE)?;
        let height = self.dimension(None, "height", &HEIGHT_RANGE)?;
        if width.is_some() != height.is_some() {
            return Err(self.error(
                None,
                errors::INVALID_RESOLUTION,
                "give both \"width\" and \"height\", or neither",
            ));
        }
        let session = self.session(None)?;
        let warm = match self.map.get("warm") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(self.error(
                    None,
                    errors::INVALID_MESSAGE,
                    format!("warm must be true or false, got {}", kind_of(other)),
                ))
            }
        };
        let pool_owner = session
            .as_deref()
            .is_some_and(|s| crate::Owner::parse(s).pool_uid().is_some());
        if warm && !pool_owner {
            return Err(self.error(
                None,
                errors::INVALID_SESSION,
                "a warm START needs a pool owner: \"session\":\"pool:UID\"",
            ));
        }
        let profile = self.optional_string("profile", errors::INVALID_PROFILE)?;
        if let Some(p) = profile {
            // The profile is substituted into the instance's command line: keep it boring.
            let ok = !p.is_empty()
                && p.len() <= MAX_PROFILE_CHARS
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
                && !p.starts_with(['-', '.']);
            if !ok {
                return Err(self.error(
                    None,
                    errors::INVALID_PROFILE,
                    format!(
                        "profile must be 1..={MAX_PROFILE_CHARS} of [A-Za-z0-9._-], \
                         not starting with '-' or '.'"
                    ),
                ));
            }
        }
        Ok(StartRequest {
            session,
            width,
            height,
            profile: profile.map(str::to_owned),
            warm,
        })
    }

    /// The optional `session` owner: 1..=256 printable characters.
    fn session(&self, id: Option<i64>) -> Result<Option<String>, ParseError> {
        let session = self
            .optional_string("session", errors::INVALID_SESSION)
            .map_err(|e| ParseError { id, ..e })?;
        if let Some(s) = session {
            if s.is_empty()
                || s.chars().count() > MAX_SESSION_CHARS
                || s.chars().any(char::is_control)
            {
                return Err(self.error(
                    id,
                    errors::INVALID_SESSION,
                    format!("session must be 1..={MAX_SESSION_CHARS} printable characters"),
                ));
            }
        }
        Ok(session.map(str::to_owned))
    }
}

fn kind_of(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("the string {:?}", truncate(s, 32)),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}...", &s[..cut]),
        None => s.to_owned(),
    }
}

/// One entry of SERVER_STATUS's `slots` extension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotInfo {
    pub id: u32,
    pub status: SlotStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
}

/// Every answer and every WATCH push. Fields beyond `command`, `error` and `id` appear only where
/// they mean something; unknown fields from other servers are ignored when decoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    /// Absent only when the message could not be read at all (bad JSON, no command).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    pub error: String,
    #[serde(default = "minus_one")]
    pub id: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SlotStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<Vec<SlotInfo>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// START: the instance's access token, which viewers must present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// STATUS: connected viewers of a streamed instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewers: Option<u32>,
    /// STATUS: how long a RUNNING instance has been running, in milliseconds on the agent's
    /// monotonic clock (an extension; the seed's servers omit it). The operator measures
    /// `maxDuration` with it, so no decision compares two machines' wall clocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_ms: Option<u64>,
    /// SERVER_STATUS: how many busy slots hold warm (unclaimed) instances; `running` counts them
    /// too, as it counts every slot that is not IDLE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<u32>,
    /// STATUS, CLAIM: the pool owner (`pool:UID`) a claimed instance was warm for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
}

fn minus_one() -> i64 {
    -1
}

impl Default for Answer {
    fn default() -> Self {
        Self {
            command: None,
            error: errors::NONE.to_owned(),
            id: -1,
            status: None,
            running: None,
            total: None,
            width: None,
            height: None,
            session: None,
            profile: None,
            reason: None,
            slots: None,
            detail: None,
            token: None,
            viewers: None,
            running_ms: None,
            warm: None,
            pool: None,
        }
    }
}

impl Answer {
    /// A successful answer to `command` about `id`.
    pub fn ok(command: &str, id: i64) -> Self {
        Self {
            command: Some(command.to_owned()),
            id,
            ..Self::default()
        }
    }

    /// A failed answer to `command` about `id`, with an explanation for people.
    pub fn failed(command: &str, id: i64, error: &str, detail: impl Into<String>) -> Self {
        Self {
            command: Some(command.to_owned()),
            error: error.to_owned(),
            id,
            detail: Some(detail.into()),
            ..Self::default()
        }
    }

    pub fn is_ok(&self) -> bool {
        self.error == errors::NONE
    }

    pub fn to_json(&self) -> String {
        // Serialising this plain struct cannot fail; fall back to a fixed text rather than panic.
        serde_json::to_string(self)
            .unwrap_or_else(|_| format!("{{\"error\":\"{}\"}}", errors::INVALID_MESSAGE))
    }
}

#[cfg(test)]
#[path = "command_tests.rs"]
mod tests;
