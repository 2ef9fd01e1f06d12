//! Quorum-aware failover (`node.quorum = true`): a node whose relay
//! reaches fewer than a majority of the cluster's relays, itself
//! included, takes its interface's carrier down, so the failover tool
//! steps down (keepalived enters FAULT and releases the VIP), and raises
//! it again when the majority is back. With three or more nodes a
//! network partition then leaves one master, not two.
//!
//! The price: a cluster of two loses its master whenever the link between
//! them fails, and a lone survivor of a dead majority holds nothing.

/// Whether `reachable` other nodes out of `peers` make, with this one, a
/// strict majority of the cluster.
pub fn has_quorum(reachable: usize, peers: usize) -> bool {
    2 * (reachable + 1) > peers + 1
}

/// Carrier decisions with their reasons, one per change.
#[derive(Debug, Default)]
pub struct Quorum {
    /// The current decision; `None` before the first.
    up: Option<bool>,
}

/// A change of the carrier to make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub up: bool,
    pub reachable: usize,
    pub cluster: usize,
}

impl Quorum {
    /// Feeds the current count; returns a change to apply, if any.
    pub fn update(&mut self, reachable: usize, peers: usize) -> Option<Change> {
        let up = has_quorum(reachable, peers);
        if self.up == Some(up) {
            return None;
        }
        self.up = Some(up);
        Some(Change {
            up,
            reachable: reachable + 1,
            cluster: peers + 1,
        })
    }

    pub fn is_up(&self) -> Option<bool> {
        self.up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_rule() {
        // Three nodes: one other is enough, none is not.
        assert!(has_quorum(1, 2));
        assert!(!has_quorum(0, 2));
        // Two nodes: both are needed.
        assert!(has_quorum(1, 1));
        assert!(!has_quorum(0, 1));
        // Five nodes: two others.
        assert!(has_quorum(2, 4));
        assert!(!has_quorum(1, 4));
        // A single node is its own majority.
        assert!(has_quorum(0, 0));
    }

    #[test]
    fn changes_are_reported_once() {
        let mut q = Quorum::default();
        assert_eq!(
            q.update(0, 2),
            Some(Change {
                up: false,
                reachable: 1,
                cluster: 3
            })
        );
        assert_eq!(q.update(0, 2), None);
        assert_eq!(q.update(1, 2).map(|c| c.up), Some(true));
        assert_eq!(q.update(2, 2), None);
        assert_eq!(q.is_up(), Some(true));
    }
}
