//! The subset of OpenSpace's JSON API (its `server` module) that the Web GUI uses for camera
//! control, served for instances the agent renders itself. Pure: text in, replies and camera
//! input out; the socket lives in `api::socket`.
//!
//! Envelope: `{"topic":T,"type":NAME,"payload":{..}}` opens topic T; `{"topic":T,"payload":{..}}`
//! follows up; replies are `{"topic":T,"payload":..}`; errors
//! `{"topic":T,"status":"error","message":..,"code":404}`.
//!
//! Implemented: `flightcontroller` (connect, inputState, disconnect; updateView, friction,
//! autopilot and lua are accepted and ignored), `documentation` (`{"type":"lua"}`), `get`
//! (`__rootOwner` and the properties below), `subscribe` (answered at once), `set` (known
//! properties), `luascript` (answered with `{}`), `version`, `shortcuts`, `missions`.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::media::input::{InputEvent, Velocity};

/// Velocity units per flight-controller axis unit: the GUI sends small values (drag deltas / 20).
const VELOCITY_SCALE: f32 = 5.0;
const MAX_TOPICS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    FlightController,
    Subscription,
    Other,
}

/// One API connection's open topics.
#[derive(Default)]
pub struct ApiSession {
    topics: HashMap<u64, Kind>,
    friction: bool,
}

/// What handling one message produced.
#[derive(Debug, Default, PartialEq)]
pub struct Outcome {
    pub replies: Vec<String>,
    pub input: Vec<InputEvent>,
}

fn reply(topic: u64, payload: Value) -> String {
    json!({"topic": topic, "payload": payload}).to_string()
}

fn error(topic: Option<u64>, message: &str, code: u16) -> String {
    match topic {
        Some(t) => json!({"topic": t, "status": "error", "message": message, "code": code}),
        None => json!({"status": "error", "message": message, "code": code}),
    }
    .to_string()
}

fn node(identifier: &str, gui_name: &str) -> Value {
    json!({"identifier": identifier, "guiName": gui_name, "guiPath": "/Solar System"})
}

/// The scene's navigable nodes, as `connect` reports them.
fn nodes() -> Value {
    json!({"Earth": node("Earth", "Earth"), "Moon": node("Moon", "Moon")})
}

const FRICTION: &str = "NavigationHandler.OrbitalNavigator.Friction.RotationalFriction";

impl ApiSession {
    pub fn handle(&mut self, text: &str) -> Outcome {
        let mut out = Outcome::default();
        let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
            out.replies.push(error(
                None,
                "expected a JSON object {\"topic\",\"type\",\"payload\"}",
                400,
            ));
            return out;
        };
        // Frames without a topic mean nothing to the API (the GUI ignores them too).
        let Some(topic) = message.get("topic").and_then(Value::as_u64) else {
            return out;
        };
        let empty = Map::new();
        let payload = message
            .get("payload")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let kind = match (
            message.get("type").and_then(Value::as_str),
            self.topics.get(&topic),
        ) {
            (Some(name), _) => {
                if self.topics.len() >= MAX_TOPICS && !self.topics.contains_key(&topic) {
                    out.replies
                        .push(error(Some(topic), "too many open topics", 429));
                    return out;
                }
                match self.open(topic, name, payload, &mut out) {
                    Some(kind) => kind,
                    None => return out,
                }
            }
            (None, Some(kind)) => *kind,
            (None, None) => {
                out.replies.push(error(
                    Some(topic),
                    "unknown topic: open it with a \"type\" first",
                    404,
                ));
                return out;
            }
        };
        if kind == Kind::FlightController {
            self.flight(topic, payload, &mut out);
        }
        out
    }

    /// Opens `topic` as `name`, answering what answers at once. None when nothing follows.
    fn open(
        &mut self,
        topic: u64,
        name: &str,
        payload: &Map<String, Value>,
        out: &mut Outcome,
    ) -> Option<Kind> {
        let kind = match name {
            "flightcontroller" => Kind::FlightController,
            "subscribe" | "time" | "event" => Kind::Subscription,
            _ => Kind::Other,
        };
        self.topics.insert(topic, kind);
        let property = payload.get("property").and_then(Value::as_str);
        match name {
            "flightcontroller" => return Some(kind),
            "documentation" => out.replies.push(reply(topic, documentation())),
            "version" => out.replies.push(reply(
                topic,
                json!({"openSpaceVersion": {"major": 0, "minor": 20, "patch": 0},
                       "socketApiVersion": {"major": 1, "minor": 1, "patch": 0}}),
            )),
            "get" | "subscribe" => match property.and_then(|p| self.property(p)) {
                Some(value) => out.replies.push(reply(topic, value)),
                None => out.replies.push(error(
                    Some(topic),
                    &format!("no property {:?}", property.unwrap_or("")),
                    404,
                )),
            },
            "set" => {
                if property == Some(FRICTION) {
                    self.friction = payload
                        .get("value")
                        .and_then(Value::as_bool)
                        .unwrap_or(self.friction);
                }
            }
            "luascript" => out.replies.push(reply(topic, json!({}))),
            "shortcuts" => out
                .replies
                .push(reply(topic, json!({"shortcuts": [], "keybinds": []}))),
            "missions" => out.replies.push(reply(topic, json!({"missions": []}))),
            "time" | "event" => {}
            other => {
                self.topics.remove(&topic);
                out.replies.push(error(
                    Some(topic),
                    &format!("topic type {other:?} is not supported by this instance"),
                    404,
                ));
            }
        }
        None
    }

    fn flight(&mut self, topic: u64, payload: &Map<String, Value>, out: &mut Outcome) {
        match payload.get("type").and_then(Value::as_str) {
            Some("connect") => out.replies.push(reply(
                topic,
                json!({"type": "connect", "connect": {"focusNodes": nodes(), "allNodes": nodes(), "interestingTimes": []}}),
            )),
            Some("inputState") => {
                let values = payload
                    .get("inputState")
                    .and_then(|s| s.get("values"))
                    .and_then(Value::as_object);
                out.input.push(InputEvent::Velocity(velocity(values)));
            }
            Some("disconnect") => {
                out.input.push(InputEvent::Velocity(Velocity::default()));
                self.topics.remove(&topic);
            }
            Some("updateView" | "friction" | "autopilot" | "lua") => {}
            Some(other) => out.replies.push(error(Some(topic), &format!("flightcontroller has no {other:?}"), 404)),
            None => out.replies.push(error(Some(topic), "flightcontroller messages need a payload \"type\"", 400)),
        }
    }

    fn property(&self, uri: &str) -> Option<Value> {
        match uri {
            "__rootOwner" => Some(json!({
                "identifier": "", "guiName": "", "description": "", "properties": [], "tag": [], "uri": "",
                "subowners": [{
                    "identifier": "NavigationHandler", "guiName": "Navigation Handler", "description": "",
                    "properties": [], "tag": [], "uri": "NavigationHandler", "subowners": [],
                }],
            })),
            FRICTION => Some(json!({
                "Description": {"Identifier": "RotationalFriction", "Name": "Rotational Friction", "Type": "BoolProperty",
                                "MetaData": {"Visibility": "User", "ReadOnly": false}},
                "Value": self.friction,
            })),
            _ => None,
        }
    }
}

/// Each inputState message zeroes every axis, then sets the given ones (OpenSpace semantics).
fn velocity(values: Option<&Map<String, Value>>) -> Velocity {
    let get = |name: &str| -> f32 {
        let v = values
            .and_then(|m| m.get(name))
            .and_then(Value::as_f64)
            .unwrap_or(0.0) as f32;
        if v.is_finite() {
            v.clamp(-10.0, 10.0) * VELOCITY_SCALE
        } else {
            0.0
        }
    };
    Velocity {
        orbit_x: get("orbitX"),
        orbit_y: get("orbitY"),
        zoom: get("zoomIn") - get("zoomOut"),
        pan_x: get("panX"),
        pan_y: get("panY"),
        roll: get("localRollX") + get("globalRollX"),
    }
}

fn documentation() -> Value {
    let function = |name: &str, args: &[(&str, &str)], help: &str| {
        json!({"name": name, "arguments": args.iter().map(|(n, t)| json!({"name": n, "type": t})).collect::<Vec<_>>(),
               "returnType": "", "help": help})
    };
    json!([{
        "library": "", "name": "", "fullName": "openspace",
        "functions": [
            function("setPropertyValueSingle", &[("uri", "String"), ("value", "any")], "Sets a property"),
            function("getPropertyValue", &[("uri", "String")], "Returns a property's value"),
        ],
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn the_gui_start_up_sequence_is_answered() {
        let mut s = ApiSession::default();
        let out = s.handle(r#"{"topic":0,"type":"documentation","payload":{"type":"lua"}}"#);
        assert!(parse(&out.replies[0])["payload"].is_array());
        let out = s.handle(r#"{"topic":1,"type":"get","payload":{"property":"__rootOwner"}}"#);
        assert_eq!(
            parse(&out.replies[0])["payload"]["subowners"][0]["identifier"],
            "NavigationHandler"
        );
        let out = s.handle(&format!(r#"{{"topic":2,"type":"subscribe","payload":{{"event":"start_subscription","property":"{FRICTION}"}}}}"#));
        assert_eq!(parse(&out.replies[0])["payload"]["Value"], false);
        let out = s.handle(r#"{"topic":3,"type":"flightcontroller","payload":{"type":"connect"}}"#);
        let connect = parse(&out.replies[0]);
        assert_eq!(
            (
                connect["topic"].as_u64(),
                connect["payload"]["type"].as_str()
            ),
            (Some(3), Some("connect"))
        );
        assert!(connect["payload"]["connect"]["focusNodes"]["Earth"].is_object());
    }

    #[test]
    fn input_state_sets_velocities_that_persist_until_the_next_message() {
        let mut s = ApiSession::default();
        s.handle(r#"{"topic":5,"type":"flightcontroller","payload":{"type":"connect"}}"#);
        let out = s.handle(r#"{"topic":5,"payload":{"type":"inputState","inputState":{"values":{"orbitX":-0.05,"orbitY":0.1,"zoomOut":0.2}}}}"#);
        let [InputEvent::Velocity(v)] = out.input.as_slice() else {
            panic!("{out:?}")
        };
        assert_eq!((v.orbit_x, v.orbit_y, v.zoom), (-0.25, 0.5, -1.0));
        let out =
            s.handle(r#"{"topic":5,"payload":{"type":"inputState","inputState":{"values":{}}}}"#);
        assert_eq!(out.input, vec![InputEvent::Velocity(Velocity::default())]);
        let out = s.handle(r#"{"topic":5,"payload":{"type":"disconnect"}}"#);
        assert_eq!(out.input, vec![InputEvent::Velocity(Velocity::default())]);
    }

    #[test]
    fn bad_messages_get_the_apis_error_shape() {
        let mut s = ApiSession::default();
        assert_eq!(parse(&s.handle("garbage").replies[0])["status"], "error");
        assert_eq!(s.handle(r#"{"no":"topic"}"#), Outcome::default());
        let e = parse(&s.handle(r#"{"topic":9,"payload":{}}"#).replies[0]);
        assert_eq!(
            (e["topic"].as_u64(), e["code"].as_u64()),
            (Some(9), Some(404))
        );
        let e = parse(
            &s.handle(r#"{"topic":10,"type":"teleport","payload":{}}"#)
                .replies[0],
        );
        assert_eq!(e["status"], "error");
        let e = parse(
            &s.handle(r#"{"topic":11,"type":"get","payload":{"property":"Nope"}}"#)
                .replies[0],
        );
        assert_eq!(e["code"], 404);
        let out = s.handle(r#"{"topic":12,"type":"flightcontroller","payload":{"type":"inputState","inputState":{"values":{"orbitX":1e400}}}}"#);
        assert!(
            out.input.is_empty()
                || matches!(out.input[0], InputEvent::Velocity(v) if v.orbit_x.is_finite())
        );
    }
}
