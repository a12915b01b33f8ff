//! The kernel's event counters: every kernel event is counted somewhere.
//!
//! The numbering is part of the ABI because library OSes read the counters
//! from their read-only facts page (`crate::facts`) and tools print them by
//! name.

/// One countable kernel event.
#[repr(usize)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// Periodic timer interrupts.
    TimerTicks,
    /// Device interrupts other than the timer.
    DeviceInterrupts,
    /// Spurious interrupts from the local APIC (no end-of-interrupt needed).
    SpuriousInterrupts,
    /// CPU exceptions (faults, traps, aborts), from any privilege level.
    Exceptions,
    /// System calls.
    SystemCalls,
    /// Upcalls delivered to environments (faults, revocation requests, slot starts).
    Upcalls,
    /// Switches from one environment to another.
    EnvironmentSwitches,
    /// Environments created (the first one included).
    EnvironmentsCreated,
    /// Environments destroyed, for any reason.
    EnvironmentsDestroyed,
    /// Frames taken back by force after a revocation deadline passed.
    FramesTakenByForce,
    /// Protected control transfers: calls through endpoints.
    ProtectedCalls,
    /// Directed yields (`YieldTo`).
    DirectedYields,
    /// Notifications signalled (`Signal`).
    Signals,
    /// Frames the NIC received.
    FramesReceived,
    /// Received frames no binding took: no filter matched, or its ring was full.
    FramesUnmatched,
    /// Frames sent, from rings or by `NetSend`.
    FramesSent,
    /// Frames refused because their source was not the sender's (spoofs).
    FramesRefused,
    /// System calls that stopped part-way, their share of a tick used, and
    /// were taken again from their `syscall` instruction (revoke, drop,
    /// destroy).
    CallsTakenAgain,
    /// Shares of a tick in which the kernel took down an environment that
    /// ends (by `Exit` or a fault it could not handle) in that
    /// environment's own time, instead of running it.
    EndingShares,
}

impl Counter {
    /// How many counters there are.
    pub const COUNT: usize = 19;

    /// Every counter, in numbering order.
    pub const ALL: [Counter; Self::COUNT] = [
        Self::TimerTicks,
        Self::DeviceInterrupts,
        Self::SpuriousInterrupts,
        Self::Exceptions,
        Self::SystemCalls,
        Self::Upcalls,
        Self::EnvironmentSwitches,
        Self::EnvironmentsCreated,
        Self::EnvironmentsDestroyed,
        Self::FramesTakenByForce,
        Self::ProtectedCalls,
        Self::DirectedYields,
        Self::Signals,
        Self::FramesReceived,
        Self::FramesUnmatched,
        Self::FramesSent,
        Self::FramesRefused,
        Self::CallsTakenAgain,
        Self::EndingShares,
    ];

    /// The counters of entries into the kernel: each interrupt, exception
    /// and system call counts in exactly one of them.
    pub const KERNEL_ENTRIES: [Counter; 5] = [
        Self::TimerTicks,
        Self::DeviceInterrupts,
        Self::SpuriousInterrupts,
        Self::Exceptions,
        Self::SystemCalls,
    ];

    /// A short, stable name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Self::TimerTicks => "timer_ticks",
            Self::DeviceInterrupts => "device_interrupts",
            Self::SpuriousInterrupts => "spurious_interrupts",
            Self::Exceptions => "exceptions",
            Self::SystemCalls => "system_calls",
            Self::Upcalls => "upcalls",
            Self::EnvironmentSwitches => "environment_switches",
            Self::EnvironmentsCreated => "environments_created",
            Self::EnvironmentsDestroyed => "environments_destroyed",
            Self::FramesTakenByForce => "frames_taken_by_force",
            Self::ProtectedCalls => "protected_calls",
            Self::DirectedYields => "directed_yields",
            Self::Signals => "signals",
            Self::FramesReceived => "frames_received",
            Self::FramesUnmatched => "frames_unmatched",
            Self::FramesSent => "frames_sent",
            Self::FramesRefused => "frames_refused",
            Self::CallsTakenAgain => "calls_taken_again",
            Self::EndingShares => "ending_shares",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_is_dense_and_in_order() {
        for (index, counter) in Counter::ALL.iter().enumerate() {
            assert_eq!(*counter as usize, index);
        }
    }

    #[test]
    fn names_are_unique() {
        for a in Counter::ALL {
            for b in Counter::ALL {
                assert_eq!(a == b, a.name() == b.name());
            }
        }
    }
}
