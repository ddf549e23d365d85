//! The `flightcontroller` topic (OpenSpace's `flightcontrollertopic.cpp`): `connect` lists the
//! built-in scene's nodes, `inputState` sets camera velocities, `disconnect` stops the camera.

use serde_json::{json, Map, Value};

use super::{error, reply, ApiSession, Outcome};
use crate::media::input::{InputEvent, Velocity};

/// Velocity units per flight-controller axis unit: the GUI sends small values (drag deltas / 20).
const VELOCITY_SCALE: f32 = 5.0;

/// The scene's nodes as `connect` lists them: `(identifier, guiName)`. The camera's anchor is
/// always the first (`NavigationHandler.OrbitalNavigator.Anchor`).
pub const NODES: [(&str, &str); 3] = [("Earth", "Earth"), ("Moon", "Moon"), ("Sun", "Sun")];

/// `{identifier: {identifier, guiName, guiPath}}` for every node.
fn nodes() -> Value {
    let map: Map<String, Value> = NODES
        .iter()
        .map(|(id, name)| {
            (
                (*id).to_owned(),
                json!({"identifier": id, "guiName": name, "guiPath": "/Solar System"}),
            )
        })
        .collect();
    Value::Object(map)
}

pub(super) fn flight(
    session: &mut ApiSession,
    topic: u64,
    payload: &Map<String, Value>,
    out: &mut Outcome,
) {
    match payload.get("type").and_then(Value::as_str) {
        Some("connect") => out.replies.push(reply(
            topic,
            json!({"type": "connect", "connect": {
                "focusNodes": nodes(), "allNodes": nodes(), "interestingTimes": []}}),
        )),
        Some("inputState") => {
            let values = payload
                .get("inputState")
                .and_then(|s| s.get("values"))
                .and_then(Value::as_object);
            let v = velocity(values);
            session.moving = v != Velocity::default();
            out.input.push(InputEvent::Velocity(v));
        }
        Some("disconnect") => {
            session.moving = false;
            out.input.push(InputEvent::Velocity(Velocity::default()));
            session.topics.remove(&topic);
        }
        Some("updateView" | "friction" | "autopilot" | "lua") => {}
        Some(other) => out.replies.push(error(
            Some(topic),
            &format!("flightcontroller has no {other:?}"),
            404,
            json!({}),
        )),
        None => out.replies.push(error(
            Some(topic),
            "flightcontroller messages need a payload \"type\"",
            400,
            json!({}),
        )),
    }
}

/// Each inputState message zeroes every axis, then sets the given ones (OpenSpace semantics).
fn velocity(values: Option<&Map<String, Value>>) -> Velocity {
    let get = |name: &str| -> f32 {
        let v = values
            .and_then(|m| m.get(name))
            .and_then(Value::as_f64)
            .unwrap_or(0.0);
        // Clamped in f64: a huge value must not become an infinite f32.
        v.clamp(-10.0, 10.0) as f32 * VELOCITY_SCALE
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
