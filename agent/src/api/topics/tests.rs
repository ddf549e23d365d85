//! Topic-by-topic answers of the built-in instance, checked against the shapes OpenSpace's
//! server topics send and its clients read.

use super::scene::{ANCHOR, FOV, FRICTION};
use super::*;

fn world() -> World {
    World {
        scene: Scene::default(),
        time: SimTime {
            unix: 1_798_761_599.5,
            delta_time: 960.0,
            paused: false,
        },
        aspect: 16.0 / 9.0,
    }
}

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

/// Opens a topic and returns the parsed replies.
fn ask(s: &mut ApiSession, topic: u64, kind: &str, payload: Value) -> Vec<Value> {
    let text = json!({"topic": topic, "type": kind, "payload": payload}).to_string();
    s.handle(&text, &world())
        .replies
        .iter()
        .map(|r| parse(r))
        .collect()
}

fn open() -> ApiSession {
    ApiSession::new(Access::Open)
}

#[test]
fn the_gui_start_up_sequence_gets_a_payload_for_every_topic() {
    // The Web GUI's order against a built-in instance (protocols.md).
    let mut s = open();
    let sequence = [
        ("documentation", json!({"type": "lua"})),
        ("cameraPath", json!({"event": "start_subscription"})),
        ("documentation", json!({"type": "meta"})),
        ("flightcontroller", json!({"type": "connect"})),
        ("missions", json!({})),
        ("version", json!({})),
        ("shortcuts", json!({"event": "get_all_shortcuts"})),
        (
            "sessionRecording",
            json!({"event": "start_subscription", "properties": ["state", "files"]}),
        ),
        (
            "event",
            json!({"event": "*", "status": "start_subscription"}),
        ),
        (
            "engineMode",
            json!({"event": "start_subscription", "properties": ["mode"]}),
        ),
        ("time", json!({"event": "start_subscription"})),
        ("get", json!({"property": "__rootOwner"})),
    ];
    let mut answers = Vec::new();
    for (topic, (kind, payload)) in sequence.into_iter().enumerate() {
        for reply in ask(&mut s, topic as u64, kind, payload) {
            assert_eq!(reply["topic"], topic, "{kind}: {reply}");
            assert!(
                reply.get("payload").is_some(),
                "{kind} without payload: {reply}"
            );
            assert!(reply.get("status").is_none(), "{kind} errs: {reply}");
            answers.push((kind, reply["payload"].clone()));
        }
    }
    let of = |kind: &str| -> Vec<&Value> {
        answers
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, p)| p)
            .collect()
    };
    assert!(
        of("cameraPath").is_empty(),
        "cameraPath is silent without a path"
    );
    assert!(of("event").is_empty(), "no event fires");
    let docs = of("documentation");
    assert!(docs[0].is_array() && docs[0][0]["functions"].is_array());
    assert_eq!(docs[1][0]["name"], "openspace-k8s built-in scene");
    assert!(
        docs[1][0].get("functions").is_none(),
        "meta is not the lua list"
    );
    assert_eq!(of("flightcontroller")[0]["type"], "connect");
    for node in ["Earth", "Moon", "Sun"] {
        assert!(of("flightcontroller")[0]["connect"]["focusNodes"][node].is_object());
    }
    assert_eq!(*of("missions")[0], json!({"missions": []}));
    assert_eq!(of("version")[0]["socketApiVersion"]["major"], 1);
    assert_eq!(*of("shortcuts")[0], json!({"shortcuts": []}));
    assert_eq!(
        *of("sessionRecording")[0],
        json!({"state": "idle", "files": []})
    );
    assert_eq!(*of("engineMode")[0], json!({"mode": "user_control"}));
    let time = of("time");
    assert_eq!(time[0]["time"], "2026-12-31T23:59:59.500");
    assert_eq!(
        (time[0]["deltaTime"].as_f64(), time[0]["isPaused"].as_bool()),
        (Some(960.0), Some(false))
    );
    assert_eq!(time[1]["deltaTimeSteps"], json!([]));
    let root = of("get")[0];
    let names: Vec<&str> = root["subowners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["identifier"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["NavigationHandler", "RenderEngine", "Scene"]);
}

#[test]
fn lua_documentation_names_each_library_for_both_clients() {
    let docs = lua::documentation("lua");
    let time = docs
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "time")
        .expect("a time library");
    assert_eq!(
        (&time["library"], &time["fullName"]),
        (&json!("time"), &json!("openspace.time"))
    );
    let top = &docs[0];
    assert_eq!((&top["library"], &top["name"]), (&json!(""), &json!("")));
    let functions: Vec<&str> = top["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(functions.contains(&"guiOrder"), "{functions:?}");
}

#[test]
fn other_documentation_types_have_their_own_shapes() {
    assert_eq!(lua::documentation("factories"), json!([]));
    assert_eq!(
        lua::documentation("keyboard"),
        json!({"name": "Keybindings", "keybindings": []})
    );
    assert!(lua::documentation("meta")[0]["license"].is_string());
    assert_eq!(lua::documentation("asset"), Value::Null);
}

#[test]
fn every_listed_lua_function_answers_through_luascript() {
    let mut s = open();
    for library in lua::documentation("lua").as_array().unwrap() {
        for function in library["functions"].as_array().unwrap() {
            let name = match library["name"].as_str().unwrap() {
                "" => format!("openspace.{}", function["name"].as_str().unwrap()),
                lib => format!("openspace.{lib}.{}", function["name"].as_str().unwrap()),
            };
            let args: Vec<Value> = function["arguments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| match a["name"].as_str() {
                    Some("uri") => json!(FOV),
                    _ => json!(60.0),
                })
                .collect();
            let reply = ask(
                &mut s,
                1,
                "luascript",
                json!({"function": name, "arguments": args, "return": true}),
            );
            assert_eq!(reply.len(), 1, "{name}");
            assert!(reply[0]["payload"].is_object(), "{name}: {}", reply[0]);
            assert!(reply[0].get("status").is_none(), "{name}: {}", reply[0]);
        }
    }
    let gui = ask(
        &mut s,
        2,
        "luascript",
        json!({"script": "openspace.guiOrder()"}),
    );
    assert_eq!(gui[0]["payload"], json!({"1": {}}));
    let utc = ask(
        &mut s,
        3,
        "luascript",
        json!({"script": "return openspace.time.UTC();"}),
    );
    assert_eq!(utc[0]["payload"]["1"], "2026-12-31T23:59:59.500");
}

#[test]
fn lua_scripts_set_and_read_properties_and_refuse_what_they_cannot_run() {
    let mut s = open();
    let text = json!({"topic": 1, "type": "luascript", "payload": {
        "script": format!("openspace.setPropertyValueSingle('{FOV}', 70.5)"), "return": false}})
    .to_string();
    let out = s.handle(&text, &world());
    assert_eq!(
        (out.replies.len(), out.sets.clone()),
        (0, vec![(FOV, json!(70.5))])
    );
    for script in [
        "os.execute('rm -rf /')",
        "openspace.time.UTC() .. x",
        "openspace.nope()",
    ] {
        let e = &ask(&mut s, 2, "luascript", json!({"script": script}))[0];
        assert_eq!(
            (e["status"].as_str(), e["payload"].is_object()),
            (Some("error"), true),
            "{script}"
        );
    }
}

#[test]
fn get_set_and_subscribe_share_the_scene() {
    let mut s = open();
    let friction = &ask(&mut s, 1, "get", json!({"property": FRICTION}))[0];
    assert_eq!(friction["payload"]["Value"], true);
    // The Python client subscribes with "uri".
    let first = &ask(
        &mut s,
        2,
        "subscribe",
        json!({"event": "start_subscription", "uri": FOV}),
    )[0];
    let default = first["payload"]["Value"].as_f64().unwrap();
    assert!(
        (default - 72.7).abs() < 0.5,
        "45 degrees vertical at 16:9: {default}"
    );
    let out = s.handle(
        &json!({"topic": 3, "type": "set", "payload": {"property": FOV, "value": 500}}).to_string(),
        &world(),
    );
    assert_eq!(
        (out.replies.len(), out.sets.clone()),
        (0, vec![(FOV, json!(150.0))])
    );
    let mut changed = world();
    assert_eq!(
        changed.scene.apply(FOV, &json!(150.0)),
        Some(InputEvent::FieldOfView {
            horizontal_degrees: 150.0
        })
    );
    let update = parse(&s.changed(FOV, &changed)[0]);
    assert_eq!(
        (
            update["topic"].as_u64(),
            update["payload"]["Value"].as_f64()
        ),
        (Some(2), Some(150.0))
    );
    assert!(
        s.changed(FRICTION, &changed).is_empty(),
        "not subscribed to friction"
    );
    s.handle(
        r#"{"topic":2,"payload":{"event":"stop_subscription"}}"#,
        &world(),
    );
    assert!(s.changed(FOV, &changed).is_empty(), "unsubscribed");
    // Read-only and unknown properties are not written; wrong types neither.
    for (uri, value) in [
        (ANCHOR, json!("Moon")),
        ("Nope", json!(1)),
        (FRICTION, json!("yes")),
    ] {
        let text = json!({"topic": 4, "type": "set", "payload": {"property": uri, "value": value}});
        assert_eq!(
            s.handle(&text.to_string(), &world()),
            Outcome::default(),
            "{uri}"
        );
    }
    assert_eq!(
        ask(&mut s, 5, "get", json!({"property": ANCHOR}))[0]["payload"]["Value"],
        "Earth"
    );
}

#[test]
fn time_streams_every_tick_until_stopped() {
    let mut s = open();
    assert!(!s.wants_ticks());
    ask(&mut s, 7, "time", json!({"event": "start_subscription"}));
    assert!(s.wants_ticks());
    let tick = parse(&s.tick(&world())[0]);
    assert_eq!(
        tick,
        json!({"topic": 7, "payload": {"time": "2026-12-31T23:59:59.500"}})
    );
    s.handle(
        r#"{"topic":7,"payload":{"event":"stop_subscription"}}"#,
        &world(),
    );
    assert!(!s.wants_ticks() && s.tick(&world()).is_empty());
    // A one-off request answers and does not stream.
    assert_eq!(ask(&mut s, 8, "time", json!({"event": "refresh"})).len(), 2);
    assert!(!s.wants_ticks());
}

#[test]
fn input_state_sets_velocities_and_a_closing_connection_stops_them() {
    let mut s = open();
    ask(&mut s, 5, "flightcontroller", json!({"type": "connect"}));
    let out = s.handle(r#"{"topic":5,"payload":{"type":"inputState","inputState":{"values":{"orbitX":-0.05,"orbitY":0.1,"zoomOut":0.2}}}}"#, &world());
    let [InputEvent::Velocity(v)] = out.input.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!((v.orbit_x, v.orbit_y, v.zoom), (-0.25, 0.5, -1.0));
    assert_eq!(
        s.on_close(),
        vec![InputEvent::Velocity(Velocity::default())]
    );
    assert!(s.on_close().is_empty(), "only once");
    // Released (all zeros) before closing: nothing to stop.
    s.handle(
        r#"{"topic":5,"payload":{"type":"inputState","inputState":{"values":{"orbitX":1}}}}"#,
        &world(),
    );
    let out = s.handle(
        r#"{"topic":5,"payload":{"type":"inputState","inputState":{"values":{}}}}"#,
        &world(),
    );
    assert_eq!(out.input, vec![InputEvent::Velocity(Velocity::default())]);
    assert!(s.on_close().is_empty());
}

#[test]
fn without_authorization_only_authorize_is_answered() {
    let mut s = ApiSession::new(Access::Password(Box::new(|p| p == "token")));
    let handshake = r#"{"type":"apiHandshake","apiVersion":{"major":1,"minor":0,"patch":0}}"#;
    assert_eq!(s.handle(handshake, &world()), Outcome::default());
    assert_eq!(
        ask(&mut s, 0, "get", json!({"property": FRICTION})),
        Vec::<Value>::new()
    );
    assert_eq!(s.handle("garbage", &world()), Outcome::default());
    let refused = &ask(&mut s, 1, "authorize", json!({"password": "wrong"}))[0];
    assert_eq!(
        *refused,
        json!({"topic": 1, "payload": {"status": "incorrectKey"}})
    );
    assert_eq!(
        ask(&mut s, 2, "authorize", json!({}))[0]["payload"]["status"],
        "badRequest"
    );
    assert!(ask(&mut s, 3, "time", json!({"event": "start_subscription"})).is_empty());
    let ok = &ask(&mut s, 4, "authorize", json!({"key": "token"}))[0];
    assert_eq!(ok["payload"]["status"], "authorized");
    assert_eq!(
        ask(&mut s, 5, "get", json!({"property": FRICTION})).len(),
        1
    );
}

#[test]
fn three_wrong_passwords_close_the_connection() {
    let mut s = ApiSession::new(Access::Password(Box::new(|_| false)));
    let text =
        |t: u64| json!({"topic": t, "type": "authorize", "payload": {"password": "x"}}).to_string();
    assert!(!s.handle(&text(0), &world()).close);
    assert!(!s.handle(&text(1), &world()).close);
    assert!(s.handle(&text(2), &world()).close);
}

#[test]
fn bad_messages_get_readable_errors() {
    let mut s = open();
    let e = parse(&s.handle("garbage", &world()).replies[0]);
    assert_eq!(
        (e["status"].as_str(), e["payload"].is_object()),
        (Some("error"), true)
    );
    assert_eq!(s.handle(r#"{"no":"topic"}"#, &world()), Outcome::default());
    let e = parse(&s.handle(r#"{"topic":9,"payload":{}}"#, &world()).replies[0]);
    assert_eq!(
        (e["topic"].as_u64(), e["code"].as_u64()),
        (Some(9), Some(404))
    );
    for (kind, payload) in [
        ("teleport", json!({})),
        ("get", json!({"property": "Nope"})),
        (
            "subscribe",
            json!({"event": "start_subscription", "property": "Nope"}),
        ),
    ] {
        let e = &ask(&mut s, 10, kind, payload)[0];
        assert_eq!(
            (e["status"].as_str(), e["payload"].is_object()),
            (Some("error"), true),
            "{kind}"
        );
    }
    let out = s.handle(r#"{"topic":12,"type":"flightcontroller","payload":{"type":"inputState","inputState":{"values":{"orbitX":"fast","orbitY":1e308}}}}"#, &world());
    let [InputEvent::Velocity(v)] = out.input.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(
        (v.orbit_x, v.orbit_y),
        (0.0, 50.0),
        "a non-number is zero, a huge one clamped"
    );
    // Topic ids are bounded.
    let mut s = open();
    for t in 0..MAX_TOPICS as u64 {
        ask(&mut s, t, "time", json!({"event": "start_subscription"}));
    }
    let e = &ask(&mut s, 9999, "time", json!({"event": "start_subscription"}))[0];
    assert_eq!(e["code"], 429);
}

#[test]
fn the_remaining_topics_answer_in_their_servers_shape() {
    let mut s = open();
    assert_eq!(
        ask(&mut s, 1, "actionsKeybinds", json!({"event": "get_all"}))[0]["payload"],
        json!({"actions": [], "keybinds": []})
    );
    assert_eq!(
        ask(&mut s, 2, "bounce", json!({"a": 1}))[0]["payload"],
        json!({"a": 1})
    );
    for (kind, payload) in [
        (
            "errorLog",
            json!({"event": "start_subscription", "settings": {}}),
        ),
        (
            "event",
            json!({"eventType": "*", "event": "start_subscription"}),
        ),
        ("trigger", json!({"property": FRICTION})),
        ("camera", json!({"event": "start_subscription"})),
    ] {
        assert!(ask(&mut s, 3, kind, payload).is_empty(), "{kind} is silent");
    }
}
