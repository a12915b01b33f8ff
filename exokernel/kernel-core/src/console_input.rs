//! Console input between the serial port and the programs that read it.
//!
//! The kernel moves what arrives on the serial port into this queue at every
//! timer tick and whenever a program reads the console, so that an interrupt
//! key is seen while no program reads: Ctrl-C (ASCII ETX) is never read as
//! input but counts one interrupt, which every environment reads on its facts
//! page. A shell compares the count with what it was at its prompt, and ends
//! its foreground job when it grows, without taking the job's input from it.
//!
//! An interrupt counts once what was typed before it has been read: a script
//! typed ahead (`cmd`, Enter, Ctrl-C) interrupts `cmd`, not the line before.
//! It never decides what an interrupt means, and it never drops a byte: while
//! the queue is full the kernel leaves input in the serial port (whose sender
//! then waits) rather than reading it.

/// The interrupt key, Ctrl-C: counted, never queued.
pub const INTERRUPT: u8 = 0x03;
/// Bytes typed ahead that the queue holds before it stops taking input.
pub const CAPACITY: usize = 4096;

/// Bytes that have arrived and not been read, oldest first, and the
/// interrupts seen since boot.
#[derive(Debug)]
pub struct ConsoleInput {
    bytes: [u8; CAPACITY],
    /// Index of the oldest byte.
    start: usize,
    length: usize,
    interrupts: u64,
}

impl Default for ConsoleInput {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleInput {
    pub const fn new() -> Self {
        Self {
            bytes: [0; CAPACITY],
            start: 0,
            length: 0,
            interrupts: 0,
        }
    }

    /// Whether another byte fits: the caller reads the port only then.
    pub fn has_room(&self) -> bool {
        self.length < CAPACITY
    }

    /// Takes one byte that arrived. Returns `false`, taking nothing, when
    /// the queue is full (check [`has_room`](Self::has_room) before reading).
    pub fn arrived(&mut self, byte: u8) -> bool {
        if !self.has_room() {
            return false;
        }
        self.bytes[(self.start + self.length) % CAPACITY] = byte;
        self.length += 1;
        self.count_interrupts();
        true
    }

    /// Moves the oldest bytes into `buffer`, up to the next interrupt;
    /// returns how many.
    pub fn take(&mut self, buffer: &mut [u8]) -> usize {
        let mut count = 0;
        while count < buffer.len() && self.length > 0 && self.bytes[self.start] != INTERRUPT {
            buffer[count] = self.bytes[self.start];
            self.pop();
            count += 1;
        }
        self.count_interrupts();
        count
    }

    /// Counts, and drops, the interrupts at the head of the queue: nothing
    /// typed before them is left to read.
    fn count_interrupts(&mut self) {
        while self.length > 0 && self.bytes[self.start] == INTERRUPT {
            self.pop();
            self.interrupts += 1;
        }
    }

    fn pop(&mut self) {
        self.start = (self.start + 1) % CAPACITY;
        self.length -= 1;
    }

    /// Interrupts (Ctrl-C) seen since boot.
    pub fn interrupts(&self) -> u64 {
        self.interrupts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_out_in_order_around_the_end_of_the_array() {
        let mut input = ConsoleInput::new();
        let mut buffer = [0; CAPACITY];
        for round in 0..3u8 {
            for index in 0..CAPACITY - 1 {
                assert!(input.arrived(round.wrapping_add(index as u8) | 0x80));
            }
            assert_eq!(input.take(&mut buffer), CAPACITY - 1);
            for (index, byte) in buffer[..CAPACITY - 1].iter().enumerate() {
                assert_eq!(*byte, round.wrapping_add(index as u8) | 0x80);
            }
        }
        assert_eq!(input.take(&mut buffer), 0);
    }

    #[test]
    fn an_interrupt_counts_once_what_came_before_it_is_read_and_is_never_read() {
        let mut input = ConsoleInput::new();
        assert!(input.arrived(INTERRUPT));
        assert_eq!(input.interrupts(), 1, "nothing before it: at once");
        for byte in [b'a', INTERRUPT, INTERRUPT, b'b'] {
            assert!(input.arrived(byte));
        }
        assert_eq!(input.interrupts(), 1);
        let mut buffer = [0; 8];
        assert_eq!(input.take(&mut buffer), 1);
        assert_eq!(&buffer[..1], b"a");
        assert_eq!(input.interrupts(), 3);
        assert_eq!(input.take(&mut buffer), 1);
        assert_eq!(&buffer[..1], b"b");
    }

    #[test]
    fn a_full_queue_takes_nothing_more_until_it_is_read() {
        let mut input = ConsoleInput::new();
        for _ in 0..CAPACITY {
            assert!(input.arrived(b'x'));
        }
        assert!(!input.has_room());
        assert!(!input.arrived(INTERRUPT));
        let mut one = [0; 1];
        assert_eq!(input.take(&mut one), 1);
        assert!(input.has_room());
        assert!(input.arrived(INTERRUPT));
        assert_eq!(input.interrupts(), 0);
    }
}
