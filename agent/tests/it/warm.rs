//! Warm pools on the agent: warm START (owned by a pool, counted apart, never handed to a plain
//! START), CLAIM (a new viewer token, once, idempotent for the claiming session), over the real
//! command WebSocket of the real binary.

use crate::support;

use openspace_agent::command::{CommandClient, Request, SlotStatus, StartRequest};
use support::{call, free_port, status, wait_status, Agent, Scratch, TIMEOUT};

const POOL: &str = "pool:0b6f3c1e-6a2b-4a55-9f1e-0123456789ab";
const S1: &str = "1b6f3c1e-6a2b-4a55-9f1e-0123456789ab";
const S2: &str = "2b6f3c1e-6a2b-4a55-9f1e-0123456789ab";

fn warm() -> Request {
    Request::Start(StartRequest {
        session: Some(POOL.into()),
        warm: true,
        ..StartRequest::default()
    })
}

fn claim(id: u32, session: &str) -> Request {
    Request::Claim {
        id,
        session: session.into(),
    }
}

#[tokio::test]
async fn warm_instances_are_counted_apart_and_never_given_to_a_plain_start() {
    let agent = Agent::start(&["--capacity", "3", "--instance-command", "sleep 1000"]);
    let mut client = agent.client().await;
    let started = call(&mut client, warm()).await;
    assert!(started.is_ok(), "{started:?}");
    assert_eq!(started.id, 0);
    assert_eq!(
        started.token, None,
        "a warm instance's token never leaves the agent"
    );
    let again = call(&mut client, warm()).await;
    assert_eq!(again.id, 1, "one pool owns many warm instances");

    let server = call(&mut client, Request::ServerStatus).await;
    assert_eq!(
        (server.running, server.warm, server.total),
        (Some(2), Some(2), Some(3))
    );
    let slots = server.slots.expect("slots");
    assert_eq!(slots[0].session.as_deref(), Some(POOL));

    // A plain START (even one naming the pool's owner) gets a new slot, never a warm instance.
    let plain = call(
        &mut client,
        Request::Start(StartRequest {
            session: Some(POOL.into()),
            ..StartRequest::default()
        }),
    )
    .await;
    assert_eq!(plain.id, 2);
    assert!(plain.token.is_some());
    let full = call(&mut client, Request::Start(StartRequest::default())).await;
    assert_eq!(full.error, "no available slots");
    let server = call(&mut client, Request::ServerStatus).await;
    assert_eq!((server.running, server.warm), (Some(3), Some(2)));

    // The seed's view is unchanged: a warm instance is a busy slot like any other.
    wait_status(&mut client, 0, SlotStatus::Running, TIMEOUT).await;
    assert_eq!(status(&mut client, 0).await.session.as_deref(), Some(POOL));
    assert!(call(&mut client, Request::Stop { id: 0 }).await.is_ok());
    wait_status(&mut client, 0, SlotStatus::Idle, TIMEOUT).await;
    let server = call(&mut client, Request::ServerStatus).await;
    assert_eq!((server.running, server.warm), (Some(2), Some(1)));
}

#[tokio::test]
async fn claim_hands_a_new_token_once_and_answers_the_same_to_a_retry() {
    let dir = Scratch::new("warm-claim");
    std::fs::write(dir.path("token"), "command-secret").unwrap();
    let agent = Agent::start(&[
        "--capacity",
        "2",
        "--api-base-port",
        &free_port().to_string(),
        "--token-file",
        &dir.str("token"),
    ]);
    let mut client = CommandClient::connect(&agent.url(), Some("command-secret"), TIMEOUT)
        .await
        .unwrap();
    let started = call(&mut client, warm()).await;
    assert_eq!((started.id, started.token.as_deref()), (0, None));
    wait_status(&mut client, 0, SlotStatus::Running, TIMEOUT).await;
    let api = format!("ws://{}/api/0", agent.http_addr);
    assert!(
        tokio_tungstenite::connect_async(format!("{api}?token=guess"))
            .await
            .is_err(),
        "nobody can watch a warm instance"
    );

    let claimed = call(&mut client, claim(0, S1)).await;
    assert!(claimed.is_ok(), "{claimed:?}");
    assert_eq!(claimed.command.as_deref(), Some("CLAIM"));
    assert_eq!(
        (claimed.session.as_deref(), claimed.pool.as_deref()),
        (Some(S1), Some(POOL))
    );
    assert_eq!((claimed.width, claimed.height), (Some(1280), Some(720)));
    let token = claimed
        .token
        .clone()
        .expect("CLAIM answers the viewer token");
    assert_eq!(token.len(), 32);

    let after = status(&mut client, 0).await;
    assert_eq!(
        (
            after.status,
            after.session.as_deref(),
            after.pool.as_deref()
        ),
        (Some(SlotStatus::Running), Some(S1), Some(POOL))
    );
    let server = call(&mut client, Request::ServerStatus).await;
    assert_eq!((server.running, server.warm), (Some(1), Some(0)));

    // The claimed token opens the instance; any other is refused.
    let (ws, _) = tokio_tungstenite::connect_async(format!("{api}?token={token}"))
        .await
        .expect("the claimed token opens the instance API");
    drop(ws);
    assert!(
        tokio_tungstenite::connect_async(format!("{api}?token=guess"))
            .await
            .is_err()
    );

    // The same session again (an operator restarted between CLAIM and its status write): the
    // same answer. Another session: refused, clearly.
    let retry = call(&mut client, claim(0, S1)).await;
    assert_eq!(
        (retry.error.as_str(), retry.token.as_deref()),
        ("none", Some(token.as_str()))
    );
    let second = call(&mut client, claim(0, S2)).await;
    assert_eq!(second.error, "already claimed");
    assert_eq!(second.id, 0);
    assert!(second.detail.unwrap().contains("another session"));
    // START with the claiming session finds its instance and token (how the operator finds
    // the token again after a restart).
    let found = call(
        &mut client,
        Request::Start(StartRequest {
            session: Some(S1.into()),
            ..StartRequest::default()
        }),
    )
    .await;
    assert_eq!((found.id, found.token), (0, Some(token)));
    let idle = call(&mut client, claim(1, S2)).await;
    assert_eq!(idle.error, "not running");
    let bad = call(&mut client, claim(9, S2)).await;
    assert_eq!(bad.error, "invalid id");
}

#[tokio::test]
async fn an_initializing_warm_instance_cannot_be_claimed() {
    // Readiness is the API port, which `sleep` never opens: INITIALIZING until stopped.
    let agent = Agent::start(&[
        "--capacity",
        "1",
        "--instance-command",
        "sleep 1000",
        "--ready",
        "tcp",
        "--api-base-port",
        &free_port().to_string(),
    ]);
    let mut client = agent.client().await;
    assert!(call(&mut client, warm()).await.is_ok());
    wait_status(&mut client, 0, SlotStatus::Initializing, TIMEOUT).await;
    let early = call(&mut client, claim(0, S1)).await;
    assert_eq!(early.error, "not claimable");
    assert_eq!(status(&mut client, 0).await.session.as_deref(), Some(POOL));
}
