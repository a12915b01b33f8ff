//! Each environment's facts page: time, slot and counters without a system call.
//!
//! The page is a frame the kernel owns (not a capability, so it cannot be
//! dropped while the kernel writes it), mapped read-only at `layout::FACTS`.
//! The kernel rewrites it when the environment is switched in, at every tick
//! while it runs, and when it starts a slot — never on the plain system-call
//! path — so what the environment reads is at most one tick old.

use exo_abi::counters::Counter;
use exo_abi::facts::{self, Facts};

use super::{EnvironmentId, System};
use crate::arch::cpu;
use crate::memory::lent_frames;
use crate::{console, time, trace};

impl System {
    /// Rewrites `id`'s facts page.
    pub(super) fn update_facts(&self, id: EnvironmentId) {
        let Some(environment) = self.environments.get(&id) else {
            return;
        };
        let this_cpu = cpu::current();
        let (console_writes, console_last_writer) = console::writes();
        let page = Facts {
            magic: facts::MAGIC,
            environment_id: u64::from(id.0),
            ticks: time::ticks(),
            ticks_per_second: time::timer_hz(),
            tsc_hz: time::tsc_hz(),
            slots: self.slices.len() as u64,
            current_slot: self.slices.current() as u64,
            slots_held: environment.slots_held,
            slots_run: environment.slots_run,
            trace_classes: trace::classes(),
            counters: Counter::ALL.map(|counter| this_cpu.counter(counter)),
            console_interrupts: console::interrupts(),
            console_writes,
            console_last_write_yours: u64::from(console_last_writer == u64::from(id.0)),
        };
        // The environment maps its facts page read-only: only the kernel writes it.
        lent_frames::write(environment.facts, lent_frames::bytes_of(&page))
            .expect("an environment's facts page is lent to it");
    }
}
