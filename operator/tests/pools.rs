//! Warm pools against a real kube-apiserver, real agents (registered as Pods on loopback) and the
//! real operator binary: a pool fills, sessions claim in one step, 20 at once on 5 warm, refills,
//! an agent's loss, the pool's deletion, and an operator killed between CLAIM and its status
//! write.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use openspace_crds::{OpenSpacePool, OpenSpaceSession, Phase, Resolution, Start};
use openspace_protocol::{Owner, Request, SlotStatus};
use serde_json::json;
use support::pools::port_block;
use support::{operator, phase_of, Agent, Cluster, WAIT};

/// The instance program: ready (its API port open) `delay` seconds after it starts.
fn slow(delay: u32) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../e2e/pools/slow-instance.sh");
    format!("{script} {delay} {{api_port}}")
}

/// An agent with `capacity` slots whose instances take `delay` seconds to be ready.
/// One pool test at a time: each starts its own agents, operator and 4-15 s instance programs,
/// and two at once on two cores made the slowest ones miss their deadlines.
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

fn agent(name: &str, capacity: u16, delay: u32) -> Agent {
    let base = port_block(capacity).to_string();
    let command = slow(delay);
    Agent::start(
        name,
        &[
            "--capacity",
            &capacity.to_string(),
            "--ready",
            "tcp",
            "--api-base-port",
            &base,
            "--instance-command",
            &command,
            "--stop-grace",
            "2s",
        ],
    )
}

fn ready(pool: &OpenSpacePool) -> u32 {
    pool.status.as_ref().map_or(0, |s| s.ready)
}

fn start_of(session: &OpenSpaceSession) -> Option<Start> {
    session.status.as_ref().and_then(|s| s.start)
}

/// (server, instance id) of a session.
fn place(session: &OpenSpaceSession) -> (String, u32) {
    let status = session.status.clone().unwrap_or_default();
    (
        status.server.unwrap_or_default(),
        status.instance_id.unwrap_or(u32::MAX),
    )
}

/// Every busy slot of `agent`: id -> owner.
async fn owners(agent: &Agent) -> BTreeMap<u32, Owner> {
    let answer = agent.call(&Request::ServerStatus).await;
    answer
        .slots
        .unwrap_or_default()
        .into_iter()
        .filter(|s| s.status != SlotStatus::Idle)
        .filter_map(|s| Some((s.id, Owner::parse(&s.session?))))
        .collect()
}

#[tokio::test]
async fn a_pool_fills_a_session_claims_in_one_step_and_the_pool_refills() {
    let _serial = serial().await;
    let cluster = Cluster::new("pool-claim").await;
    let agent = agent("agent-a", 6, 1);
    cluster.register(&agent).await;
    let _operator = operator(&cluster, "op", &[], &[]);
    let pool = cluster.create_pool("warm", json!({"warm": 2})).await;
    let pool_uid = pool.metadata.uid.clone().unwrap();
    cluster
        .wait_pool("warm", WAIT, "filled", |p| ready(p) == 2)
        .await;
    let warm: Vec<u32> = owners(&agent)
        .await
        .into_iter()
        .filter(|(_, o)| o == &Owner::pool(&pool_uid))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(warm.len(), 2, "two warm instances owned by the pool");

    let created = cluster.create("s1", json!({"pool": "warm"})).await;
    let uid = created.metadata.uid.clone().unwrap();
    let session = cluster.wait_phase("s1", Phase::Running).await;
    let status = session.status.clone().unwrap();
    assert_eq!(status.start, Some(Start::Warm));
    assert!(
        warm.contains(&status.instance_id.unwrap()),
        "a warm instance"
    );
    assert_eq!(
        status.started_at, status.ready_at,
        "claimed and Running in one step"
    );
    let url = status.url.clone().unwrap();
    assert!(url.contains("&token=") && url.len() > 60, "{url}");
    let slot = agent
        .call(&Request::Status {
            id: status.instance_id.unwrap(),
        })
        .await;
    assert_eq!(slot.session.as_deref(), Some(uid.as_str()));
    assert_eq!(slot.pool, Some(Owner::pool(&pool_uid).encode()));

    // Refilled: two ready again, one claimed.
    let pool = cluster
        .wait_pool("warm", WAIT, "refilled", |p| {
            p.status
                .as_ref()
                .is_some_and(|s| s.ready == 2 && s.claimed == 1)
        })
        .await;
    assert_eq!(pool.status.unwrap().observed_generation, Some(1));

    // Another size: claimed, then resized live, no cold start.
    cluster
        .create(
            "s2",
            json!({"pool": "warm", "resolution": {"width": 640, "height": 360}}),
        )
        .await;
    let session = cluster.wait_phase("s2", Phase::Running).await;
    let status = session.status.clone().unwrap();
    assert_eq!(status.start, Some(Start::Warm));
    assert_eq!(
        status.resolution,
        Some(Resolution {
            width: 640,
            height: 360
        })
    );
    let slot = agent
        .call(&Request::Status {
            id: status.instance_id.unwrap(),
        })
        .await;
    assert_eq!((slot.width, slot.height), (Some(640), Some(360)));

    // A profile the pool does not run: cold, and the status and an Event say so.
    cluster
        .create("s3", json!({"pool": "warm", "profile": "mars"}))
        .await;
    let session = cluster.wait_phase("s3", Phase::Running).await;
    assert_eq!(start_of(&session), Some(Start::Cold));
}

#[tokio::test]
async fn twenty_sessions_on_a_pool_of_five_claim_five_and_start_fifteen_cold() {
    let _serial = serial().await;
    let cluster = Cluster::new("pool-burst").await;
    // Instances take 4 s to be ready, so refills cannot be claimed by this burst.
    let agents: Vec<Agent> = (0..3)
        .map(|i| agent(&format!("agent-{i}"), 10, 4))
        .collect();
    for agent in &agents {
        cluster.register(agent).await;
    }
    let _operator = operator(&cluster, "op", &[], &[]);
    cluster.create_pool("warm", json!({"warm": 5})).await;
    cluster
        .wait_pool("warm", WAIT, "filled", |p| ready(p) == 5)
        .await;

    let names: Vec<String> = (0..20).map(|i| format!("s{i}")).collect();
    futures::future::join_all(
        names
            .iter()
            .map(|n| cluster.create(n, json!({"pool": "warm"}))),
    )
    .await;
    let mut warm = 0;
    let mut cold = 0;
    let mut places = HashSet::new();
    for name in &names {
        let session = cluster
            .wait_for(name, WAIT, "Running", |s| {
                phase_of(s) == Some(Phase::Running)
            })
            .await;
        match start_of(&session) {
            Some(Start::Warm) => warm += 1,
            Some(Start::Cold) => cold += 1,
            None => panic!("{name} does not say how it started"),
        }
        assert!(places.insert(place(&session)), "{name} shares an instance");
    }
    assert_eq!((warm, cold), (5, 15));
    // Every session's instance is owned by that session alone.
    let mut session_owned = 0;
    for agent in &agents {
        session_owned += owners(agent)
            .await
            .values()
            .filter(|o| o.session().is_some())
            .count();
    }
    assert_eq!(session_owned, 20);
    let pool = cluster
        .wait_pool("warm", WAIT, "refilled", |p| ready(p) == 5)
        .await;
    assert_eq!(pool.status.unwrap().claimed, 5);
}

#[tokio::test]
async fn a_lost_agents_warm_instances_are_replaced_elsewhere() {
    let _serial = serial().await;
    let cluster = Cluster::new("pool-loss").await;
    let a = agent("agent-a", 4, 0);
    let mut b = agent("agent-b", 4, 0);
    cluster.register(&a).await;
    cluster.register(&b).await;
    let _operator = operator(&cluster, "op", &[], &[]);
    let pool = cluster.create_pool("warm", json!({"warm": 2})).await;
    let pool_owner = Owner::pool(pool.metadata.uid.as_deref().unwrap());
    cluster
        .wait_pool("warm", WAIT, "filled", |p| ready(p) == 2)
        .await;
    let on_b = owners(&b)
        .await
        .values()
        .filter(|o| **o == pool_owner)
        .count();
    assert_eq!(on_b, 1, "spread: one warm instance per agent");

    b.process.kill();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let on_a = owners(&a)
            .await
            .values()
            .filter(|o| **o == pool_owner)
            .count();
        if on_a == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the lost instance was not replaced on agent-a ({on_a} there)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster
        .wait_pool("warm", WAIT, "ready again", |p| ready(p) == 2)
        .await;
}

#[tokio::test]
async fn a_deleted_pool_stops_its_warm_instances_and_claimed_sessions_live_on() {
    let _serial = serial().await;
    let cluster = Cluster::new("pool-delete").await;
    let agent = agent("agent-a", 4, 0);
    cluster.register(&agent).await;
    let _operator = operator(&cluster, "op", &[], &[]);
    cluster.create_pool("warm", json!({"warm": 2})).await;
    cluster
        .wait_pool("warm", WAIT, "filled", |p| ready(p) == 2)
        .await;
    cluster.create("s1", json!({"pool": "warm"})).await;
    let session = cluster.wait_phase("s1", Phase::Running).await;
    assert_eq!(start_of(&session), Some(Start::Warm));
    cluster
        .wait_pool("warm", WAIT, "refilled", |p| ready(p) == 2)
        .await;

    cluster
        .pools
        .delete("warm", &Default::default())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while cluster.pools.get_opt("warm").await.unwrap().is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the pool was not let go"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let left = owners(&agent).await;
        if left.len() == 1 {
            let uid = session.metadata.uid.clone().unwrap();
            assert_eq!(left.values().next(), Some(&Owner::Session(uid)));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "warm instances still run: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let session = cluster.get("s1").await.unwrap();
    assert_eq!(
        phase_of(&session),
        Some(Phase::Running),
        "the claimed one lives on"
    );
}

#[tokio::test]
async fn an_operator_killed_between_claim_and_status_write_is_adopted_with_one_owner() {
    let _serial = serial().await;
    let cluster = Cluster::new("pool-crash").await;
    let agent = agent("agent-a", 4, 0);
    cluster.register(&agent).await;
    let mut faulty = operator(
        &cluster,
        "op-1",
        &[],
        &[("OPENSPACE_OPERATOR_FAULT", "exit-after-claim")],
    );
    cluster.create_pool("warm", json!({"warm": 2})).await;
    cluster
        .wait_pool("warm", WAIT, "filled", |p| ready(p) == 2)
        .await;
    let created = cluster.create("s1", json!({"pool": "warm"})).await;
    let uid = created.metadata.uid.clone().unwrap();
    assert_eq!(faulty.wait_exit(WAIT), Some(86), "exited after the CLAIM");
    let claimed: Vec<u32> = owners(&agent)
        .await
        .into_iter()
        .filter(|(_, o)| o.session() == Some(uid.as_str()))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(claimed.len(), 1, "the agent holds the claim");
    let before = cluster.get("s1").await.unwrap();
    assert!(
        before.status.as_ref().is_none_or(|s| s.url.is_none()),
        "the status write never happened: {:?}",
        before.status
    );

    let _operator = operator(&cluster, "op-2", &[], &[]);
    let session = cluster.wait_phase("s1", Phase::Running).await;
    assert_eq!(
        session.status.as_ref().unwrap().instance_id,
        Some(claimed[0])
    );
    assert_eq!(start_of(&session), Some(Start::Warm));
    let url = session.status.unwrap().url.unwrap();
    assert!(url.contains("&token=") && url.len() > 60, "{url}");
    // Give the orphan sweep its two looks: nothing of this session is stopped or duplicated.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let owned: Vec<u32> = owners(&agent)
        .await
        .into_iter()
        .filter(|(_, o)| o.session() == Some(uid.as_str()))
        .map(|(id, _)| id)
        .collect();
    assert_eq!(owned, claimed, "one owner, one instance");
}
