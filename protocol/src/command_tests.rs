//! The command protocol's parser and answers, tested: every seed command, the extensions, and
//! properties over arbitrary and near-miss input.

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
            warm: false,
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
fn warm_starts_need_a_pool_owner_and_claims_a_session() {
    let pool = "pool:0b6f3c1e-6a2b-4a55-9f1e-0123456789ab";
    assert_eq!(
        Request::parse(&format!(
            r#"{{"command":"START","warm":true,"session":"{pool}"}}"#
        )),
        Ok(Request::Start(StartRequest {
            session: Some(pool.into()),
            warm: true,
            ..StartRequest::default()
        }))
    );
    assert_eq!(
        err(r#"{"command":"START","warm":true}"#).error,
        errors::INVALID_SESSION
    );
    assert_eq!(
        err(r#"{"command":"START","warm":true,"session":"me"}"#).error,
        errors::INVALID_SESSION
    );
    assert_eq!(
        err(r#"{"command":"START","warm":"yes"}"#).error,
        errors::INVALID_MESSAGE
    );
    assert_eq!(
        Request::parse(r#"{"command":"CLAIM","id":3,"session":"uid-1"}"#),
        Ok(Request::Claim {
            id: 3,
            session: "uid-1".into()
        })
    );
    let e = err(r#"{"command":"CLAIM","id":3}"#);
    assert_eq!((e.error.as_str(), e.id), (errors::INVALID_SESSION, Some(3)));
    assert_eq!(
        err(r#"{"command":"CLAIM","session":"u"}"#).error,
        errors::MISSING_ID
    );
    let claim_by_pool = format!(r#"{{"command":"CLAIM","id":0,"session":"{pool}"}}"#);
    assert_eq!(err(&claim_by_pool).error, errors::INVALID_SESSION);
    // A plain START still serialises exactly as before: no "warm" on the wire.
    let plain = serde_json::to_string(&Request::Start(StartRequest::default())).unwrap();
    assert_eq!(plain, r#"{"command":"START"}"#);
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
                    warm: false,
                })
            });
        prop_oneof![
            start,
            id.prop_map(|id| Request::Stop { id }),
            id.prop_map(|id| Request::Status { id }),
            (id, WIDTH_RANGE, HEIGHT_RANGE).prop_map(|(id, width, height)| Request::Resolution {
                id,
                width,
                height
            }),
            Just(Request::ServerStatus),
            Just(Request::Watch),
            (id, "[ -~]{1,64}")
                .prop_filter("not a pool owner", |(_, s)| crate::Owner::parse(s)
                    .pool_uid()
                    .is_none())
                .prop_map(|(id, session)| Request::Claim { id, session }),
            "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}".prop_map(|uid| {
                Request::Start(StartRequest {
                    session: Some(crate::Owner::pool(&uid).encode()),
                    warm: true,
                    ..StartRequest::default()
                })
            }),
        ]
    }

    /// JSON objects made of the protocol's own keys and plausible-but-wrong values.
    fn near_miss() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            prop_oneof![
                Just("START"),
                Just("STOP"),
                Just("STATUS"),
                Just("RESOLUTION"),
                Just("SERVER_STATUS"),
                Just("WATCH"),
                Just("CLAIM"),
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
            Just("warm"),
            Just("x")
        ];
        proptest::collection::btree_map(key, value, 0..6)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
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
