//! The slot table's transitions, tested: the seed's life cycle, crashes, one live instance per
//! session, warm instances and CLAIM.

use super::*;

fn spec(session: Option<&str>) -> InstanceSpec {
    InstanceSpec {
        session: session.map(str::to_owned),
        warm: false,
        pool: None,
        resolution: Resolution {
            width: 1280,
            height: 720,
        },
        profile: "default".into(),
        token: "t".into(),
    }
}

fn new_key(started: Result<Started, SlotError>) -> InstanceKey {
    match started {
        Ok(Started::New(key)) => key,
        other => panic!("expected a new instance, got {other:?}"),
    }
}

#[test]
fn start_takes_the_lowest_idle_slot_and_refuses_when_full() {
    let mut t = SlotTable::new(3);
    let a = new_key(t.start(spec(None)));
    let b = new_key(t.start(spec(None)));
    let c = new_key(t.start(spec(None)));
    assert_eq!((a.id, b.id, c.id), (0, 1, 2));
    assert_eq!(t.start(spec(None)), Err(SlotError::NoAvailableSlots));
    assert_eq!(t.busy(), 3);

    assert_eq!(t.stop(1), Ok(StopOutcome::Stopping(b)));
    // DEINITIALIZING still holds the slot until the process is gone.
    assert_eq!(t.start(spec(None)), Err(SlotError::NoAvailableSlots));
    assert!(t.exited(b, None));
    let d = new_key(t.start(spec(None)));
    assert_eq!(d.id, 1);
    assert_ne!(d.generation, b.generation);
}

#[test]
fn the_full_lifecycle_follows_the_seed() {
    let mut t = SlotTable::new(1);
    let k = new_key(t.start(spec(Some("u1"))));
    assert_eq!(t.view(0).unwrap().status, SlotStatus::Initializing);
    assert_eq!(t.token(0), Some("t"));
    assert!(t.mark_running(k));
    assert_eq!(t.view(0).unwrap().status, SlotStatus::Running);
    assert!(!t.mark_running(k), "running twice is not a transition");
    assert_eq!(t.stop(0), Ok(StopOutcome::Stopping(k)));
    assert_eq!(t.view(0).unwrap().status, SlotStatus::Deinitializing);
    assert_eq!(t.stop(0), Ok(StopOutcome::AlreadyStopping));
    assert!(t.exited(k, None));
    let v = t.view(0).unwrap();
    assert_eq!(
        (v.status, v.session, v.reason),
        (SlotStatus::Idle, None, None)
    );
    assert_eq!(t.stop(0), Err(SlotError::NotRunning));
    assert_eq!(t.stop(1), Err(SlotError::InvalidId));
}

#[test]
fn a_crash_frees_the_slot_and_keeps_the_reason_until_reuse() {
    let mut t = SlotTable::new(1);
    let k = new_key(t.start(spec(Some("u1"))));
    assert!(t.mark_running(k));
    assert!(t.exited(k, Some("exited with status 3".into())));
    let v = t.view(0).unwrap();
    assert_eq!(v.status, SlotStatus::Idle);
    assert_eq!(v.session.as_deref(), Some("u1"));
    assert_eq!(v.reason.as_deref(), Some("exited with status 3"));
    let k2 = new_key(t.start(spec(Some("u2"))));
    let v = t.view(0).unwrap();
    assert_eq!((v.session.as_deref(), v.reason), (Some("u2"), None));
    // A late event of the old instance cannot touch the new one.
    assert!(!t.exited(k, Some("late".into())));
    assert!(!t.mark_running(k));
    assert!(t.mark_running(k2));
}

#[test]
fn a_session_holds_at_most_one_live_instance() {
    let mut t = SlotTable::new(3);
    let k = new_key(t.start(spec(Some("u1"))));
    assert_eq!(t.start(spec(Some("u1"))), Ok(Started::Existing(k.id)));
    assert_eq!(t.busy(), 1);
    new_key(t.start(spec(Some("u2"))));
    t.stop(k.id).unwrap();
    // A stopping instance no longer counts: the session may start afresh.
    assert_eq!(new_key(t.start(spec(Some("u1")))).id, 2);
}

#[test]
fn resolution_applies_only_to_live_instances() {
    let mut t = SlotTable::new(2);
    let r = Resolution {
        width: 640,
        height: 480,
    };
    assert_eq!(t.set_resolution(0, r), Err(SlotError::NotRunning));
    assert_eq!(t.set_resolution(9, r), Err(SlotError::InvalidId));
    let k = new_key(t.start(spec(None)));
    assert_eq!(t.set_resolution(0, r), Ok(()));
    assert_eq!(t.view(0).unwrap().resolution, Some(r));
    t.stop(k.id).unwrap();
    assert_eq!(t.set_resolution(0, r), Err(SlotError::NotRunning));
}

#[test]
fn stop_all_moves_every_live_slot_to_deinitializing() {
    let mut t = SlotTable::new(3);
    new_key(t.start(spec(None)));
    let b = new_key(t.start(spec(None)));
    t.stop(b.id).unwrap();
    assert!(t.exited(b, None));
    new_key(t.start(spec(None)));
    new_key(t.start(spec(None)));
    assert_eq!(t.stop_all().len(), 3);
    assert_eq!(t.count(SlotStatus::Deinitializing), 3);
}

fn warm(pool: &str) -> InstanceSpec {
    InstanceSpec {
        warm: true,
        ..spec(Some(pool))
    }
}

#[test]
fn warm_instances_are_counted_apart_and_never_handed_to_a_plain_start() {
    let mut t = SlotTable::new(3);
    let a = new_key(t.start(warm("pool:p")));
    let b = new_key(t.start(warm("pool:p")));
    assert_ne!(a.id, b.id, "one pool owns many warm instances");
    assert_eq!((t.busy(), t.warm()), (2, 2));
    // Even a START naming the pool's owner gets a new slot, not a warm one.
    assert_eq!(new_key(t.start(spec(Some("pool:p")))).id, 2);
    assert_eq!(t.start(spec(None)), Err(SlotError::NoAvailableSlots));
    assert!(t.view(a.id).unwrap().warm);
}

#[test]
fn claim_binds_a_running_warm_instance_once_with_a_new_token() {
    let mut t = SlotTable::new(3);
    let a = new_key(t.start(warm("pool:p")));
    assert_eq!(
        t.claim(a.id, "s1", "new".into()),
        Err(SlotError::NotClaimable),
        "still initialising"
    );
    assert!(t.mark_running(a));
    assert_eq!(
        t.claim(a.id, "s1", "new".into()),
        Ok(Claimed {
            token: "new".into(),
            again: false
        })
    );
    let v = t.view(a.id).unwrap();
    assert_eq!(
        (v.session.as_deref(), v.pool.as_deref(), v.warm),
        (Some("s1"), Some("pool:p"), false)
    );
    assert_eq!(t.token(a.id), Some("new"), "the warm token is gone");
    assert_eq!(
        t.claim(a.id, "s1", "other".into()),
        Ok(Claimed {
            token: "new".into(),
            again: true
        }),
        "a retried claim answers the same"
    );
    assert_eq!(
        t.claim(a.id, "s2", "x".into()),
        Err(SlotError::AlreadyClaimed)
    );
    assert_eq!(t.warm(), 0);
    // START by the claiming session finds its instance (the operator's restart path).
    assert_eq!(t.start(spec(Some("s1"))), Ok(Started::Existing(a.id)));
    // A session that holds an instance cannot claim a second one.
    let b = new_key(t.start(warm("pool:p")));
    assert!(t.mark_running(b));
    assert_eq!(
        t.claim(b.id, "s1", "y".into()),
        Err(SlotError::NotClaimable)
    );
    assert_eq!(t.claim(2, "s3", "z".into()), Err(SlotError::NotRunning));
    assert_eq!(t.claim(7, "s3", "z".into()), Err(SlotError::InvalidId));
}
