//! Leader election on a `coordination.k8s.io` Lease, so several replicas can run and exactly one
//! reconciles.
//!
//! Expiry is judged the way client-go's `leaderelection` judges it, never by comparing another
//! machine's `renewTime` with this machine's wall clock: a candidate remembers, on its own
//! monotonic clock, when it last saw the Lease record change (its resourceVersion, which every
//! renewal changes, or its holder), and takes over once it has seen no change for the lease
//! duration. A leader
//! remembers when its last renewal was accepted, and stops acting once that is older than the
//! renew deadline (two thirds of the duration), which is before any candidate can take over, so
//! two replicas never act at once whatever their wall clocks say. `renewTime` and `acquireTime`
//! are still written, for people and other tools, but no decision here reads them.
//!
//! Every write is a `replace` with the resourceVersion that was read, so of two candidates that
//! see an expired Lease at the same moment only one wins (the other gets 409 Conflict).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::LeaseConfig;

/// This replica's part in the election, as the election task last established it.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// Not leading. `why` says what the last look found (who holds the Lease, or that the
    /// apiserver could not be reached), for the log.
    Standby { why: String },
    /// Leading; the last renewal was accepted at `renewed` (this process's monotonic clock).
    Leading { renewed: Instant },
}

/// Timing of the election, derived from the lease duration as client-go's defaults are (15 s
/// lease, 10 s renew deadline, 2 s retry period).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// How long a record must stay unchanged before a candidate takes over.
    pub duration: Duration,
    /// How long a leader goes on acting without an accepted renewal: two thirds of `duration`.
    pub renew_deadline: Duration,
    /// Time between looks (and renewals): a sixth of `duration`, at least 200 ms.
    pub retry: Duration,
}

impl Timing {
    pub fn new(duration: Duration) -> Self {
        let duration = duration.max(Duration::from_secs(1));
        Timing {
            duration,
            renew_deadline: duration * 2 / 3,
            retry: (duration / 6).max(Duration::from_millis(200)),
        }
    }
}

/// What to do after a look at the Lease. Pure: see [`decide`].
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// No Lease yet: create it, holding it.
    Create,
    /// Write ourselves as the holder: renew our hold, take a free Lease, or take over one whose
    /// record has not changed for the lease duration.
    Hold { transition: bool },
    /// Someone else holds it and renews it: look again later.
    Wait { holder: String },
}

/// The Lease record as far as expiry is concerned: a live holder's renewals change the
/// resourceVersion (every write does), and the holder says whom to wait for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Record {
    holder: Option<String>,
    resource_version: Option<String>,
}

impl Record {
    pub fn of(lease: &Lease) -> Self {
        let spec = lease.spec.as_ref();
        Record {
            holder: spec
                .and_then(|s| s.holder_identity.clone())
                .filter(|h| !h.is_empty()),
            resource_version: lease.metadata.resource_version.clone(),
        }
    }
}

/// Decides from a look at the Lease. `unchanged_for` is how long this process has seen the same
/// record (its own monotonic clock); no wall-clock time is compared.
pub fn decide(
    identity: &str,
    record: Option<&Record>,
    unchanged_for: Duration,
    timing: &Timing,
) -> Decision {
    let Some(record) = record else {
        return Decision::Create;
    };
    match record.holder.as_deref() {
        None => Decision::Hold { transition: true },
        Some(holder) if holder == identity => Decision::Hold { transition: false },
        Some(_) if unchanged_for >= timing.duration => Decision::Hold { transition: true },
        Some(holder) => Decision::Wait {
            holder: holder.to_owned(),
        },
    }
}

/// The election: a background task keeps [`Role`] current until the [`Leadership`] is dropped
/// or released.
pub struct Leadership {
    role: watch::Receiver<Role>,
    release: Option<tokio::sync::oneshot::Sender<()>>,
    task: JoinHandle<()>,
    timing: Timing,
}

/// Starts campaigning (in the background) for the Lease `config.name`.
pub fn join(client: Client, config: &LeaseConfig) -> Leadership {
    let timing = Timing::new(config.duration);
    let (tell, role) = watch::channel(Role::Standby {
        why: "not looked yet".into(),
    });
    let (release, released) = tokio::sync::oneshot::channel();
    let election = Election {
        leases: Api::namespaced(client, &config.namespace),
        config: config.clone(),
        timing,
        tell,
    };
    let task = tokio::spawn(election.run(released));
    Leadership {
        role,
        release: Some(release),
        task,
        timing,
    }
}

impl Leadership {
    /// Waits until this replica leads with a renewal younger than the renew deadline (after a
    /// step-down on a stale renewal, that takes a fresh one). The election publishes its role
    /// after every look, so this re-checks at least every retry period.
    pub async fn acquired(&mut self) {
        let deadline = self.timing.renew_deadline;
        // The sender lives as long as the task, which runs until release.
        let _ = self
            .role
            .wait_for(
                |role| matches!(role, Role::Leading { renewed } if renewed.elapsed() < deadline),
            )
            .await;
    }

    /// Resolves when this replica must stop acting: the election says it no longer leads, or its
    /// last accepted renewal is older than the renew deadline (the apiserver may be unreachable,
    /// or too slow). Returns why, for the log.
    pub async fn lost(&mut self) -> String {
        loop {
            let renewed = match &*self.role.borrow_and_update() {
                Role::Leading { renewed } => *renewed,
                Role::Standby { why } => return why.clone(),
            };
            let deadline = renewed + self.timing.renew_deadline;
            tokio::select! {
                changed = self.role.changed() => {
                    if changed.is_err() {
                        return "the election ended".into();
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    return format!(
                        "no renewal of the lease accepted for {:?} (the apiserver is unreachable or too slow)",
                        self.timing.renew_deadline
                    );
                }
            }
        }
    }

    /// Stops campaigning; if this replica holds the Lease, hands it back (holder cleared), so a
    /// standby takes it at its next look instead of after the lease duration.
    pub async fn release(mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.send(());
        }
        if let Err(e) = (&mut self.task).await {
            tracing::warn!("lease election task: {e}");
        }
    }
}

struct Election {
    leases: Api<Lease>,
    config: LeaseConfig,
    timing: Timing,
    tell: watch::Sender<Role>,
}

impl Election {
    async fn run(self, mut released: tokio::sync::oneshot::Receiver<()>) {
        let mut seen: Option<(Record, Instant)> = None;
        loop {
            let role = self.look(&mut seen).await;
            if role != *self.tell.borrow() {
                log_change(&self.tell.borrow(), &role, &self.config.identity);
            }
            // A leader whose renewal failed keeps its `renewed` instant: `lost` fences on it.
            self.tell.send_replace(role);
            tokio::select! {
                _ = &mut released => break,
                () = tokio::time::sleep(self.timing.retry) => {}
            }
        }
        if matches!(*self.tell.borrow(), Role::Leading { .. }) {
            self.give_back().await;
        }
    }

    /// One look at the Lease, and the write it calls for. Returns the role it establishes.
    async fn look(&self, seen: &mut Option<(Record, Instant)>) -> Role {
        let now = Instant::now();
        let previous = self.tell.borrow().clone();
        let deadline = self.timing.renew_deadline;
        let keep = |why: String| match &previous {
            // Not confirmed, not refuted: still leading until the renew deadline (which `lost`
            // watches to the instant), then not.
            Role::Leading { renewed } if now.saturating_duration_since(*renewed) < deadline => {
                Role::Leading { renewed: *renewed }
            }
            _ => Role::Standby { why },
        };
        let lease = match self.call(self.leases.get_opt(&self.config.name)).await {
            Ok(lease) => lease,
            Err(e) => return keep(format!("the apiserver is unreachable: {e}")),
        };
        let record = lease.as_ref().map(Record::of);
        if let Some(record) = &record {
            match seen {
                Some((last, _)) if last == record => {}
                _ => *seen = Some((record.clone(), now)),
            }
        }
        let unchanged_for = seen
            .as_ref()
            .map(|(_, since)| now.saturating_duration_since(*since))
            .unwrap_or_default();
        let decision = decide(
            &self.config.identity,
            record.as_ref(),
            unchanged_for,
            &self.timing,
        );
        let written = match (decision, lease) {
            (Decision::Wait { holder }, _) => {
                return Role::Standby {
                    why: format!("the lease is held by {holder}"),
                };
            }
            // (`decide` holds only an existing lease; with none there is nothing but to create.)
            (Decision::Create, _) | (Decision::Hold { .. }, None) => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(self.held(None, true)),
                };
                self.call(self.leases.create(&PostParams::default(), &lease))
                    .await
            }
            (Decision::Hold { transition }, Some(mut lease)) => {
                lease.spec = Some(self.held(lease.spec.take(), transition));
                self.call(
                    self.leases
                        .replace(&self.config.name, &PostParams::default(), &lease),
                )
                .await
            }
        };
        match written {
            Ok(lease) => {
                *seen = Some((Record::of(&lease), Instant::now()));
                Role::Leading { renewed: now }
            }
            // Someone else wrote first (409): they hold it now, or renewed; look again.
            Err(e) if is_conflict(&e) => Role::Standby {
                why: "another replica wrote the lease first".into(),
            },
            Err(e) => keep(format!(
                "the apiserver refused or missed the lease write: {e}"
            )),
        }
    }

    /// The spec with this replica holding the Lease from now.
    fn held(&self, spec: Option<LeaseSpec>, transition: bool) -> LeaseSpec {
        let now = MicroTime(Timestamp::now());
        let mut spec = spec.unwrap_or_default();
        if transition {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(self.config.identity.clone());
        spec.lease_duration_seconds = Some(self.timing.duration.as_secs().max(1) as i32);
        spec.renew_time = Some(now);
        spec
    }

    /// Clears the holder, if it is still us (client-go's ReleaseOnCancel).
    async fn give_back(&self) {
        let Ok(Some(mut lease)) = self.call(self.leases.get_opt(&self.config.name)).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = Some(MicroTime(Timestamp::now()));
        match self
            .call(
                self.leases
                    .replace(&self.config.name, &PostParams::default(), &lease),
            )
            .await
        {
            Ok(_) => tracing::info!("lease released"),
            Err(e) => tracing::warn!("releasing the lease: {e}"),
        }
    }

    /// An API call bounded by the retry period (at least 1 s): a hung apiserver must not stall
    /// the election, or the leader's fence would wait on it.
    async fn call<T>(
        &self,
        request: impl std::future::Future<Output = kube::Result<T>>,
    ) -> Result<T, CallError> {
        let bound = self.timing.retry.max(Duration::from_secs(1));
        match tokio::time::timeout(bound, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(CallError::Api(e)),
            Err(_) => Err(CallError::Timeout(bound)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("{0}")]
    Api(kube::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

fn is_conflict(e: &CallError) -> bool {
    matches!(e, CallError::Api(kube::Error::Api(status)) if status.code == 409)
}

fn log_change(from: &Role, to: &Role, identity: &str) {
    match (from, to) {
        (Role::Standby { .. }, Role::Leading { .. }) => {
            tracing::info!(identity, "acquired the lease")
        }
        (Role::Leading { .. }, Role::Standby { why }) => {
            tracing::warn!(identity, "lost the lease: {why}")
        }
        (Role::Standby { why: a }, Role::Standby { why: b }) if a != b => {
            tracing::info!(identity, "standing by: {b}")
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: Option<&str>, version: &str) -> Record {
        Record {
            holder: holder.map(str::to_owned),
            resource_version: Some(version.into()),
        }
    }

    #[test]
    fn timing_follows_the_duration() {
        let t = Timing::new(Duration::from_secs(15));
        assert_eq!(t.renew_deadline, Duration::from_secs(10));
        assert_eq!(t.retry, Duration::from_millis(2500));
        // A leader stops acting before a standby can have seen the record still for `duration`.
        assert!(t.renew_deadline < t.duration);
        assert_eq!(Timing::new(Duration::ZERO).duration, Duration::from_secs(1));
    }

    #[test]
    fn no_lease_is_created_and_a_free_one_taken() {
        let t = Timing::new(Duration::from_secs(6));
        assert_eq!(decide("me", None, Duration::ZERO, &t), Decision::Create);
        let free = record(None, "1");
        assert_eq!(
            decide("me", Some(&free), Duration::ZERO, &t),
            Decision::Hold { transition: true }
        );
    }

    #[test]
    fn our_own_lease_is_renewed_without_a_transition() {
        let t = Timing::new(Duration::from_secs(6));
        let mine = record(Some("me"), "7");
        assert_eq!(
            decide("me", Some(&mine), Duration::ZERO, &t),
            Decision::Hold { transition: false }
        );
    }

    #[test]
    fn another_holder_is_waited_for_until_its_record_stood_still_for_the_duration() {
        let t = Timing::new(Duration::from_secs(6));
        let theirs = record(Some("other"), "3");
        assert_eq!(
            decide("me", Some(&theirs), Duration::from_millis(5999), &t),
            Decision::Wait {
                holder: "other".into()
            }
        );
        assert_eq!(
            decide("me", Some(&theirs), Duration::from_secs(6), &t),
            Decision::Hold { transition: true }
        );
    }

    #[test]
    fn a_record_is_the_holder_renewal_and_version_whatever_the_clock_says() {
        // A renewTime an hour ahead of this machine changes nothing by itself: only whether the
        // record changes while we watch counts.
        let mut lease = Lease::default();
        lease.metadata.resource_version = Some("5".into());
        lease.spec = Some(LeaseSpec {
            holder_identity: Some("dead".into()),
            renew_time: Some(MicroTime(
                Timestamp::now()
                    .checked_add(std::time::Duration::from_secs(3600))
                    .unwrap(),
            )),
            lease_duration_seconds: Some(6),
            ..Default::default()
        });
        let a = Record::of(&lease);
        let b = Record::of(&lease);
        assert_eq!(a, b);
        let t = Timing::new(Duration::from_secs(6));
        assert_eq!(
            decide("me", Some(&a), Duration::from_secs(6), &t),
            Decision::Hold { transition: true }
        );
        lease.metadata.resource_version = Some("6".into());
        assert_ne!(Record::of(&lease), a, "a renewal is a change");
        lease.spec.as_mut().unwrap().holder_identity = Some(String::new());
        assert_eq!(Record::of(&lease).holder, None, "an empty holder is none");
    }
}
