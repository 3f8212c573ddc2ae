//! At most one load per key and store at a time, for `get_or_insert_with`.
//!
//! Flights live in one process-wide table keyed by the store's
//! [`single_flight_scope`](crate::Cache::single_flight_scope) and the key, so every handle
//! to a store (`Arc` clones, `Box<dyn Cache>`, clones of handle-style stores) shares them,
//! and the extension trait needs no state inside each store. The table holds an entry
//! only while a load runs.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::Error;

/// What a finished flight hands to the callers that waited on it.
pub(crate) type Outcome = Result<Bytes, Arc<Error>>;

/// (storage, namespace, key).
type FlightKey = (usize, Box<str>, Box<str>);

/// Shards keep unrelated keys from queueing on one lock; 32 is plenty for a table
/// touched only on misses.
const SHARDS: usize = 32;

struct Table {
    hasher: RandomState,
    shards: [Mutex<HashMap<FlightKey, Arc<Flight>>>; SHARDS],
}

static TABLE: LazyLock<Table> =
    LazyLock::new(|| Table { hasher: RandomState::new(), shards: std::array::from_fn(|_| Mutex::new(HashMap::new())) });

impl Table {
    fn shard(&self, key: &FlightKey) -> MutexGuard<'_, HashMap<FlightKey, Arc<Flight>>> {
        let index = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A poisoned shard only means another thread panicked between two map
        // operations, which leaves the map itself consistent.
        self.shards[index].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Default)]
struct Flight {
    outcome: OnceLock<Outcome>,
    finished: AtomicBool,
    done: Notify,
}

impl Flight {
    /// Waits for the leader; `None` when it gave up without an outcome (it was
    /// cancelled, or its read failed), in which case the caller should try to lead.
    async fn wait(&self) -> Option<Outcome> {
        // Created before the check: `notify_waiters` reaches a `Notified` from the
        // moment it exists, so a leader finishing in between cannot be missed.
        let notified = self.done.notified();
        if !self.finished.load(Ordering::Acquire) {
            notified.await;
        }
        self.outcome.get().cloned()
    }
}

/// The caller's part in a flight.
pub(crate) enum Role {
    /// Run the load and [`finish`](Leader::finish) it.
    Leader(Leader),
    /// Another caller is loading this key.
    Follower(Follower),
}

pub(crate) struct Follower(Arc<Flight>);

impl Follower {
    pub(crate) async fn wait(self) -> Option<Outcome> {
        self.0.wait().await
    }
}

/// Ends the flight when dropped; followers of a flight dropped without
/// [`finish`](Leader::finish) are woken with no outcome and retry.
pub(crate) struct Leader {
    key: Option<FlightKey>,
    flight: Arc<Flight>,
}

impl Leader {
    pub(crate) fn finish(self, outcome: Outcome) {
        // Only the leader sets the outcome, once; a second `set` cannot happen.
        let _ = self.flight.outcome.set(outcome);
        // Dropping `self` now removes the flight and wakes the followers.
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut shard = TABLE.shard(&key);
            if shard.get(&key).is_some_and(|flight| Arc::ptr_eq(flight, &self.flight)) {
                shard.remove(&key);
            }
        }
        self.flight.finished.store(true, Ordering::Release);
        self.flight.done.notify_waiters();
    }
}

/// Joins the flight for `key` in `scope`, leading it if none is running.
pub(crate) fn join(scope: (usize, &str), key: &str) -> Role {
    let key: FlightKey = (scope.0, scope.1.into(), key.into());
    let mut shard = TABLE.shard(&key);
    if let Some(flight) = shard.get(&key) {
        return Role::Follower(Follower(Arc::clone(flight)));
    }
    let flight = Arc::new(Flight::default());
    shard.insert(key.clone(), Arc::clone(&flight));
    Role::Leader(Leader { key: Some(key), flight })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(scope: (usize, &str), key: &str) -> Leader {
        match join(scope, key) {
            Role::Leader(leader) => leader,
            Role::Follower(_) => panic!("expected to lead {scope:?} {key:?}"),
        }
    }

    fn follow(scope: (usize, &str), key: &str) -> Follower {
        match join(scope, key) {
            Role::Follower(follower) => follower,
            Role::Leader(_) => panic!("expected to follow {scope:?} {key:?}"),
        }
    }

    #[tokio::test]
    async fn followers_share_the_leaders_outcome() {
        let leader = lead((1, "ns:"), "shared-outcome");
        let follower = follow((1, "ns:"), "shared-outcome");
        let waiting = tokio::spawn(follower.wait());
        leader.finish(Ok(Bytes::from_static(b"value")));
        let outcome = waiting.await.expect("follower task").expect("an outcome");
        assert_eq!(outcome.expect("ok"), Bytes::from_static(b"value"));
        // The finished flight is gone: the next caller leads a new one.
        drop(lead((1, "ns:"), "shared-outcome"));
    }

    #[test]
    fn namespaces_and_stores_never_share_a_flight() {
        let _a = lead((1, "a:"), "same-key");
        let _b = lead((1, "b:"), "same-key");
        let _other_store = lead((2, "a:"), "same-key");
        let _other_key = lead((1, "a:"), "other-key");
    }

    #[tokio::test]
    async fn an_abandoned_flight_wakes_followers_without_an_outcome() {
        let leader = lead((3, ""), "abandoned");
        let follower = follow((3, ""), "abandoned");
        let waiting = tokio::spawn(follower.wait());
        drop(leader);
        assert!(waiting.await.expect("follower task").is_none(), "no outcome: the follower must retry");
        drop(lead((3, ""), "abandoned"));
    }
}
