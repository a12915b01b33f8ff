//! Notifications: a notification names an environment and a set of bits.
//! `Signal` ORs the bits into its pending word and wakes it if it waits for
//! `Event::NOTIFY`; `Wait` returns them and clears the word. It carries no
//! data and never blocks the signaller: a wakeup for whoever shares memory
//! with the signalled (a pipe, a ring).

use exo_abi::counters::Counter;
use exo_abi::syscall::Event;
use exo_abi::trace::Kind;
use exo_abi::{Error, Handle, Rights};
use exo_kernel_core::caps::NodeId;

use super::{EnvironmentId, Object, State, System};
use crate::arch::cpu;
use crate::trace;

impl System {
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
        trace::record(Kind::Signal, target.0, [bits, 0]);
        if let State::Waiting { events, .. } = environment.state
            && events.contains(Event::NOTIFY)
        {
            let bits = core::mem::take(&mut environment.pending_signals);
            self.wake(target, [0, Event::NOTIFY.bits(), bits]);
        }
        cpu::current().count(Counter::Signals);
    }
}
