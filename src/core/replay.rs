//! Sliding anti-replay window over a sender's per-epoch datagram counter.
//!
//! The receiver asks [`ReplayWindow::check`] before decrypting (cheap
//! rejection) and calls [`ReplayWindow::commit`] only after the datagram
//! authenticated, so forged counters can never move the window.
//!
//! ```text
//!            WINDOW counters wide
//!   ├──────────── too old ───┤◀──────── tracked ────────▶┤ newer: accepted
//!                            │ bit per counter (ring)   top
//! ```
//! Counters more than `WINDOW - 1` below the highest one seen are rejected
//! as too old; inside the window each counter is accepted once.

/// How many counters behind the newest one are still accepted (reordering
/// tolerance). A held redundant copy is sealed with its first copy and
/// sent `redundancy_spacing` later, so on a starved host it can arrive
/// after all the datagrams sealed meanwhile: at 5,000 datagrams/s to one
/// peer (255 VRIDs at 0.1 s, two copies) 1024 counters were only 0.2 s and
/// late copies read as replays; 8192 are 1.6 s, for 1 KiB a window.
pub const WINDOW: u64 = 8192;
const WORDS: usize = (WINDOW / 64) as usize;

/// Per-sender, per-epoch replay state.
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    /// Highest counter committed, if any.
    top: Option<u64>,
    /// Ring of bits indexed by counter modulo WINDOW.
    bits: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow {
            top: None,
            bits: [0; WORDS],
        }
    }
}

impl ReplayWindow {
    pub fn new() -> Self {
        Self::default()
    }

    /// Would `counter` be accepted? Does not change the window.
    pub fn check(&self, counter: u64) -> bool {
        match self.top {
            None => true,
            Some(top) if counter > top => true,
            Some(top) if top - counter >= WINDOW => false,
            Some(_) => !self.bit(counter),
        }
    }

    /// Records `counter` as seen. Call only after `check` said yes and the
    /// datagram authenticated.
    pub fn commit(&mut self, counter: u64) {
        match self.top {
            Some(top) if counter <= top => {}
            Some(top) => {
                // Clear the slots that the window slides over, so stale bits
                // from a full lap ago cannot read as "seen".
                let advance = counter - top;
                if advance >= WINDOW {
                    self.bits = [0; WORDS];
                } else {
                    self.clear_range(top + 1, counter);
                }
                self.top = Some(counter);
            }
            None => {
                self.bits = [0; WORDS];
                self.top = Some(counter);
            }
        }
        self.set(counter);
    }

    fn slot(counter: u64) -> (usize, u64) {
        let i = counter % WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    fn bit(&self, counter: u64) -> bool {
        let (w, m) = Self::slot(counter);
        self.bits[w] & m != 0
    }

    fn set(&mut self, counter: u64) {
        let (w, m) = Self::slot(counter);
        self.bits[w] |= m;
    }

    fn clear(&mut self, counter: u64) {
        let (w, m) = Self::slot(counter);
        self.bits[w] &= !m;
    }

    /// Clears `from..=to` (less than a window), whole words at a time:
    /// at most WORDS + 126 steps however far the window slides, so a
    /// counter far ahead costs no more than a few hundred (and in
    /// plaintext mode, where nothing authenticates first, anyone can send
    /// one).
    fn clear_range(&mut self, from: u64, to: u64) {
        let mut c = from;
        while c <= to {
            if c % 64 == 0 && to - c >= 63 {
                self.bits[((c % WINDOW) / 64) as usize] = 0;
                c += 64;
            } else {
                self.clear(c);
                c += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn accept(w: &mut ReplayWindow, c: u64) -> bool {
        if w.check(c) {
            w.commit(c);
            true
        } else {
            false
        }
    }

    #[test]
    fn in_order_then_replay() {
        let mut w = ReplayWindow::new();
        // Three laps of the ring: each slot reused, none read as seen.
        let end = 3 * WINDOW;
        for c in 0..end {
            assert!(accept(&mut w, c), "fresh counter {c} rejected");
        }
        for c in end - 1000..end {
            assert!(!accept(&mut w, c), "replayed counter {c} accepted");
        }
    }

    #[test]
    fn reordering_inside_window_is_accepted_once() {
        let mut w = ReplayWindow::new();
        assert!(accept(&mut w, 100));
        assert!(accept(&mut w, 98));
        assert!(accept(&mut w, 99));
        assert!(!accept(&mut w, 98));
        assert!(accept(&mut w, 101));
    }

    #[test]
    fn too_old_is_rejected() {
        let mut w = ReplayWindow::new();
        let top = WINDOW + 5000;
        assert!(accept(&mut w, top));
        assert!(!accept(&mut w, top - WINDOW));
        assert!(accept(&mut w, top - WINDOW + 1));
    }

    #[test]
    fn big_jump_forgets_old_bits() {
        // A jump of a full window or more clears every slot.
        let mut w = ReplayWindow::new();
        assert!(accept(&mut w, 1));
        assert!(accept(&mut w, WINDOW + 5));
        // Same ring slot as counter 1, but a different, unseen counter.
        assert!(accept(&mut w, WINDOW + 1));
        assert!(!accept(&mut w, WINDOW + 5));

        // A smaller jump clears exactly the slots it slides over.
        let mut w = ReplayWindow::new();
        assert!(accept(&mut w, 10));
        assert!(accept(&mut w, 3));
        assert!(accept(&mut w, WINDOW + 5));
        assert!(accept(&mut w, WINDOW + 3), "slot of counter 3 not cleared");
        assert!(!accept(&mut w, 10), "counter 10 is still in the window");
    }

    /// A slide of almost a window clears whole words and the ends, and
    /// nothing of what is still inside the window.
    #[test]
    fn a_long_slide_clears_the_lap_behind_and_keeps_the_window() {
        let mut w = ReplayWindow::new();
        for c in 0..200 {
            assert!(accept(&mut w, c));
        }
        let top = WINDOW + 150;
        assert!(accept(&mut w, top));
        for c in WINDOW..top {
            assert!(accept(&mut w, c), "slot of {} not cleared", c - WINDOW);
        }
        for c in 151..200 {
            assert!(!accept(&mut w, c), "counter {c} is inside the window, seen");
        }
        assert!(!accept(&mut w, 150), "counter 150 is a window behind");
    }

    #[test]
    fn check_does_not_commit() {
        let mut w = ReplayWindow::new();
        assert!(w.check(7));
        assert!(w.check(7));
        w.commit(7);
        assert!(!w.check(7));
    }

    /// Property test against a simple model: a set of every counter ever
    /// accepted plus the highest one. The window must never accept a counter
    /// twice, and must accept every fresh counter within the window.
    #[test]
    fn matches_model_on_random_sequences() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            // xorshift64*: deterministic, no dependency.
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        for _ in 0..200 {
            let mut w = ReplayWindow::new();
            let mut seen = BTreeSet::new();
            let mut top: Option<u64> = None;
            let mut base = 0u64;
            for _ in 0..2000 {
                let r = next();
                // Mostly near the front, sometimes far behind, sometimes a jump.
                let c = match r % 10 {
                    0 => base.saturating_sub(next() % (WINDOW * 2)),
                    1 => {
                        base += next() % (WINDOW * 3);
                        base
                    }
                    _ => {
                        base += next() % 4;
                        base.saturating_sub(next() % 8)
                    }
                };
                let model = match top {
                    None => true,
                    Some(t) => c > t || (t - c < WINDOW && !seen.contains(&c)),
                };
                let got = accept(&mut w, c);
                assert_eq!(got, model, "counter {c}, top {top:?}");
                if got {
                    seen.insert(c);
                    top = Some(top.map_or(c, |t| t.max(c)));
                }
            }
        }
    }
}
