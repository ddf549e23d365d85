//! Leadership against a real apiserver: Leases left by replicas whose clocks were wrong, an
//! apiserver outage under a single operator, and a leader cut off from the apiserver while its
//! standby is not. Lease duration 3 s (the test default), so a standby takes over after 3 s of
//! an unchanged record and a leader fences itself after 2 s without an accepted renewal.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use openspace_crds::Phase;
use serde_json::json;
use support::{operator, Agent, Cluster, WAIT};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

const LEASE: Duration = Duration::from_secs(3);

/// A Lease left by `holder`, renewed `offset` from now by this machine's clock (positive: its
/// clock ran ahead).
async fn stale_lease(cluster: &Cluster, holder: &str, offset: Duration, ahead: bool) {
    let now = Timestamp::now();
    let renewed = if ahead {
        now.checked_add(offset).unwrap()
    } else {
        now.checked_sub(offset).unwrap()
    };
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "openspace-operator"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": LEASE.as_secs(),
            "renewTime": renewed.to_string(),
            "acquireTime": renewed.to_string(),
        }
    }))
    .unwrap();
    Api::<Lease>::namespaced(cluster.client.clone(), &cluster.namespace)
        .create(&PostParams::default(), &lease)
        .await
        .expect("create the stale lease");
}

async fn leads_after_a_dead_holder(test: &str, ahead: bool) -> Duration {
    let cluster = Cluster::new(test).await;
    let agent = Agent::start(
        "agent-a",
        &["--capacity", "1", "--instance-command", "sleep 600"],
    );
    cluster.register(&agent).await;
    stale_lease(&cluster, "replica-gone", Duration::from_secs(3600), ahead).await;
    let started = Instant::now();
    let op = operator(&cluster, "op-new", &[], &[]);
    cluster.create("s", json!({})).await;
    cluster.wait_phase("s", Phase::Running).await;
    let took = started.elapsed();
    assert!(op.log.text().contains("leading"), "{}", op.log.text());
    cluster.delete("s").await;
    cluster.wait_gone("s", WAIT).await;
    took
}

#[tokio::test]
async fn a_dead_holder_whose_clock_ran_an_hour_ahead_is_taken_over_within_two_lease_durations() {
    let took = leads_after_a_dead_holder("skew-ahead", true).await;
    eprintln!("renewTime +1h: a session Running {took:?} after the operator started");
    assert!(
        took < 2 * LEASE + Duration::from_secs(2),
        "took {took:?}; the lease is {LEASE:?}"
    );
}

#[tokio::test]
async fn a_dead_holder_whose_clock_ran_an_hour_behind_is_taken_over_within_one_lease_duration() {
    // An old renewTime proves nothing by itself (the writer's clock may be behind): like
    // client-go, a candidate waits for one lease duration of an unchanged record.
    let took = leads_after_a_dead_holder("skew-behind", false).await;
    eprintln!("renewTime -1h: a session Running {took:?} after the operator started");
    assert!(
        took < LEASE + Duration::from_secs(3),
        "took {took:?}; the lease is {LEASE:?}"
    );
}

/// A control plane of this test's own (e2e/control-plane/control-plane.sh), stopped on drop.
struct PrivateControlPlane {
    dir: PathBuf,
    kubeconfig: PathBuf,
}

fn control_plane_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/control-plane/control-plane.sh")
}

impl PrivateControlPlane {
    fn start(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("openspace-{name}-{}", std::process::id()));
        let status = Command::new(control_plane_sh())
            .arg("start")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run control-plane.sh");
        assert!(status.success(), "control-plane.sh start failed");
        let kubeconfig = dir.join("kubeconfig");
        PrivateControlPlane { dir, kubeconfig }
    }

    fn restart_apiserver(&self, down: Duration) {
        let status = Command::new(control_plane_sh())
            .arg("restart-apiserver")
            .arg(&self.dir)
            .arg(down.as_secs().to_string())
            .status()
            .expect("run control-plane.sh");
        assert!(
            status.success(),
            "control-plane.sh restart-apiserver failed"
        );
    }

    async fn client(&self) -> Client {
        kube_client(&self.kubeconfig, None).await
    }
}

impl Drop for PrivateControlPlane {
    fn drop(&mut self) {
        let _ = Command::new(control_plane_sh())
            .arg("stop")
            .arg(&self.dir)
            .stderr(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn kube_client(kubeconfig: &Path, server: Option<&str>) -> Client {
    let file = Kubeconfig::read_from(kubeconfig).expect("read the kubeconfig");
    let mut config = Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .expect("a config from the kubeconfig");
    if let Some(server) = server {
        config.cluster_url = server.parse().unwrap();
    }
    Client::try_from(config).expect("a client")
}

/// The apiserver URL in a kubeconfig (the first cluster's).
fn server_of(kubeconfig: &Path) -> String {
    let file = Kubeconfig::read_from(kubeconfig).unwrap();
    file.clusters[0]
        .cluster
        .as_ref()
        .and_then(|c| c.server.clone())
        .unwrap()
}

#[tokio::test]
async fn after_an_apiserver_outage_the_same_process_leads_again_and_nothing_runs_twice() {
    let plane = PrivateControlPlane::start("outage");
    let cluster = Cluster::with_client("outage", plane.client().await).await;
    let agent = Agent::start(
        "agent-a",
        &["--capacity", "3", "--instance-command", "sleep 600"],
    );
    cluster.register(&agent).await;
    let kubeconfig = plane.kubeconfig.to_string_lossy().into_owned();
    let op = operator(&cluster, "op-1", &[], &[("KUBECONFIG", &kubeconfig)]);
    cluster.create("before", json!({})).await;
    let before = cluster.wait_phase("before", Phase::Running).await;

    plane.restart_apiserver(3 * LEASE);
    cluster.create("after", json!({})).await;
    cluster.wait_phase("after", Phase::Running).await;

    assert!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(op.pid()), None).is_ok(),
        "the operator is still the same process"
    );
    let log = op.log.text();
    assert!(
        log.contains("stepped down") && log.contains("apiserver"),
        "the log names the outage:\n{log}"
    );
    assert!(
        log.matches("acquired the lease").count() >= 2,
        "it led again:\n{log}"
    );
    let before_now = cluster.get("before").await.unwrap();
    assert_eq!(support::phase_of(&before_now), Some(Phase::Running));
    assert_eq!(
        before_now.status.as_ref().unwrap().instance_id,
        before.status.as_ref().unwrap().instance_id,
        "the session kept its instance"
    );
    assert_eq!(agent.running().await, 2, "no instance was started twice");
    cluster.delete("before").await;
    cluster.delete("after").await;
    cluster.wait_gone("before", WAIT).await;
    cluster.wait_gone("after", WAIT).await;
    assert_eq!(agent.running().await, 0, "none leaked");
}

/// A TCP proxy to `upstream`; `cut` drops every connection and refuses new ones.
struct Proxy {
    addr: String,
    tasks: JoinSet<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut links = JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                links.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Proxy { addr, tasks }
    }

    fn cut(&mut self) {
        // Aborting the accept loop drops its listener and its JoinSet of links.
        self.tasks.abort_all();
    }
}

/// The first log line containing `what`, and its timestamp (tracing's RFC 3339, UTC: the two
/// operators run on this machine, so their stamps compare).
fn stamp_of(log: &str, what: &str) -> Option<String> {
    log.lines()
        .find(|l| l.contains(what))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_owned)
}

#[tokio::test]
async fn a_leader_cut_off_from_the_apiserver_stops_before_its_standby_takes_over() {
    let cluster = Cluster::new("cutoff").await;
    let agent = Agent::start(
        "agent-a",
        &["--capacity", "3", "--instance-command", "sleep 600"],
    );
    cluster.register(&agent).await;
    let kubeconfig = PathBuf::from(std::env::var("KUBECONFIG").unwrap());
    let server = server_of(&kubeconfig);
    let upstream = server.trim_start_matches("https://").to_owned();
    let mut proxy = Proxy::start(upstream).await;
    // The leader reaches the apiserver only through the proxy.
    let proxied = std::env::temp_dir().join(format!(
        "openspace-cutoff-{}.kubeconfig",
        std::process::id()
    ));
    let text = std::fs::read_to_string(&kubeconfig)
        .unwrap()
        .replace(&server, &format!("https://{}", proxy.addr));
    std::fs::write(&proxied, text).unwrap();
    let proxied_path = proxied.to_string_lossy().into_owned();
    let leader = operator(&cluster, "op-1", &[], &[("KUBECONFIG", &proxied_path)]);
    cluster.create("before", json!({})).await;
    cluster.wait_phase("before", Phase::Running).await;
    let standby = operator(&cluster, "op-2", &[], &[]);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!standby.log.text().contains("acquired the lease"));

    let cut = Instant::now();
    proxy.cut();
    let deadline = cut + LEASE + Duration::from_secs(4);
    while !standby.log.text().contains("acquired the lease") {
        assert!(
            Instant::now() < deadline,
            "the standby did not take over:\n{}",
            standby.log.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = cut.elapsed();
    eprintln!("leader cut off -> standby leads after {took:?}");
    assert!(
        took < LEASE + Duration::from_secs(2),
        "took over within about the lease duration: {took:?}"
    );
    let stepped =
        stamp_of(&leader.log.text(), "stepped down").expect("the old leader stepped down");
    let leads = stamp_of(&standby.log.text(), "acquired the lease").unwrap();
    assert!(
        stepped < leads,
        "the old leader stopped ({stepped}) before the new one led ({leads})"
    );
    cluster.create("after", json!({})).await;
    cluster.wait_phase("after", Phase::Running).await;
    cluster.delete("before").await;
    cluster.delete("after").await;
    cluster.wait_gone("before", WAIT).await;
    cluster.wait_gone("after", WAIT).await;
    assert_eq!(agent.running().await, 0);
    let _ = std::fs::remove_file(&proxied);
    drop(leader);
}
