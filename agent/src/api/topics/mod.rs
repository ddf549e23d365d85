//! The subset of OpenSpace's JSON API (its `server` module) that the Web GUI and the Python
//! client (`openspace-api` on PyPI) use, served for instances the agent renders itself. Pure:
//! text and a [`World`] snapshot in, replies, camera input and property writes out; the sockets
//! live in `api::connection`, `api::socket` (WebSocket) and `api::tcp` (TCP).
//!
//! Envelope (OpenSpace's `connection.cpp`): `{"topic":T,"type":NAME,"payload":{..}}` opens topic
//! T; `{"topic":T,"payload":{..}}` follows up; replies are `{"topic":T,"payload":..}`. Frames
//! without a `topic` (the Python client's `{"type":"apiHandshake",..}`) are ignored. Both
//! clients hand `payload` to their callers without reading `status` (openspace-api-js; the
//! Python client drops a reply without `payload`), so every error reply here also carries a
//! `payload` of the topic's empty shape: `{"topic":T,"status":"error","message":..,"code":C,
//! "payload":{}}`.
//!
//! What a built-in instance answers, per topic type (the shape is the one the named OpenSpace
//! source file sends, under `modules/server/src/topics/`):
//!
//! | topic | answer | why |
//! |---|---|---|
//! | `authorize` | `{"status":"authorized"}`, `{"status":"incorrectKey"}` or `{"status":"badRequest"}` | authorizationtopic.cpp; the password (`password`, or `key` as older servers read it) is the instance's viewer token when tokens are enforced; before it succeeds nothing else is answered (connection.cpp) |
//! | `documentation` `lua` | libraries `[{library,name,fullName,functions:[{name,arguments,returnType,help}]}]` | documentationtopic.cpp; `library` for the Web GUI, `name` for the Python client |
//! | `documentation` `meta` | `[{name,version,description,author,url,license}]` (the built-in scene) | documentationtopic.cpp → `generateLicenseListJson` |
//! | `documentation` `factories` | `[]` | no asset types in the built-in scene |
//! | `documentation` `keyboard`/`keybindings` | `{"name":"Keybindings","keybindings":[]}` | `generateKeybindingsJson`; no key bindings |
//! | `documentation` other | `null` | what OpenSpace sends for a type it does not know |
//! | `flightcontroller` | `connect` → `{type:"connect",connect:{focusNodes,allNodes,interestingTimes}}`; `inputState` moves the camera; `disconnect` stops it; others accepted, silent | flightcontrollertopic.cpp |
//! | `get` | the property `{Description,Value}` or, for `__rootOwner`, the owner tree | getpropertytopic.cpp |
//! | `subscribe` | the property at once and on every change (any connection's `set`); `stop_subscription` ends it | subscriptiontopic.cpp; `property`, or `uri` as the Python client sends it |
//! | `set` | nothing (OpenSpace sends nothing); known writable properties change | setpropertytopic.cpp |
//! | `luascript` | `{"1":value}` for the functions in the lua list, `{}` for none; unless `return` is false | luascripttopic.cpp |
//! | `time` | full time data and the delta-time steps at once, then `{time}` every 50 ms; `stop_subscription` ends it | timetopic.cpp; the renderer's clock (see [`SimTime`]) |
//! | `event` | accepted, silent | eventtopic.cpp sends only when an event fires; none fire (the anchor is fixed) |
//! | `engineMode` | `{"mode":"user_control"}` | enginemodetopic.cpp; never another mode |
//! | `sessionRecording` | `{"state":"idle","files":[]}` (the requested keys) | sessionrecordingtopic.cpp; no recordings |
//! | `cameraPath` | silent | camerapathtopic.cpp sends only while a path flies; none does |
//! | `errorLog` | silent | sends only log lines; the built-in instance logs none to clients |
//! | `missions` | `{"missions":[]}` | missiontopic.cpp; no missions |
//! | `shortcuts` | `{"shortcuts":[]}` | shortcuttopic.cpp; no actions or key bindings |
//! | `actionsKeybinds` | `{"actions":[],"keybinds":[]}` / `{}` | actionkeybindtopic.cpp |
//! | `version` | `{openSpaceVersion,socketApiVersion}` | versiontopic.cpp |
//! | `bounce` | the payload back | bouncetopic.cpp |
//! | `camera`, `trigger`, `skybrowser`, `profile` | silent | nothing in the built-in scene to report or trigger |
//! | anything else | error 404 with `payload: {}` | an unknown type |

mod camera;
mod clock;
mod lua;
mod scene;
mod status;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::media::input::{InputEvent, Velocity};

pub use clock::SimTime;
pub use scene::{Scene, PROPERTIES};

const MAX_TOPICS: usize = 256;
/// Wrong passwords after which a connection is closed.
const MAX_AUTH_FAILURES: u32 = 3;

/// What the instance looks like now, read by the shell before each message.
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    pub scene: Scene,
    pub time: SimTime,
    /// Picture width / height (for the horizontal field of view).
    pub aspect: f32,
}

/// Who may use the connection.
pub enum Access {
    /// Already checked (the WebSocket's `?token=`), or tokens are off.
    Open,
    /// Nothing but `authorize` is answered until the password passes this check.
    Password(Box<dyn Fn(&str) -> bool + Send + Sync>),
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    FlightController,
    Subscription(String),
    Time,
    Other,
}

/// One API connection's open topics.
pub struct ApiSession {
    topics: HashMap<u64, Kind>,
    access: Access,
    authorized: bool,
    failures: u32,
    /// The last velocity this connection set was not zero: stop the camera when it goes.
    moving: bool,
}

/// What handling one message produced.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub replies: Vec<String>,
    pub input: Vec<InputEvent>,
    /// Property writes for the shell to apply to the instance (URI, value), already validated.
    pub sets: Vec<(&'static str, Value)>,
    /// Close the connection after sending the replies.
    pub close: bool,
}

pub(crate) fn reply(topic: u64, payload: Value) -> String {
    json!({"topic": topic, "payload": payload}).to_string()
}

/// An error the clients can read: with a `payload` of the topic's empty shape.
pub(crate) fn error(topic: Option<u64>, message: &str, code: u16, empty: Value) -> String {
    let mut e = json!({"status": "error", "message": message, "code": code, "payload": empty});
    if let Some(t) = topic {
        e["topic"] = json!(t);
    }
    e.to_string()
}

fn event(payload: &Map<String, Value>) -> Option<&str> {
    payload.get("event").and_then(Value::as_str)
}

/// `stop_subscription`, in `event` (most topics) or `status` (eventtopic.cpp).
fn stops(payload: &Map<String, Value>) -> bool {
    [
        event(payload),
        payload.get("status").and_then(Value::as_str),
    ]
    .contains(&Some("stop_subscription"))
}

impl ApiSession {
    /// A connection's session; with [`Access::Password`] only `authorize` is answered at first.
    pub fn new(access: Access) -> Self {
        let authorized = matches!(access, Access::Open);
        Self {
            topics: HashMap::new(),
            access,
            authorized,
            failures: 0,
            moving: false,
        }
    }

    /// Whether some open topic streams on its own (call [`ApiSession::tick`] every 50 ms).
    pub fn wants_ticks(&self) -> bool {
        self.topics.values().any(|k| *k == Kind::Time)
    }

    /// The streamed replies due now: `{time}` for each open `time` topic (timetopic.cpp sends
    /// the current time at most every 50 ms while it changes; the built-in clock always runs).
    pub fn tick(&self, world: &World) -> Vec<String> {
        let mut topics: Vec<u64> = self
            .topics
            .iter()
            .filter(|(_, k)| **k == Kind::Time)
            .map(|(t, _)| *t)
            .collect();
        topics.sort_unstable();
        topics
            .into_iter()
            .map(|t| reply(t, json!({"time": world.time.iso8601()})))
            .collect()
    }

    /// Replies for the subscriptions to `uri` after it changed.
    pub fn changed(&self, uri: &str, world: &World) -> Vec<String> {
        let mut topics: Vec<u64> = self
            .topics
            .iter()
            .filter(|(_, k)| matches!(k, Kind::Subscription(u) if u == uri))
            .map(|(t, _)| *t)
            .collect();
        topics.sort_unstable();
        topics
            .into_iter()
            .filter_map(|t| Some(reply(t, scene::property(uri, world)?)))
            .collect()
    }

    /// Input to send when the connection ends: stops the camera if this connection set it
    /// moving (a client that vanishes mid-drag must not leave it turning).
    pub fn on_close(&mut self) -> Vec<InputEvent> {
        if std::mem::take(&mut self.moving) {
            vec![InputEvent::Velocity(Velocity::default())]
        } else {
            Vec::new()
        }
    }

    /// Handles one message (a WebSocket text message or one TCP line) against the instance as
    /// `world` shows it. Never fails: bad input gets an error reply with a `payload`, or
    /// (before authorization, and for frames without a `topic`) nothing.
    pub fn handle(&mut self, text: &str, world: &World) -> Outcome {
        let mut out = Outcome::default();
        let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
            if self.authorized {
                out.replies.push(error(
                    None,
                    "expected a JSON object {\"topic\",\"type\",\"payload\"}",
                    400,
                    json!({}),
                ));
            }
            return out;
        };
        // Frames without a topic mean nothing to the API (the clients ignore them too).
        let Some(topic) = message.get("topic").and_then(Value::as_u64) else {
            return out;
        };
        let empty = Map::new();
        let payload = message
            .get("payload")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let name = message.get("type").and_then(Value::as_str);
        if !self.authorized {
            if name == Some("authorize") {
                self.authorize(topic, payload, &mut out);
            }
            return out;
        }
        let kind = match (name, self.topics.get(&topic)) {
            (Some(name), _) => {
                if self.topics.len() >= MAX_TOPICS && !self.topics.contains_key(&topic) {
                    out.replies
                        .push(error(Some(topic), "too many open topics", 429, json!({})));
                    return out;
                }
                self.topics.remove(&topic);
                match self.open(topic, name, payload, world, &mut out) {
                    Some(kind) => kind,
                    None => return out,
                }
            }
            (None, Some(kind)) => kind.clone(),
            (None, None) => {
                out.replies.push(error(
                    Some(topic),
                    "unknown topic: open it with a \"type\" first",
                    404,
                    json!({}),
                ));
                return out;
            }
        };
        match kind {
            Kind::FlightController => camera::flight(self, topic, payload, &mut out),
            Kind::Subscription(_) | Kind::Time | Kind::Other => {
                if stops(payload) {
                    self.topics.remove(&topic);
                }
            }
        }
        out
    }

    /// Whether the connection may use more than `authorize`.
    pub fn is_authorized(&self) -> bool {
        self.authorized
    }

    /// Only the `authorize` step (for a relay that checks the token and then passes the rest
    /// on unchanged): answers `authorize`, ignores everything else.
    pub fn authorize_only(&mut self, text: &str) -> Outcome {
        let mut out = Outcome::default();
        if let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) {
            let topic = message.get("topic").and_then(Value::as_u64);
            let empty = Map::new();
            let payload = message
                .get("payload")
                .and_then(Value::as_object)
                .unwrap_or(&empty);
            if let (Some(topic), Some("authorize")) =
                (topic, message.get("type").and_then(Value::as_str))
            {
                self.authorize(topic, payload, &mut out);
            }
        }
        out
    }

    fn authorize(&mut self, topic: u64, payload: &Map<String, Value>, out: &mut Outcome) {
        let given = payload
            .get("password")
            .or_else(|| payload.get("key"))
            .and_then(Value::as_str);
        let status = match (&self.access, given) {
            (Access::Open, _) => "authorized",
            (Access::Password(_), None) => "badRequest",
            (Access::Password(check), Some(p)) if check(p) => "authorized",
            (Access::Password(_), Some(_)) => "incorrectKey",
        };
        if status == "authorized" {
            self.authorized = true;
        } else {
            self.failures += 1;
            out.close = self.failures >= MAX_AUTH_FAILURES;
        }
        out.replies.push(reply(topic, json!({"status": status})));
    }

    /// Opens `topic` as `name`, answering what answers at once. None when nothing follows
    /// (the topic is done, as OpenSpace's `isDone()` says).
    fn open(
        &mut self,
        topic: u64,
        name: &str,
        payload: &Map<String, Value>,
        world: &World,
        out: &mut Outcome,
    ) -> Option<Kind> {
        let uri = || {
            payload
                .get("property")
                .or_else(|| payload.get("uri"))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let stop = stops(payload);
        let keep = |this: &mut Self, kind: Kind| {
            this.topics.insert(topic, kind);
            None
        };
        match name {
            "authorize" => {
                self.authorize(topic, payload, out);
                None
            }
            "flightcontroller" => {
                self.topics.insert(topic, Kind::FlightController);
                Some(Kind::FlightController)
            }
            "documentation" => {
                let kind = payload.get("type").and_then(Value::as_str).unwrap_or("");
                out.replies.push(reply(topic, lua::documentation(kind)));
                None
            }
            "get" => {
                let uri = uri();
                match scene::property(uri, world) {
                    Some(value) => out.replies.push(reply(topic, value)),
                    None => out.replies.push(error(
                        Some(topic),
                        &format!("no property {uri:?}"),
                        404,
                        json!({}),
                    )),
                }
                None
            }
            "subscribe" => {
                let uri = uri();
                if stop {
                    return None;
                }
                match scene::property(uri, world) {
                    Some(value) => {
                        out.replies.push(reply(topic, value));
                        keep(self, Kind::Subscription(uri.to_owned()))
                    }
                    // OpenSpace logs a warning and sends nothing; the clients would wait for a
                    // value forever, so say why.
                    None => {
                        out.replies.push(error(
                            Some(topic),
                            &format!("no property {uri:?}"),
                            404,
                            json!({}),
                        ));
                        None
                    }
                }
            }
            "set" => {
                if let Some(set) = scene::validate_set(uri(), payload.get("value"), world) {
                    out.sets.push(set);
                }
                None
            }
            "luascript" => {
                let result = lua::run(payload, world);
                if let Some(set) = result.set {
                    out.sets.push(set);
                }
                if payload.get("return").and_then(Value::as_bool) != Some(false) {
                    out.replies.push(match result.value {
                        Ok(value) => reply(topic, value),
                        Err(message) => error(Some(topic), &message, 400, json!({})),
                    });
                }
                None
            }
            "time" => {
                if stop {
                    return None;
                }
                out.replies.push(reply(topic, world.time.full()));
                out.replies.push(reply(topic, SimTime::steps()));
                if event(payload) == Some("start_subscription") {
                    keep(self, Kind::Time)
                } else {
                    None
                }
            }
            "event" | "cameraPath" | "errorLog" | "camera" | "skybrowser" => {
                if stop {
                    None
                } else {
                    keep(self, Kind::Other)
                }
            }
            name if status::TOPICS.contains(&name) => {
                out.replies.extend(status::answer(topic, name, payload));
                let streams = matches!(name, "engineMode" | "sessionRecording");
                if streams && !stop && event(payload) == Some("start_subscription") {
                    keep(self, Kind::Other)
                } else {
                    None
                }
            }
            "trigger" | "profile" => None,
            other => {
                out.replies.push(error(
                    Some(topic),
                    &format!("topic type {other:?} is not supported by this instance"),
                    404,
                    json!({}),
                ));
                None
            }
        }
    }
}
