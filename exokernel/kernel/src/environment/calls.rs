//! Protected control transfer (Engler et al., SOSP 1995): an endpoint names
//! a server environment and an entry tag. `Call` runs the server at once, on
//! the caller's slot, with two register arguments and optionally one
//! capability; `Reply` runs the caller again the same way.
//!
//! A server takes a call only while it waits for calls and serves none. A
//! caller that finds it busy blocks in the server's queue, first come first
//! served, and gives the server the rest of its slot (so it gets back to
//! `Wait` sooner); its call waits in its own environment record (nothing is
//! allocated), and `Wait` hands the server the first queued call at once.
//! So a client never retries, and none is passed over.

use exo_abi::counters::Counter;
use exo_abi::syscall::{Event, NO_CAPABILITY};
use exo_abi::trace::Kind;
use exo_abi::{Error, Handle, Rights};

use super::{EnvironmentId, Object, QueuedCall, State, System};
use crate::arch::cpu;
use crate::trace;

/// What a `Wait` for calls finds in its queue (`take_queued_call`).
pub(super) enum Queued {
    /// A call to serve: (`CALL`, entry tag) and `rdi`, `r8`, `r9`.
    Call([u64; 2], [u64; 3]),
    /// Nobody waiting.
    Empty,
    /// The share ran out answering callers whose capabilities could not be
    /// passed: the `Wait` is taken again.
    Stopped,
}

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

    /// Whether `from` could pass `raw` (`pass_capability`) as things stand:
    /// it names a live capability of its own with `GRANT`, not on its way
    /// out. What the receiver's table or account will allow is seen when
    /// the call is taken.
    fn check_passable(&self, from: EnvironmentId, raw: u64) -> Result<(), Error> {
        if raw == NO_CAPABILITY {
            return Ok(());
        }
        let capability = self.capabilities.lookup(from, Handle::from_raw(raw))?;
        if !capability.rights.contains(Rights::GRANT) {
            return Err(Error::MissingRights);
        }
        if self.capabilities.is_going(capability.node) {
            return Err(Error::StaleHandle);
        }
        Ok(())
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
        if server == caller {
            // It could never take its own call.
            return Err(Error::NotReceiving);
        }
        // A server receives while it waits for calls and is not still
        // serving one: each call gets its reply before the next is taken.
        let target = self.environment(server);
        if target.is_being_taken_down() {
            // It runs no more: as good as gone.
            return Err(Error::PeerGone);
        }
        let receiving = target.serving.is_none()
            && matches!(target.state, State::Waiting { events, .. } if events.contains(Event::CALL));
        if !receiving {
            // A capability that cannot be passed now is refused now, not
            // when the server comes to the call.
            self.check_passable(caller, passed)?;
            self.enqueue(
                caller,
                server,
                QueuedCall {
                    entry,
                    arguments,
                    passed,
                },
            );
            return Ok(());
        }
        let passed = self.pass_capability(caller, passed, server)?;
        let target = self.environment(server);
        target.serving = Some(caller);
        let saved = &mut target.saved;
        (saved.rdi, saved.r8, saved.r9) = (arguments[0], arguments[1], passed);
        self.wake(server, [0, Event::CALL.bits(), entry]);
        self.environment(caller).state = State::Calling { server };
        self.scheduler.donate(server);
        cpu::current().count(Counter::ProtectedCalls);
        trace::record(Kind::Call, caller.0, [u64::from(server.0), entry]);
        Ok(())
    }

    /// Blocks `caller` at the end of `server`'s queue with `call`, and gives
    /// the server the rest of the slot if it can run.
    fn enqueue(&mut self, caller: EnvironmentId, server: EnvironmentId, call: QueuedCall) {
        let environment = self.environment(caller);
        environment.state = State::Calling { server };
        environment.queued = Some(call);
        environment.next_caller = None;
        let target = self.environment(server);
        match target.callers {
            None => target.callers = Some((caller, caller)),
            Some((first, last)) => {
                target.callers = Some((first, caller));
                self.environment(last).next_caller = Some(caller);
                self.environment(caller).previous_caller = Some(last);
            }
        }
        if self.environment(server).is_runnable() {
            self.scheduler.donate(server);
        } else {
            self.scheduler.yield_requested = true;
        }
    }

    /// Takes the first call waiting in `server`'s queue, makes it the one
    /// `server` serves, and returns what `Wait` returns: (`CALL`, entry tag)
    /// and the arguments and passed capability for `rdi`, `r8`, `r9`. A
    /// caller whose capability can no longer be passed gets that error as
    /// its call's result, and the next one is taken — while `go_on` allows:
    /// thousands of callers whose capabilities a revoke took while they
    /// waited would otherwise all be answered in one go, interrupts off.
    pub(super) fn take_queued_call(
        &mut self,
        server: EnvironmentId,
        go_on: &mut dyn FnMut() -> bool,
    ) -> Queued {
        while let Some((first, call)) = self.pop_queued_caller(server) {
            let Some(call) = call else {
                return Queued::Empty;
            };
            match self.pass_capability(first, call.passed, server) {
                Ok(passed) => {
                    self.environment(server).serving = Some(first);
                    cpu::current().count(Counter::ProtectedCalls);
                    trace::record(Kind::Call, first.0, [u64::from(server.0), call.entry]);
                    let [argument0, argument1] = call.arguments;
                    return Queued::Call(
                        [Event::CALL.bits(), call.entry],
                        [argument0, argument1, passed],
                    );
                }
                Err(error) => {
                    self.wake(first, [error.code(), 0, 0]);
                    if !go_on() {
                        return Queued::Stopped;
                    }
                }
            }
        }
        Queued::Empty
    }

    /// Takes the first caller out of `server`'s queue, with its call (which
    /// every queued caller has); it is still blocked, and the caller's to
    /// answer.
    pub(super) fn pop_queued_caller(
        &mut self,
        server: EnvironmentId,
    ) -> Option<(EnvironmentId, Option<QueuedCall>)> {
        let (first, last) = self.environment(server).callers?;
        let caller = self.environment(first);
        let call = caller.queued.take();
        caller.previous_caller = None;
        let next = caller.next_caller.take();
        self.environment(server).callers = next.map(|next| (next, last));
        if let Some(next) = next {
            self.environment(next).previous_caller = None;
        }
        Some((first, call))
    }

    /// Takes `removed` (gone already; `before` and `after` were its
    /// neighbours) out of `server`'s queue. The queue is linked both ways so
    /// that this costs the same wherever `removed` stood: destroying a family
    /// of queued callers newest first would otherwise walk the queue from its
    /// front once for each (`hostile-depth`).
    pub(super) fn unqueue(
        &mut self,
        server: EnvironmentId,
        removed: EnvironmentId,
        before: Option<EnvironmentId>,
        after: Option<EnvironmentId>,
    ) {
        if let Some(environment) = before.and_then(|before| self.environments.get_mut(&before)) {
            environment.next_caller = after;
        }
        if let Some(environment) = after.and_then(|after| self.environments.get_mut(&after)) {
            environment.previous_caller = before;
        }
        let Some(target) = self.environments.get_mut(&server) else {
            return;
        };
        if let Some((first, last)) = target.callers {
            let first = if first == removed { after } else { Some(first) };
            let last = if last == removed { before } else { Some(last) };
            target.callers = first.zip(last);
        }
    }

    /// Answers the call `server` is serving with `results` and capability `passed`.
    pub fn reply(
        &mut self,
        server: EnvironmentId,
        results: [u64; 2],
        passed: u64,
    ) -> Result<(), Error> {
        let client = self.environment(server).serving.ok_or(Error::NoCaller)?;
        // A caller being taken down is as good as gone: it runs no more.
        let waiting = self.environments.get(&client).is_some_and(|environment| {
            environment.state == State::Calling { server } && !environment.is_being_taken_down()
        });
        if !waiting {
            self.environment(server).serving = None;
            return Err(Error::PeerGone);
        }
        let passed = self.pass_capability(server, passed, client)?;
        self.environment(server).serving = None;
        trace::record(Kind::Reply, server.0, [u64::from(client.0), 0]);
        self.environment(client).saved.rdi = passed;
        self.wake(client, [0, results[0], results[1]]);
        self.scheduler.donate(client);
        Ok(())
    }
}
