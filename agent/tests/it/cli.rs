//! `openspace-cmd` against the real agent: answers printed as JSON, exit codes follow `error`.

use crate::support;

use std::process::Command;

use serde_json::Value;
use support::{Agent, Scratch};

fn cmd(agent: &Agent, args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_openspace-cmd"))
        .args(["--url", &agent.url()])
        .args(args)
        .output()
        .expect("openspace-cmd runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(text.trim()).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json)
}

#[test]
fn commands_print_answers_and_exit_with_their_outcome() {
    let agent = Agent::start(&["--capacity", "2", "--instance-command", "sleep 1000"]);
    let (code, a) = cmd(&agent, &["server-status"]);
    assert_eq!((code, &a["total"]), (0, &Value::from(2)));
    let (code, a) = cmd(
        &agent,
        &[
            "start",
            "--session",
            "me",
            "--width",
            "640",
            "--height",
            "480",
        ],
    );
    assert_eq!((code, &a["id"]), (0, &Value::from(0)));
    let (_, a) = cmd(&agent, &["status", "0"]);
    assert_eq!(
        (&a["session"], &a["width"]),
        (&Value::from("me"), &Value::from(640))
    );
    let (code, a) = cmd(&agent, &["stop", "7"]);
    assert_eq!((code, &a["error"]), (1, &Value::from("invalid id")));
}

#[test]
fn a_refused_token_is_a_clear_failure() {
    let dir = Scratch::new("cli-token");
    std::fs::write(dir.path("token"), "right").unwrap();
    std::fs::write(dir.path("wrong"), "wrong").unwrap();
    let agent = Agent::start(&[
        "--instance-command",
        "sleep 1000",
        "--token-file",
        &dir.str("token"),
    ]);
    let out = Command::new(env!("CARGO_BIN_EXE_openspace-cmd"))
        .args([
            "--url",
            &agent.url(),
            "--token-file",
            &dir.str("wrong"),
            "server-status",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    let (code, _) = {
        let out = Command::new(env!("CARGO_BIN_EXE_openspace-cmd"))
            .args([
                "--url",
                &agent.url(),
                "--token-file",
                &dir.str("token"),
                "server-status",
            ])
            .output()
            .unwrap();
        (out.status.code(), ())
    };
    assert_eq!(code, Some(0));
}
