//! Control of the CPU: slots, directed yield, waiting, and protected
//! control transfer.
//!
//! - A slot capability binds one slot of the slice vector to an
//!   environment (`SlotAllocate`); the binding is checked once, then each
//!   round the slot simply runs its owner.
//! - `YieldTo` donates the rest of the current slot; `Wait` blocks until an
//!   event and gives the slot away meanwhile.
//! - An endpoint names a server environment and an entry tag. `Call` runs
//!   the server at once, on the caller's slot, with two register arguments
//!   and optionally one capability; `Reply` runs the caller again the same
//!   way (Engler et al., SOSP 1995: protected control transfer). Nothing is
//!   buffered in the kernel: a server receives only while it waits for calls.
//! - A notification names an environment and a set of bits. `Signal` ORs
//!   the bits into its pending word and wakes it if it waits for
//!   `Event::NOTIFY`; `Wait` returns them and clears the word. It carries no
//!   data and never blocks the signaller: a wakeup for whoever shares memory
//!   with the signalled (a pipe, a ring).

use exo_abi::counters::Counter;
use exo_abi::syscall::{ANY_SLOT, Event, NO_CAPABILITY};
use exo_abi::{Error, Handle, Rights};
use exo_kernel_core::caps::NodeId;
use exo_kernel_core::slices::SlotError;

use super::{EnvironmentId, Object, State, System};
use crate::arch::cpu;
use crate::time;

impl System {
    /// Binds slot `slot` (or any free one) to the environment `target` names;
    /// the capability goes into `caller`'s table, and the slot is charged to
    /// `caller`'s slot account while it is held (until the capability goes or
    /// its owner is destroyed): slots are lent like frames, so no
    /// environment takes more than its creator gave it.
    pub fn slot_allocate(
        &mut self,
        caller: EnvironmentId,
        target: Handle,
        slot: u64,
    ) -> Result<(Handle, u64), Error> {
        let owner = self.target(caller, target, Rights::CONTROL)?;
        let wanted = match slot {
            ANY_SLOT => None,
            index => Some(u32::try_from(index).map_err(|_| Error::InvalidArgument)?),
        };
        // Whether the slot is there to take first: with every slot held,
        // that is the answer even for an environment whose quota is spent.
        let id = self
            .slices
            .allocate(owner, caller, wanted)
            .map_err(|error| match error {
                SlotError::OutOfRange => Error::InvalidArgument,
                SlotError::Taken | SlotError::NoneFree => Error::SlotUnavailable,
            })?;
        if self.environment(caller).slots.charge(1).is_err() {
            self.slices.free(id);
            return Err(Error::SlotQuotaExceeded);
        }
        let inserted = self.new_capability(caller, |capabilities| {
            capabilities.insert_root(caller, Object::Slot(id), Rights::SLOT)
        });
        match inserted {
            Ok(handle) => {
                self.environment(owner).slots_held += 1;
                Ok((handle, u64::from(id.index)))
            }
            Err(error) => {
                self.slices.free(id);
                self.environment(caller).slots.uncharge(1);
                Err(error)
            }
        }
    }

    /// How many slots the slice vector has.
    pub fn slot_count(&self) -> u64 {
        self.slices.len() as u64
    }

    /// Gives the rest of the current slot to the environment `target` names.
    pub fn yield_to(&mut self, caller: EnvironmentId, target: Handle) -> Result<(), Error> {
        let target = self.target(caller, target, Rights::CALL)?;
        if !self.environment(target).is_runnable() {
            return Err(Error::NotReceiving);
        }
        if target != caller {
            self.scheduler.donate(target);
            cpu::current().count(Counter::DirectedYields);
        }
        Ok(())
    }

    /// Blocks `caller` until one of `events`; the results arrive when it
    /// wakes. Returns at once with (`NOTIFY`, bits) if it waits for
    /// notifications and bits are pending.
    pub fn wait(
        &mut self,
        caller: EnvironmentId,
        events: u64,
        timeout: u64,
    ) -> Result<(u64, u64), Error> {
        let events = Event::from_bits(events)
            .filter(|events| !events.is_empty())
            .ok_or(Error::InvalidArgument)?;
        let environment = self.environment(caller);
        if events.contains(Event::NOTIFY) && environment.pending_signals != 0 {
            let bits = core::mem::take(&mut environment.pending_signals);
            return Ok((Event::NOTIFY.bits(), bits));
        }
        let deadline = match events.contains(Event::TIMER) {
            true => time::ticks().saturating_add(timeout),
            false => u64::MAX,
        };
        self.environment(caller).state = State::Waiting { events, deadline };
        self.scheduler.yield_requested = true;
        Ok((0, 0))
    }

    /// A new notification into `caller` that sets `bits`.
    pub fn notification_create(
        &mut self,
        caller: EnvironmentId,
        bits: u64,
    ) -> Result<Handle, Error> {
        if bits == 0 {
            return Err(Error::InvalidArgument);
        }
        let notification = Object::Notification {
            target: caller,
            bits,
        };
        self.new_capability(caller, |capabilities| {
            capabilities.insert_root(caller, notification, Rights::NOTIFICATION)
        })
    }

    /// Sets the bits of `notification` in its environment's pending word,
    /// waking it if it waits for them.
    pub fn signal(&mut self, caller: EnvironmentId, notification: Handle) -> Result<(), Error> {
        let ((target, bits), _) = self.notification_of(caller, notification)?;
        // The capability is rooted in the target's own table, so it went
        // with the target: the target exists.
        self.raise(target, bits);
        Ok(())
    }

    /// The target and bits of the notification `handle` names, with `SIGNAL`.
    pub(super) fn notification_of(
        &self,
        caller: EnvironmentId,
        handle: Handle,
    ) -> Result<((EnvironmentId, u64), NodeId), Error> {
        self.capability_as(caller, handle, Rights::SIGNAL, |object| match object {
            Object::Notification { target, bits } => Some((target, bits)),
            _ => None,
        })
    }

    /// Sets `bits` in `target`'s pending word, waking it if it waits for
    /// them; nothing if `target` is gone.
    pub(super) fn raise(&mut self, target: EnvironmentId, bits: u64) {
        let Some(environment) = self.environments.get_mut(&target) else {
            return;
        };
        environment.pending_signals |= bits;
        if let State::Waiting { events, .. } = environment.state
            && events.contains(Event::NOTIFY)
        {
            let bits = core::mem::take(&mut environment.pending_signals);
            environment.wake([0, Event::NOTIFY.bits(), bits]);
        }
        cpu::current().count(Counter::Signals);
    }

    /// Wakes every environment whose timer has passed.
    pub(super) fn wake_timers(&mut self) {
        let now = time::ticks();
        for environment in self.environments.values_mut() {
            if let State::Waiting { events, deadline } = environment.state
                && events.contains(Event::TIMER)
                && deadline <= now
            {
                environment.wake([0, Event::TIMER.bits(), 0]);
            }
        }
    }

    /// A new endpoint into `caller`; calls through it carry `entry`.
    pub fn endpoint_create(&mut self, caller: EnvironmentId, entry: u64) -> Result<Handle, Error> {
        let endpoint = Object::Endpoint {
            server: caller,
            entry,
        };
        self.new_capability(caller, |capabilities| {
            capabilities.insert_root(caller, endpoint, Rights::ENDPOINT)
        })
    }

    /// Copies the capability `raw` (unless `NO_CAPABILITY`) from `from` to
    /// `to` with its rights; returns the new handle, raw.
    fn pass_capability(
        &mut self,
        from: EnvironmentId,
        raw: u64,
        to: EnvironmentId,
    ) -> Result<u64, Error> {
        if raw == NO_CAPABILITY {
            return Ok(NO_CAPABILITY);
        }
        let handle = Handle::from_raw(raw);
        let rights = self.capabilities.lookup(from, handle)?.rights;
        self.new_capability(to, |capabilities| {
            capabilities.grant(from, handle, to, rights)
        })
        .map(Handle::to_raw)
    }

    /// Calls the server of `endpoint` with `arguments` and capability `passed`.
    pub fn call(
        &mut self,
        caller: EnvironmentId,
        endpoint: Handle,
        arguments: [u64; 2],
        passed: u64,
    ) -> Result<(), Error> {
        let ((server, entry), _) =
            self.capability_as(caller, endpoint, Rights::CALL, |object| match object {
                Object::Endpoint { server, entry } => Some((server, entry)),
                _ => None,
            })?;
        // A server receives while it waits for calls and is not still
        // serving one: each call gets its reply before the next is taken.
        let target = self.environment(server);
        let receiving = target.serving.is_none()
            && matches!(target.state, State::Waiting { events, .. } if events.contains(Event::CALL));
        if !receiving {
            return Err(Error::NotReceiving);
        }
        let passed = self.pass_capability(caller, passed, server)?;
        let target = self.environment(server);
        target.serving = Some(caller);
        target.wake([0, Event::CALL.bits(), entry]);
        let saved = &mut target.saved;
        (saved.rdi, saved.r8, saved.r9) = (arguments[0], arguments[1], passed);
        self.environment(caller).state = State::Calling { server };
        self.scheduler.donate(server);
        cpu::current().count(Counter::ProtectedCalls);
        Ok(())
    }

    /// Answers the call `server` is serving with `results` and capability `passed`.
    pub fn reply(
        &mut self,
        server: EnvironmentId,
        results: [u64; 2],
        passed: u64,
    ) -> Result<(), Error> {
        let client = self.environment(server).serving.ok_or(Error::NoCaller)?;
        let waiting = self
            .environments
            .get(&client)
            .is_some_and(|environment| environment.state == State::Calling { server });
        if !waiting {
            self.environment(server).serving = None;
            return Err(Error::PeerGone);
        }
        let passed = self.pass_capability(server, passed, client)?;
        self.environment(server).serving = None;
        let caller = self.environment(client);
        caller.wake([0, results[0], results[1]]);
        caller.saved.rdi = passed;
        self.scheduler.donate(client);
        Ok(())
    }
}
