//! Protected control transfer (Engler et al., SOSP 1995): an endpoint names
//! a server environment and an entry tag. `Call` runs the server at once, on
//! the caller's slot, with two register arguments and optionally one
//! capability; `Reply` runs the caller again the same way. Nothing is
//! buffered in the kernel: a server receives only while it waits for calls.

use exo_abi::counters::Counter;
use exo_abi::syscall::{Event, NO_CAPABILITY};
use exo_abi::trace::Kind;
use exo_abi::{Error, Handle, Rights};

use super::{EnvironmentId, Object, State, System};
use crate::arch::cpu;
use crate::trace;

impl System {
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
        trace::record(Kind::Call, caller.0, [u64::from(server.0), entry]);
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
        trace::record(Kind::Reply, server.0, [u64::from(client.0), 0]);
        let caller = self.environment(client);
        caller.wake([0, results[0], results[1]]);
        caller.saved.rdi = passed;
        self.scheduler.donate(client);
        Ok(())
    }
}
