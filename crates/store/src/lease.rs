//! Leases: a named claim on something shared through a store (an MA's run,
//! *the* synchronisation step, the one service of a store) that one
//! [`Instance`] holds at a time, across processes and hosts.
//!
//! A lease is a meta value (JSON): the [`Holder`] (instance id, host, pid,
//! heartbeat, time to live) and whatever fields its user adds (the run
//! holding it, say). Every change is a compare-and-set on the whole value
//! ([`Store::compare_and_set_meta`]): taking a lease replaces exactly the
//! value that was judged free, renewing and releasing one only while this
//! instance's record is there. So two instances never both hold it, and
//! one never renews or drops another's.
//!
//! A lease is free when absent, held by this instance, or its holder is
//! [`Standing::Gone`]: a process of this host (same boot and pid
//! namespace) that has ended is seen at once; any other holder, once its
//! heartbeat is older than its time to live. While held, a background
//! thread (the keeper, see `keeper`) renews the heartbeat every
//! [`LeaseTiming::renew_every`]; it only ever waits for the store (for a
//! write transaction of this process, such as a sync's bulk transaction,
//! or another process's, up to the store's busy timeout), never for the
//! work the lease guards, and a renewal that fails is tried again soon. A
//! renewal that finds the lease taken over (this process was frozen or cut
//! off past the time to live) tells whoever asked ([`Leases::on_lost`]).
//!
//! Heartbeats are the writers' wall-clock times: hosts that share a store
//! keep their clocks in step (NTP) to well within the time to live.
//!
//! A lease also names the store file it was taken in
//! ([`Store::store_file`]): in a copy of the store on the same host (a
//! backup restored beside the original), the original's leases are
//! [`Gone::OtherFile`], free at once.

mod holder;
mod keeper;

pub use holder::{Gone, Holder, Instance, Standing, StoreFile};

use crate::api::{Store, StoreResult};
use chrono::{DateTime, Utc};
use keeper::Keeper;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// How long a lease lives without a heartbeat, and how often its holder
/// renews it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseTiming {
    /// Default 60 s.
    pub ttl: Duration,
    /// Default 15 s (four heartbeats per time to live).
    pub renew_every: Duration,
}

impl Default for LeaseTiming {
    fn default() -> Self {
        LeaseTiming {
            ttl: Duration::from_secs(60),
            renew_every: Duration::from_secs(15),
        }
    }
}

/// The time leases are stamped and judged with (the wall clock, or a
/// test's).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// A lease as read from the store.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    /// The stored text, exactly: what a take compares with.
    pub text: String,
    /// Its holder; `None` when the text is not a lease (then it is free).
    pub holder: Option<Holder>,
    /// The whole value, with its user's fields.
    pub value: Value,
}

impl Claim {
    fn parse(text: String) -> Claim {
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let holder = serde_json::from_value(value.clone()).ok();
        Claim {
            text,
            holder,
            value,
        }
    }

    /// The value as the lease's user's type.
    pub fn get<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_value(self.value.clone()).ok()
    }
}

/// The leases of one instance on one store. Cheap to clone; the keeper
/// thread stops when the last clone is dropped (the leases still held
/// then lapse after their time to live, or at once for a process that
/// ended).
#[derive(Clone)]
pub struct Leases {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    /// The store's file, recorded in the leases taken and compared with
    /// theirs.
    file: Option<StoreFile>,
    instance: Instance,
    timing: LeaseTiming,
    clock: Clock,
    keeper: Arc<Keeper>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.keeper.stop();
    }
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("instance", &self.inner.instance.id())
            .field("timing", &self.inner.timing)
            .finish_non_exhaustive()
    }
}

impl Leases {
    /// The leases of `instance` on `store`, on the wall clock.
    pub fn new(store: Arc<dyn Store>, instance: Instance, timing: LeaseTiming) -> Leases {
        Self::with_clock(store, instance, timing, Arc::new(Utc::now))
    }

    /// The same on `clock` (heartbeats are still sent every
    /// `renew_every` of real time; [`Leases::renew_now`] sends one at once).
    pub fn with_clock(
        store: Arc<dyn Store>,
        instance: Instance,
        timing: LeaseTiming,
        clock: Clock,
    ) -> Leases {
        Leases {
            inner: Arc::new(Inner {
                file: store.store_file(),
                store,
                instance,
                timing,
                clock,
                keeper: Arc::new(Keeper::default()),
            }),
        }
    }

    pub fn instance(&self) -> &Instance {
        &self.inner.instance
    }

    pub fn timing(&self) -> LeaseTiming {
        self.inner.timing
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The lease `key` as stored, if any.
    pub fn read(&self, key: &str) -> StoreResult<Option<Claim>> {
        Ok(self.inner.store.read()?.meta(key)?.map(Claim::parse))
    }

    /// What `claim`'s holder is to this instance now.
    pub fn standing(&self, claim: &Claim) -> Standing {
        match &claim.holder {
            Some(h) => h.standing_in(&self.inner.instance, self.inner.file, (self.inner.clock)()),
            None => Standing::Gone(Gone::Expired),
        }
    }

    /// `key`'s claim when another instance holds it and lives.
    pub fn live_holder(&self, key: &str) -> StoreResult<Option<Claim>> {
        Ok(self
            .read(key)?
            .filter(|c| self.standing(c) == Standing::Live))
    }

    /// Takes `key` for this instance with `fields` beside the holder,
    /// unless another live instance holds it, or `held` (asked only about
    /// a live holder) says its claim still holds: then returns that claim.
    /// Renewed from now on until [`Leases::release`].
    pub fn acquire(
        &self,
        key: &str,
        fields: &Map<String, Value>,
        held: &mut dyn FnMut(&Claim) -> StoreResult<bool>,
    ) -> StoreResult<Result<(), Claim>> {
        loop {
            let current = self.read(key)?;
            if let Some(claim) = &current
                && self.standing(claim) == Standing::Live
                && held(claim)?
            {
                return Ok(Err(claim.clone()));
            }
            if self.take(key, current.as_ref(), fields)? {
                return Ok(Ok(()));
            }
            // Changed since it was read: judge it again.
        }
    }

    /// Takes `key` in place of `previous` (what [`Leases::read`] gave,
    /// judged free by the caller): `false`, changing nothing, when the
    /// lease is no longer exactly that.
    pub fn take(
        &self,
        key: &str,
        previous: Option<&Claim>,
        fields: &Map<String, Value>,
    ) -> StoreResult<bool> {
        let text = self.record(fields);
        let taken = self.inner.store.compare_and_set_meta(
            key,
            previous.map(|c| c.text.as_str()),
            Some(&text),
        )?;
        if taken {
            self.keep(key);
        }
        Ok(taken)
    }

    /// Replaces the fields of `key` while this instance holds it (and
    /// stamps a heartbeat): `false` when it does not (it lost the lease).
    pub fn update(&self, key: &str, fields: &Map<String, Value>) -> StoreResult<bool> {
        self.rewrite(key, Some(fields))
    }

    /// Stamps a heartbeat on `key` while this instance holds it; `false`
    /// when it does not.
    pub fn renew(&self, key: &str) -> StoreResult<bool> {
        self.rewrite(key, None)
    }

    /// Renews every lease this instance holds now, as the keeper does every
    /// `renew_every` (a test on its own clock calls it).
    pub fn renew_now(&self) -> StoreResult<()> {
        keeper::renew_due(self, true)
    }

    /// Renews the leases whose heartbeat is due, on the caller's thread:
    /// for work that takes the store's writer again and again (a sync's
    /// bulk transactions), which the keeper thread might wait for too long.
    /// Never inside a transaction of the same store handle (the renewal
    /// would wait for the writer this thread holds).
    pub fn renew_due(&self) -> StoreResult<()> {
        keeper::renew_due(self, false)
    }

    /// Releases `key` if this instance holds it (another's is left alone).
    pub fn release(&self, key: &str) -> StoreResult<()> {
        self.inner.keeper.forget(key);
        loop {
            let Some(claim) = self.read(key)? else {
                return Ok(());
            };
            if self.standing(&claim) != Standing::Mine {
                return Ok(());
            }
            if self
                .inner
                .store
                .compare_and_set_meta(key, Some(&claim.text), None)?
            {
                return Ok(());
            }
        }
    }

    /// Calls `f` (once) if a renewal finds `key`, held by this instance,
    /// taken over by another.
    pub fn on_lost(&self, key: &str, f: Box<dyn FnOnce() + Send>) {
        self.inner.keeper.on_lost(key, f);
    }

    /// Whether this instance lost `key` to another since it took it (a
    /// renewal found it taken over).
    pub fn lost(&self, key: &str) -> bool {
        self.inner.keeper.was_lost(key)
    }

    /// The lease text for this instance now: the holder and `fields`.
    fn record(&self, fields: &Map<String, Value>) -> String {
        let now = (self.inner.clock)();
        let mut holder = self.inner.instance.holder(now, self.inner.timing.ttl);
        holder.store_file = self.inner.file;
        let mut value = fields.clone();
        if let Ok(Value::Object(h)) = serde_json::to_value(&holder) {
            value.extend(h);
        }
        Value::Object(value).to_string()
    }

    /// Rewrites `key` with a new heartbeat and `fields` (`None`: its
    /// current ones), while this instance holds it.
    fn rewrite(&self, key: &str, fields: Option<&Map<String, Value>>) -> StoreResult<bool> {
        loop {
            let Some(claim) = self.read(key)? else {
                return Ok(false);
            };
            if self.standing(&claim) != Standing::Mine {
                return Ok(false);
            }
            let empty = Map::new();
            let fields = match (fields, &claim.value) {
                (Some(new), _) => new,
                (None, Value::Object(old)) => old,
                (None, _) => &empty,
            };
            let text = self.record(fields);
            if self
                .inner
                .store
                .compare_and_set_meta(key, Some(&claim.text), Some(&text))?
            {
                return Ok(true);
            }
        }
    }

    /// Hands `key` to the keeper, starting its thread if need be.
    fn keep(&self, key: &str) {
        if self.inner.keeper.keep(key, self.inner.timing.renew_every) {
            keeper::start(self);
        }
    }
}

#[cfg(test)]
mod tests;
