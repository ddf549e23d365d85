//! The operator against a real kube-apiserver, real agents (registered as Pods on loopback) and
//! the seed's supervisor: every path of the session life cycle.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use openspace_crds::{Phase, Resolution};
use openspace_protocol::{Request, SlotStatus};
use serde_json::json;
use support::{operator, phase_of, Agent, Cluster, SeedServer, WAIT};

/// This test SIGKILLs its agent, which cannot stop its instances then (in a pod, the container's
/// end would): instances that end with their agent keep the machine clean.
const ORPHAN_PROOF: &str = "sh -c 'while kill -0 $PPID 2>/dev/null; do sleep 0.2; done'";

fn condition(session: &openspace_crds::OpenSpaceSession, type_: &str) -> Option<(String, String)> {
    session
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

#[tokio::test]
async fn a_session_runs_publishes_its_url_resizes_and_stops_on_delete() {
    let cluster = Cluster::new("happy").await;
    let agent = Agent::start("agent-a", &["--capacity", "2"]);
    cluster.register(&agent).await;
    let _operator = operator(&cluster, "op", &[], &[]);

    let created = cluster
        .create("demo", json!({"resolution": {"width": 640, "height": 360}}))
        .await;
    let uid = created.metadata.uid.clone().unwrap();
    let session = cluster.wait_phase("demo", Phase::Running).await;
    let status = session.status.clone().unwrap();
    assert_eq!(status.server.as_deref(), Some("agent-a"));
    assert_eq!(status.instance_id, Some(0));
    assert!(status.ready_at.is_some() && status.started_at.is_some());
    assert_eq!(
        condition(&session, "Ready"),
        Some(("True".into(), "Running".into()))
    );
    assert_eq!(
        condition(&session, "Scheduled"),
        Some(("True".into(), "Scheduled".into()))
    );
    let slot = agent.call(&Request::Status { id: 0 }).await;
    assert_eq!(slot.status, Some(SlotStatus::Running));
    assert_eq!(
        slot.session.as_deref(),
        Some(uid.as_str()),
        "START carried the UID"
    );
    assert_eq!((slot.width, slot.height), (Some(640), Some(360)));
    assert_eq!(
        status.resolution,
        Some(Resolution {
            width: 640,
            height: 360
        })
    );
    let url = status.url.unwrap();
    let prefix = format!("http://{}:4690/frontend/#/streaming?id=0&token=", agent.ip);
    assert!(url.starts_with(&prefix), "{url}");
    assert!(
        url.len() > prefix.len() + 8,
        "the URL carries the instance token: {url}"
    );

    // A spec change reaches the running instance as RESOLUTION; an odd size is streamed one
    // pixel smaller, and the status says so.
    let patch = json!({"spec": {"resolution": {"width": 801, "height": 601}}});
    cluster
        .sessions
        .patch(
            "demo",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let slot = agent.call(&Request::Status { id: 0 }).await;
        if (slot.width, slot.height) == (Some(800), Some(600)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "RESOLUTION never arrived: {slot:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let resized = cluster
        .wait_for("demo", WAIT, "observing generation 2", |s| {
            s.status.as_ref().and_then(|st| st.observed_generation) == s.metadata.generation
        })
        .await;
    assert_eq!(
        resized.status.and_then(|s| s.resolution),
        Some(Resolution {
            width: 800,
            height: 600
        })
    );

    cluster.delete("demo").await;
    cluster.wait_gone("demo", WAIT).await;
    let slot = agent.call(&Request::Status { id: 0 }).await;
    assert!(
        matches!(
            slot.status,
            Some(SlotStatus::Idle | SlotStatus::Deinitializing)
        ),
        "the finalizer stopped the instance: {slot:?}"
    );
}

#[tokio::test]
async fn without_capacity_a_session_waits_and_starts_as_soon_as_a_slot_frees() {
    let cluster = Cluster::new("capacity").await;
    let agent = Agent::start(
        "agent-a",
        &["--capacity", "1", "--instance-command", "sleep 600"],
    );
    cluster.register(&agent).await;
    let _operator = operator(&cluster, "op", &["--max-backoff", "60s"], &[]);

    cluster.create("first", json!({})).await;
    cluster.wait_phase("first", Phase::Running).await;
    cluster.create("second", json!({})).await;
    let waiting = cluster
        .wait_for("second", WAIT, "NoCapacity", |s| {
            condition(s, "Scheduled") == Some(("False".into(), "NoCapacity".into()))
        })
        .await;
    assert_eq!(phase_of(&waiting), Some(Phase::Pending));

    // Retries back off 1, 2, 4, 8, 16 s...: after 16 s the next one is about 15 s away, so a
    // start within 4 s of the delete can only be the wake-up of the freed slot.
    tokio::time::sleep(Duration::from_secs(16)).await;
    cluster.delete("first").await;
    let freed = Instant::now();
    cluster.wait_phase("second", Phase::Running).await;
    let took = freed.elapsed();
    assert!(
        took < Duration::from_secs(4),
        "woken by the freed slot, not the 5 s backoff: {took:?}"
    );
    assert_eq!(agent.running().await, 1);
}

#[tokio::test]
async fn twenty_sessions_at_once_over_three_agents_never_over_commit() {
    let cluster = Cluster::new("twenty").await;
    let mut agents = Vec::new();
    for name in ["agent-a", "agent-b", "agent-c"] {
        let agent = Agent::start(
            name,
            &["--capacity", "7", "--instance-command", "sleep 600"],
        );
        cluster.register(&agent).await;
        agents.push(agent);
    }
    let _operator = operator(&cluster, "op", &[], &[]);
    let names: Vec<String> = (0..20).map(|i| format!("s{i:02}")).collect();
    futures::future::join_all(names.iter().map(|n| cluster.create(n, json!({})))).await;

    let mut placed = HashSet::new();
    for name in &names {
        let session = cluster.wait_phase(name, Phase::Running).await;
        let status = session.status.unwrap();
        let key = (status.server.unwrap(), status.instance_id.unwrap());
        assert!(placed.insert(key.clone()), "{key:?} given twice");
    }
    let mut total = 0;
    for agent in &agents {
        let running = agent.running().await;
        assert!(running <= 7);
        total += running;
    }
    assert_eq!(total, 20, "exactly one instance per session");
    for agent in &agents {
        let log = agent.process.log.text();
        assert!(
            !log.contains("no available slots"),
            "reservations kept every START within capacity; {}:\n{log}",
            agent.name
        );
    }
}

#[tokio::test]
async fn deleting_a_starting_session_stops_its_instance() {
    let cluster = Cluster::new("starting").await;
    // `--ready tcp` on a program that never listens: the instance stays INITIALIZING.
    let agent = Agent::start(
        "agent-a",
        &[
            "--capacity",
            "1",
            "--instance-command",
            "sleep 600",
            "--ready",
            "tcp",
        ],
    );
    cluster.register(&agent).await;
    let _operator = operator(&cluster, "op", &[], &[]);
    cluster.create("slow", json!({})).await;
    cluster.wait_phase("slow", Phase::Starting).await;
    assert_eq!(
        agent.call(&Request::Status { id: 0 }).await.status,
        Some(SlotStatus::Initializing)
    );
    cluster.delete("slow").await;
    cluster.wait_gone("slow", WAIT).await;
    assert!(matches!(
        agent.call(&Request::Status { id: 0 }).await.status,
        Some(SlotStatus::Idle | SlotStatus::Deinitializing)
    ));
}

#[tokio::test]
async fn an_operator_killed_between_start_and_status_write_loses_nothing() {
    let cluster = Cluster::new("restart").await;
    let agent = Agent::start(
        "agent-a",
        &["--capacity", "3", "--instance-command", "sleep 600"],
    );
    cluster.register(&agent).await;
    let mut doomed = operator(
        &cluster,
        "op-1",
        &[],
        &[("OPENSPACE_OPERATOR_FAULT", "exit-after-start")],
    );
    let created = cluster.create("survivor", json!({})).await;
    assert_eq!(doomed.wait_exit(WAIT), Some(86), "the fault hook fired");
    let after_crash = cluster.get("survivor").await.unwrap();
    assert_eq!(
        after_crash.status.as_ref().and_then(|s| s.server.clone()),
        None,
        "the crash came before the status write"
    );
    assert_eq!(agent.running().await, 1, "START reached the agent");

    let _operator = operator(&cluster, "op-2", &[], &[]);
    let session = cluster.wait_phase("survivor", Phase::Running).await;
    let slot = agent.call(&Request::Status { id: 0 }).await;
    assert_eq!(slot.session, created.metadata.uid, "the slot was adopted");
    assert_eq!(session.status.unwrap().instance_id, Some(0));
    assert_eq!(agent.running().await, 1, "never started twice");
    let events: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let deadline = Instant::now() + WAIT;
    loop {
        let list = events.list(&Default::default()).await.unwrap();
        let notes: Vec<String> = list.items.iter().filter_map(|e| e.note.clone()).collect();
        if notes.iter().any(|n| n.contains("adopted")) {
            break;
        }
        assert!(Instant::now() < deadline, "no 'adopted' event: {notes:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_killed_agent_fails_its_session_and_an_orphan_is_stopped() {
    let cluster = Cluster::new("lost").await;
    let mut agent = Agent::start(
        "agent-a",
        &["--capacity", "2", "--instance-command", ORPHAN_PROOF],
    );
    cluster.register(&agent).await;
    let _operator = operator(&cluster, "op", &[], &[]);
    cluster.create("doomed", json!({})).await;
    cluster.wait_phase("doomed", Phase::Running).await;

    // An instance whose "session" looks like a UID nobody has: the sweep stops it.
    let orphan = agent
        .call(&Request::Start(openspace_protocol::StartRequest {
            session: Some("0b6f3c1e-6a2b-4a55-9f1e-0123456789ab".into()),
            ..Default::default()
        }))
        .await;
    let orphan_id = u32::try_from(orphan.id).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let slot = agent.call(&Request::Status { id: orphan_id }).await;
        if matches!(
            slot.status,
            Some(SlotStatus::Idle | SlotStatus::Deinitializing)
        ) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the orphan was never stopped: {slot:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        agent.call(&Request::Status { id: 0 }).await.status,
        Some(SlotStatus::Running),
        "the owned instance was left alone"
    );

    agent.process.kill();
    let failed = cluster.wait_phase("doomed", Phase::Failed).await;
    let message = failed.status.unwrap().message.unwrap_or_default();
    assert!(message.contains("unreachable"), "{message}");
}

#[tokio::test]
async fn a_crashing_instance_fails_the_session_with_the_reason() {
    let cluster = Cluster::new("crash").await;
    let agent = Agent::start(
        "agent-a",
        &[
            "--capacity",
            "1",
            "--instance-command",
            "sh -c 'sleep 1; exit 3'",
        ],
    );
    cluster.register(&agent).await;
    let _operator = operator(&cluster, "op", &[], &[]);
    cluster.create("fragile", json!({})).await;
    cluster.wait_phase("fragile", Phase::Running).await;
    let failed = cluster.wait_phase("fragile", Phase::Failed).await;
    let message = failed.status.unwrap().message.unwrap_or_default();
    assert!(
        message.contains("ended") && message.contains('3'),
        "{message}"
    );
}

#[tokio::test]
async fn max_duration_ends_a_session_and_frees_its_slot() {
    let cluster = Cluster::new("maxdur").await;
    let agent = Agent::start(
        "agent-a",
        &["--capacity", "1", "--instance-command", "sleep 600"],
    );
    cluster.register(&agent).await;
    let _operator = operator(&cluster, "op", &[], &[]);
    cluster.create("short", json!({"maxDuration": "2s"})).await;
    cluster.wait_phase("short", Phase::Running).await;
    let ended = cluster.wait_phase("short", Phase::Ended).await;
    let status = ended.status.unwrap();
    assert!(status.message.unwrap_or_default().contains("maxDuration"));
    assert!(status.ended_at.is_some() && status.url.is_none());
    assert!(matches!(
        agent.call(&Request::Status { id: 0 }).await.status,
        Some(SlotStatus::Idle | SlotStatus::Deinitializing)
    ));
}

#[tokio::test]
async fn idle_timeout_ends_a_session_nobody_watches() {
    let cluster = Cluster::new("idle").await;
    let agent = Agent::start("agent-a", &["--capacity", "1"]);
    cluster.register(&agent).await;
    let _operator = operator(&cluster, "op", &[], &[]);
    cluster
        .create("unwatched", json!({"idleTimeout": "2s"}))
        .await;
    let running = cluster.wait_phase("unwatched", Phase::Running).await;
    let ran_at = Instant::now();
    let ended = cluster.wait_phase("unwatched", Phase::Ended).await;
    assert!(
        ran_at.elapsed() >= Duration::from_millis(1500),
        "ended too early"
    );
    assert!(ended
        .status
        .unwrap()
        .message
        .unwrap_or_default()
        .contains("idleTimeout"));
    assert!(running.status.unwrap().url.is_some());
}

#[tokio::test]
async fn a_seed_only_external_server_runs_sessions_by_status_polling() {
    let cluster = Cluster::new("seed").await;
    let seed = SeedServer::start(&[
        "--capacity",
        "1",
        "--ready-delay",
        "0.3",
        "--stop-delay",
        "0.3",
    ]);
    let _operator = operator(&cluster, "op", &["--external-server", &seed.url], &[]);
    cluster.create("classic", json!({})).await;
    let session = cluster.wait_phase("classic", Phase::Running).await;
    let status = session.status.unwrap();
    assert_eq!(status.server.as_deref(), Some("external-0"));
    assert_eq!(
        status.url.as_deref(),
        Some("http://127.0.0.1:4690/frontend/#/streaming?id=0&token=")
    );
    let slot = seed.call(&Request::Status { id: 0 }).await;
    assert_eq!(slot.status, Some(SlotStatus::Running));

    cluster.create("waiting", json!({})).await;
    cluster
        .wait_for("waiting", WAIT, "NoCapacity", |s| {
            condition(s, "Scheduled") == Some(("False".into(), "NoCapacity".into()))
        })
        .await;
    cluster.delete("classic").await;
    cluster.wait_gone("classic", WAIT).await;
    cluster.wait_phase("waiting", Phase::Running).await;
}

#[tokio::test]
async fn a_standby_operator_takes_over_when_the_leader_dies() {
    let cluster = Cluster::new("leader").await;
    let agent = Agent::start(
        "agent-a",
        &["--capacity", "3", "--instance-command", "sleep 600"],
    );
    cluster.register(&agent).await;
    let mut first = operator(&cluster, "op-1", &[], &[]);
    cluster.create("before", json!({})).await;
    cluster.wait_phase("before", Phase::Running).await;
    let second = operator(&cluster, "op-2", &[], &[]);
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let holder = |lease: k8s_openapi::api::coordination::v1::Lease| {
        lease
            .spec
            .and_then(|s| s.holder_identity)
            .unwrap_or_default()
    };
    assert_eq!(
        holder(leases.get("openspace-operator").await.unwrap()),
        "op-1"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(second.log.text().contains("waiting for the lease"));
    assert!(
        !second.log.text().contains("leading"),
        "the standby stays passive"
    );

    first.signal(Signal::SIGKILL);
    first.kill();
    cluster.create("after", json!({})).await;
    cluster.wait_phase("after", Phase::Running).await;
    assert_eq!(
        holder(leases.get("openspace-operator").await.unwrap()),
        "op-2"
    );
    assert!(second.log.text().contains("leading"));
    cluster.delete("before").await;
    cluster.wait_gone("before", WAIT).await;
    assert_eq!(agent.running().await, 1);
    drop(second);
}

#[tokio::test]
async fn invalid_specs_are_refused_by_the_apiserver() {
    let cluster = Cluster::new("invalid").await;
    let session: openspace_crds::OpenSpaceSession = serde_json::from_value(json!({
        "apiVersion": "openspace.io/v1alpha1",
        "kind": "OpenSpaceSession",
        "metadata": {"name": "tiny"},
        "spec": {"resolution": {"width": 8, "height": 8}, "maxDuration": "soon"},
    }))
    .unwrap();
    let error = cluster
        .sessions
        .create(&kube::api::PostParams::default(), &session)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("width") && error.contains("maxDuration"),
        "{error}"
    );
}

#[tokio::test]
async fn deleting_a_session_on_an_unreachable_server_gives_up_after_a_bound() {
    let cluster = Cluster::new("giveup").await;
    let mut agent = Agent::start(
        "agent-a",
        &["--capacity", "1", "--instance-command", ORPHAN_PROOF],
    );
    cluster.register(&agent).await;
    let _operator = operator(&cluster, "op", &["--server-lost-after", "60s"], &[]);
    cluster.create("stranded", json!({})).await;
    cluster.wait_phase("stranded", Phase::Running).await;
    agent.process.kill();
    let deleted = Instant::now();
    cluster.delete("stranded").await;
    let stopping = cluster.wait_phase("stranded", Phase::Stopping).await;
    assert!(stopping.metadata.deletion_timestamp.is_some());
    cluster.wait_gone("stranded", WAIT).await;
    let took = deleted.elapsed();
    assert!(
        took >= Duration::from_secs(4),
        "held for --stop-give-up (5 s): {took:?}"
    );
    let events: kube::Api<k8s_openapi::api::events::v1::Event> =
        kube::Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let deadline = Instant::now() + WAIT;
    while !events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .any(|e| e.reason.as_deref() == Some("StopGaveUp"))
    {
        assert!(Instant::now() < deadline, "no StopGaveUp event");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_operator_exports_its_metrics() {
    let cluster = Cluster::new("metrics").await;
    let agent = Agent::start(
        "agent-a",
        &["--capacity", "1", "--instance-command", "sleep 600"],
    );
    cluster.register(&agent).await;
    let operator = operator(&cluster, "op", &[], &[]);
    cluster.create("counted", json!({})).await;
    cluster.wait_phase("counted", Phase::Running).await;
    let addr = operator
        .log
        .text()
        .lines()
        .find_map(|l| l.split("metrics_addr=").nth(1).map(|a| a.trim().to_owned()))
        .expect("the operator logs metrics_addr=");
    let deadline = Instant::now() + WAIT;
    loop {
        let body = support::http_get(&addr, "/metrics");
        let ready = body.contains("openspace_operator_ready_latency_seconds_count 1");
        let running = body.contains("openspace_operator_sessions{phase=\"Running\"} 1");
        let leader = body.contains("openspace_operator_leader 1");
        if ready
            && running
            && leader
            && body.contains("openspace_operator_scheduling_latency_seconds_count 1")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed the session:\n{body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
