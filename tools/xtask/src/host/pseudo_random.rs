//! Deterministic pseudo-random bytes for the network scenarios: payloads whose every byte
//! matters, which the checking side regenerates from the same seed instead of keeping a
//! copy, and hostile frames that come out the same on every run.
//!
//! xorshift64* (Marsaglia; Vigna's multiplier): fast and good enough to make every offset
//! of a stream distinct in practice. Not for anything secret.
//!
//! Written by hand, not with rand: rand declares its seedable generators (`StdRng`,
//! `SmallRng`) non-portable, free to change their values in any release, and these streams
//! must stay the same bytes. A generator crate that promises that (rand_xoshiro) would add
//! rand_core's traits for the twenty lines of xorshift here.

/// A stream of pseudo-random bytes determined by its seed.
#[derive(Clone, Debug)]
pub struct PseudoRandom {
    state: u64,
    /// Bytes of the last word not handed out yet, and how many.
    spare: [u8; 8],
    spare_count: usize,
}

impl PseudoRandom {
    pub fn new(seed: u64) -> Self {
        PseudoRandom {
            // Any non-zero state works; mixing the seed keeps small seeds apart.
            state: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            spare: [0; 8],
            spare_count: 0,
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `range` (start included, end excluded); `range` must not be empty.
    pub fn below(&mut self, range: std::ops::Range<usize>) -> usize {
        let width = (range.end - range.start) as u64;
        range.start + (self.next_u64() % width) as usize
    }

    /// Fills `buffer` with the stream's next bytes: the same bytes however the stream is
    /// cut into buffers.
    pub fn fill(&mut self, buffer: &mut [u8]) {
        // The spare bytes first, then whole words (the bulk of a long buffer), then a
        // word's first bytes, keeping the rest as spare.
        let from_spare = self.spare_count.min(buffer.len());
        let (head, rest) = buffer.split_at_mut(from_spare);
        let start = 8 - self.spare_count;
        head.copy_from_slice(&self.spare[start..start + from_spare]);
        self.spare_count -= from_spare;
        let mut words = rest.chunks_exact_mut(8);
        for word in &mut words {
            word.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            self.spare = self.next_u64().to_le_bytes();
            tail.copy_from_slice(&self.spare[..tail.len()]);
            self.spare_count = 8 - tail.len();
        }
    }

    /// The stream's next `length` bytes.
    pub fn bytes(&mut self, length: usize) -> Vec<u8> {
        let mut bytes = vec![0; length];
        self.fill(&mut bytes);
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_the_same_however_it_is_cut() {
        let whole = PseudoRandom::new(7).bytes(1000);
        let mut pieces = PseudoRandom::new(7);
        let mut cut = Vec::new();
        for length in [1, 7, 8, 9, 100, 875] {
            cut.extend(pieces.bytes(length));
        }
        assert_eq!(whole, cut);
        assert_ne!(whole, PseudoRandom::new(8).bytes(1000));
        assert_ne!(PseudoRandom::new(0).bytes(16), vec![0; 16]);
    }

    #[test]
    fn numbers_stay_in_their_range() {
        let mut random = PseudoRandom::new(1);
        for _ in 0..1000 {
            assert!((10..14).contains(&random.below(10..14)));
        }
    }
}
