//! Topics that report engine state the built-in instance has little of, answered in the shape
//! of OpenSpace's own server topic (the file named per topic, `modules/server/src/topics/`):
//! one answer each, from fixed state.

use serde_json::{json, Map, Value};

use super::{event, reply, stops};

/// The topic types answered here.
pub const TOPICS: [&str; 7] = [
    "version",
    "engineMode",
    "sessionRecording",
    "missions",
    "shortcuts",
    "actionsKeybinds",
    "bounce",
];

/// The replies to opening `topic` as `name` (one of [`TOPICS`]) with `payload`.
pub fn answer(topic: u64, name: &str, payload: &Map<String, Value>) -> Vec<String> {
    if stops(payload) {
        return Vec::new();
    }
    let body = match name {
        // versiontopic.cpp: OpenSpace's version and the socket API's.
        "version" => json!({"openSpaceVersion": {"major": 0, "minor": 20, "patch": 0},
                            "socketApiVersion": {"major": 1, "minor": 1, "patch": 0}}),
        // enginemodetopic.cpp: never a session recording playback or camera path here.
        "engineMode" => json!({"mode": "user_control"}),
        // sessionrecordingtopic.cpp: only the keys asked for in `properties`; nothing if none.
        "sessionRecording" => {
            let wanted = |key: &str| {
                payload
                    .get("properties")
                    .and_then(Value::as_array)
                    .is_some_and(|p| p.iter().any(|v| v.as_str() == Some(key)))
            };
            let mut state = Map::new();
            if wanted("state") {
                state.insert("state".into(), json!("idle"));
            }
            if wanted("files") {
                state.insert("files".into(), json!([]));
            }
            if state.is_empty() {
                return Vec::new();
            }
            Value::Object(state)
        }
        // missiontopic.cpp (OpenSpace sends `null` for none; a list reads better in the GUI).
        "missions" => json!({"missions": []}),
        // shortcuttopic.cpp: actions and key bindings, none here.
        "shortcuts" => json!({"shortcuts": []}),
        // actionkeybindtopic.cpp: `get_all` and `get_action`; other events answer nothing.
        "actionsKeybinds" => match event(payload) {
            Some("get_all") => json!({"actions": [], "keybinds": []}),
            Some("get_action") => json!({}),
            _ => return Vec::new(),
        },
        // bouncetopic.cpp: the payload back.
        "bounce" => Value::Object(payload.clone()),
        _ => return Vec::new(),
    };
    vec![reply(topic, body)]
}
