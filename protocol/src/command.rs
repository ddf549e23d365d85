//! The seed's command protocol (backend -> rendering server): request and answer types, and a
//! parser that turns any text into either a valid [`Request`] or a [`ParseError`] that already
//! knows the answer to send back. Shared with the operator, which uses the same types through
//! [`crate::client`].
//!
//! Wire facts (see `shared/spec/protocols.md`): every answer repeats `command`, carries `error`
//! (`"none"` on success) and `id`. Fields this project adds (`session`, `width`, `height`,
//! `profile`, `reason`, `slots`, `detail`, the `WATCH` command) are optional, so clients of the
//! original supervisor keep working.

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
            other => Err(ParseError {
                command: Some(other.to_owned()),
                id: None,
                error: format!("{}{}", errors::UNKNOWN_COMMAND_PREFIX, truncate(other, 64)),
                detail: "known commands: START, STOP, RESOLUTION, STATUS, SERVER_STATUS, WATCH"
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
        let session = self.optional_string("session", errors::INVALID_SESSION)?;
        if let Some(s) = session {
            if s.is_empty()
                || s.chars().count() > MAX_SESSION_CHARS
                || s.chars().any(char::is_control)
            {
                return Err(self.error(
                    None,
                    errors::INVALID_SESSION,
                    format!("session must be 1..={MAX_SESSION_CHARS} printable characters"),
                ));
            }
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
            session: session.map(str::to_owned),
            width,
            height,
            profile: profile.map(str::to_owned),
        })
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
mod tests {
    use super::*;

    fn err(text: &str) -> ParseError {
        Request::parse(text).expect_err(text)
    }

    #[test]
    fn parses_every_command_of_the_seed() {
        assert_eq!(
            Request::parse(r#"{"command":"START"}"#),
            Ok(Request::Start(StartRequest::default()))
        );
        assert_eq!(
            Request::parse(r#"{"command":"STOP","id":2}"#),
            Ok(Request::Stop { id: 2 })
        );
        assert_eq!(
            Request::parse(r#"{"command":"STATUS","id":0}"#),
            Ok(Request::Status { id: 0 })
        );
        assert_eq!(
            Request::parse(r#"{"command":"RESOLUTION","id":1,"width":1920,"height":1080}"#),
            Ok(Request::Resolution {
                id: 1,
                width: 1920,
                height: 1080
            })
        );
        assert_eq!(
            Request::parse(r#"{"command":"SERVER_STATUS"}"#),
            Ok(Request::ServerStatus)
        );
        assert_eq!(Request::parse(r#"{"command":"WATCH"}"#), Ok(Request::Watch));
    }

    #[test]
    fn start_extensions_are_validated() {
        assert_eq!(
            Request::parse(
                r#"{"command":"START","session":"uid-1","width":640,"height":480,"profile":"mars"}"#
            ),
            Ok(Request::Start(StartRequest {
                session: Some("uid-1".into()),
                width: Some(640),
                height: Some(480),
                profile: Some("mars".into()),
            }))
        );
        assert_eq!(
            err(r#"{"command":"START","width":640}"#).error,
            errors::INVALID_RESOLUTION
        );
        assert_eq!(
            err(r#"{"command":"START","width":8,"height":480}"#).error,
            errors::INVALID_RESOLUTION
        );
        assert_eq!(
            err(r#"{"command":"START","profile":"a b"}"#).error,
            errors::INVALID_PROFILE
        );
        assert_eq!(
            err(r#"{"command":"START","profile":"-rf"}"#).error,
            errors::INVALID_PROFILE
        );
        assert_eq!(
            err(r#"{"command":"START","session":""}"#).error,
            errors::INVALID_SESSION
        );
        assert_eq!(
            err(r#"{"command":"START","session":7}"#).error,
            errors::INVALID_SESSION
        );
    }

    #[test]
    fn bad_messages_get_the_documented_errors() {
        let e = err("not json");
        assert_eq!(
            (e.error.as_str(), e.command, e.id),
            (errors::JSON_DECODE, None, None)
        );
        assert_eq!(err("[1,2]").error, errors::INVALID_MESSAGE);
        assert_eq!(err(r#"{"id":1}"#).error, errors::MISSING_COMMAND);
        assert_eq!(err(r#"{"command":5}"#).error, errors::INVALID_MESSAGE);
        let e = err(r#"{"command":"REBOOT"}"#);
        assert_eq!(e.error, "invalid message received: REBOOT");
        assert_eq!(e.command.as_deref(), Some("REBOOT"));
        assert_eq!(err(r#"{"command":"STOP"}"#).error, errors::MISSING_ID);
        let e = err(r#"{"command":"STOP","id":-1}"#);
        assert_eq!((e.error.as_str(), e.id), (errors::INVALID_ID, Some(-1)));
        assert_eq!(
            err(r#"{"command":"STATUS","id":"0"}"#).error,
            errors::INVALID_ID
        );
        assert_eq!(
            err(r#"{"command":"STATUS","id":1.5}"#).error,
            errors::INVALID_ID
        );
        assert_eq!(
            err(r#"{"command":"STATUS","id":1e30}"#).error,
            errors::INVALID_ID
        );
        assert_eq!(
            err(r#"{"command":"STATUS","id":99999999999}"#).error,
            errors::INVALID_ID
        );
        let e = err(r#"{"command":"RESOLUTION","id":1,"width":1920}"#);
        assert_eq!(
            (e.error.as_str(), e.id),
            (errors::INVALID_RESOLUTION, Some(1))
        );
        assert_eq!(
            err(r#"{"command":"RESOLUTION","id":1,"width":1920,"height":5000}"#).error,
            errors::INVALID_RESOLUTION
        );
    }

    #[test]
    fn error_answers_echo_what_was_known() {
        let a = err(r#"{"command":"STOP","id":-3}"#).answer();
        assert_eq!(a.command.as_deref(), Some("STOP"));
        assert_eq!(a.id, -3);
        let a = err("{").answer();
        assert!(!a.to_json().contains("\"command\""));
        assert_eq!(a.id, -1);
    }

    #[test]
    fn answers_of_the_original_decode() {
        let a: Answer = serde_json::from_str(
            r#"{"command":"SERVER_STATUS","error":"none","id":0,"running":1,"total":3}"#,
        )
        .unwrap();
        assert_eq!((a.running, a.total, a.is_ok()), (Some(1), Some(3), true));
        let a: Answer = serde_json::from_str(r#"{"error":"json decode error"}"#).unwrap();
        assert_eq!((a.id, a.is_ok()), (-1, false));
    }

    #[test]
    fn slot_status_strings_match_the_seed() {
        for s in [
            SlotStatus::Idle,
            SlotStatus::Initializing,
            SlotStatus::Running,
            SlotStatus::Deinitializing,
            SlotStatus::Invalid,
        ] {
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                Value::String(s.as_str().into())
            );
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        fn request() -> impl Strategy<Value = Request> {
            let id = any::<u32>();
            let start = (
                proptest::option::of("[ -~]{1,64}"),
                proptest::option::of((WIDTH_RANGE, HEIGHT_RANGE)),
                proptest::option::of("[A-Za-z0-9_][A-Za-z0-9._-]{0,30}"),
            )
                .prop_map(|(session, size, profile)| {
                    Request::Start(StartRequest {
                        session,
                        width: size.map(|s| s.0),
                        height: size.map(|s| s.1),
                        profile,
                    })
                });
            prop_oneof![
                start,
                id.prop_map(|id| Request::Stop { id }),
                id.prop_map(|id| Request::Status { id }),
                (id, WIDTH_RANGE, HEIGHT_RANGE)
                    .prop_map(|(id, width, height)| Request::Resolution { id, width, height }),
                Just(Request::ServerStatus),
                Just(Request::Watch),
            ]
        }

        /// JSON objects made of the protocol's own keys and plausible-but-wrong values.
        fn near_miss() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<f64>().prop_map(
                    |f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
                ),
                prop_oneof![
                    Just("START"),
                    Just("STOP"),
                    Just("STATUS"),
                    Just("RESOLUTION"),
                    Just("SERVER_STATUS"),
                    Just("WATCH"),
                    Just("start"),
                    Just("")
                ]
                .prop_map(Value::from),
                ".{0,20}".prop_map(Value::from),
            ];
            let value = leaf.prop_recursive(2, 8, 4, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    proptest::collection::btree_map(".{0,4}", inner, 0..3)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            });
            let key = prop_oneof![
                Just("command"),
                Just("id"),
                Just("width"),
                Just("height"),
                Just("session"),
                Just("profile"),
                Just("x")
            ];
            proptest::collection::btree_map(key, value, 0..6).prop_map(|m| {
                Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            })
        }

        proptest! {
            #[test]
            fn every_request_survives_the_wire(request in request()) {
                let text = serde_json::to_string(&request).unwrap();
                prop_assert_eq!(Request::parse(&text), Ok(request));
            }

            #[test]
            fn any_text_is_answered_without_panicking(text in ".{0,200}") {
                if let Err(e) = Request::parse(&text) {
                    let answer: Answer = serde_json::from_str(&e.answer().to_json()).unwrap();
                    prop_assert!(!answer.is_ok());
                }
            }

            #[test]
            fn near_misses_are_accepted_only_when_valid(value in near_miss()) {
                let text = value.to_string();
                match Request::parse(&text) {
                    // Whatever was accepted means the same when sent again.
                    Ok(request) => {
                        let again = serde_json::to_string(&request).unwrap();
                        prop_assert_eq!(Request::parse(&again), Ok(request));
                    }
                    // Every refusal names an error, explains it, and echoes a known id only.
                    Err(e) => {
                        prop_assert!(e.error != errors::NONE && !e.detail.is_empty());
                        if let Some(id) = e.id {
                            prop_assert_eq!(value.get("id").and_then(Value::as_i64), Some(id));
                        }
                    }
                }
            }
        }
    }
}
