//! Wire format v2: the clear headers in front of every relay datagram.
//!
//! Every datagram starts with the same 8 bytes (version, kind, flags, copy
//! number, the sender's id). Data and keepalives then name the receiver's session and
//! carry the counter that is the AEAD nonce; the whole transport header is
//! authenticated as associated data. Handshake messages carry Noise
//! payloads and end with a MAC keyed by the receiver's public key, which
//! lets a receiver refuse junk before any Diffie-Hellman. The header
//! travels in clear because the receiver needs it to pick the session and
//! reject replays before any crypto work. `docs/wire-format.md` is the
//! normative description, byte by byte.

/// The only protocol version this build speaks.
pub(crate) const VERSION: u8 = 2;
/// Bytes every datagram starts with.
pub const PREFIX_LEN: usize = 8;
/// Length of the header of data and keepalives.
pub const HEADER_LEN: usize = 20;
/// Length of the AEAD tag that follows a sealed payload.
pub const TAG_LEN: usize = 16;
/// Length of the MAC that ends a handshake message.
pub const MAC_LEN: usize = 16;
/// The most copies of one packet a sender makes per peer (redundancy times
/// paths): the copy number is one byte.
pub const MAX_COPIES: usize = 32;
/// Flag bit: the payload is plaintext with no tag (`insecure = true`).
pub(crate) const FLAG_PLAINTEXT: u8 = 0x01;
/// Flag bit: the sender's interface is a tap, so data payloads are Ethernet
/// frames rather than IP packets.
pub(crate) const FLAG_FRAME: u8 = 0x02;

/// The initiator's handshake payload: timestamp (12), run (8), flags (1),
/// its session index (4, the clear one's authenticated copy).
pub const INIT_PAYLOAD_LEN: usize = 25;
/// The responder's handshake payload: run (8), flags (1), both session
/// indices (4 + 4, authenticated copies of the clear ones).
pub const RESP_PAYLOAD_LEN: usize = 17;
/// Noise IK message 1: ephemeral key, encrypted static key and its tag,
/// encrypted payload and its tag.
pub const INIT_NOISE_LEN: usize = 32 + 32 + TAG_LEN + INIT_PAYLOAD_LEN + TAG_LEN;
/// Noise IK message 2: ephemeral key, encrypted payload and its tag.
pub const RESP_NOISE_LEN: usize = 32 + RESP_PAYLOAD_LEN + TAG_LEN;
/// A whole initiation: prefix, sender index, Noise message, MAC.
pub const INITIATION_LEN: usize = PREFIX_LEN + 4 + INIT_NOISE_LEN + MAC_LEN;
/// A whole response: prefix, sender and receiver index, Noise message, MAC.
pub const RESPONSE_LEN: usize = PREFIX_LEN + 8 + RESP_NOISE_LEN + MAC_LEN;
/// A keepalive's plaintext: flags (1), ping number (8).
pub const KEEPALIVE_LEN: usize = 9;
/// Keepalive flag: the sender wants this keepalive echoed.
pub const KEEPALIVE_WANT_REPLY: u8 = 0x01;
/// A view's plaintext: a flags byte (0) and a 64-byte bitmap of the
/// virtual routers in a split-brain alarm (bit family × 256 + VRID).
pub const VIEW_LEN: usize = 65;

/// What a datagram carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An inner IP packet (or frame) to be written into the receiver's
    /// interface, sealed under a session.
    Data = 1,
    /// Noise IK message 1: asks for a new session.
    Initiation = 2,
    /// Noise IK message 2: completes it.
    Response = 3,
    /// A ping or its echo, sealed under a session.
    Keepalive = 4,
    /// The split-brain alarms the sender sees now, sealed under a
    /// session, so that a relay that hears only one master learns of the
    /// other (cloud VIP claims hold while any relay sees two).
    View = 5,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Data),
            2 => Some(Kind::Initiation),
            3 => Some(Kind::Response),
            4 => Some(Kind::Keepalive),
            5 => Some(Kind::View),
            _ => None,
        }
    }

    /// Sealed under a session (as opposed to a handshake message).
    pub fn is_transport(self) -> bool {
        matches!(self, Kind::Data | Kind::Keepalive | Kind::View)
    }
}

/// Why a header could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Too short for its kind, or a reserved field is set.
    Malformed,
    /// A version this build does not speak.
    UnknownVersion,
}

/// The 8 bytes in front of every datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    pub kind: Kind,
    pub flags: u8,
    /// Data only: which copy of the packet this is (0 for the first, and
    /// for everything that is not data). Copy `k` is sealed with the
    /// packet's number plus `k` as its counter, so the receiver knows
    /// the packet without anything else on the wire, and since this byte
    /// is authenticated, a copy is never mistaken for a replay.
    pub copy: u8,
    /// The sender's overlay IPv4 address as a big-endian number: unique per
    /// cluster, so it names the member the datagram claims to be from.
    /// Only the session (data) or the static key (handshake) proves it.
    pub sender: u32,
}

impl Prefix {
    pub fn encode(&self, out: &mut [u8]) {
        out[0] = VERSION;
        out[1] = self.kind as u8;
        out[2] = self.flags;
        out[3] = self.copy;
        out[4..8].copy_from_slice(&self.sender.to_be_bytes());
    }

    /// Decodes the prefix at the start of `buf` and checks that `buf` has
    /// the length its kind needs (exact for handshakes).
    pub fn parse(buf: &[u8]) -> Result<Prefix, WireError> {
        let Some(h) = buf.get(..PREFIX_LEN) else {
            return Err(WireError::Malformed);
        };
        if h[0] != VERSION {
            return Err(WireError::UnknownVersion);
        }
        let kind = Kind::from_byte(h[1]).ok_or(WireError::Malformed)?;
        if h[2] & !(FLAG_PLAINTEXT | FLAG_FRAME) != 0 {
            return Err(WireError::Malformed);
        }
        // Only data is copied.
        if (kind != Kind::Data && h[3] != 0) || usize::from(h[3]) >= MAX_COPIES {
            return Err(WireError::Malformed);
        }
        // Handshakes carry no flags.
        if !kind.is_transport() && h[2] != 0 {
            return Err(WireError::Malformed);
        }
        let fits = match kind {
            Kind::Data | Kind::Keepalive | Kind::View => buf.len() >= HEADER_LEN,
            Kind::Initiation => buf.len() == INITIATION_LEN,
            Kind::Response => buf.len() == RESPONSE_LEN,
        };
        if !fits {
            return Err(WireError::Malformed);
        }
        Ok(Prefix {
            kind,
            flags: h[2],
            copy: h[3],
            sender: be_u32(&h[4..8]),
        })
    }

    pub(crate) fn is_plaintext(&self) -> bool {
        self.flags & FLAG_PLAINTEXT != 0
    }

    pub(crate) fn carries_frames(&self) -> bool {
        self.flags & FLAG_FRAME != 0
    }
}

/// The header of data and keepalives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub prefix: Prefix,
    /// The receiver's index of the session this is sealed under (insecure
    /// mode: the sender's run).
    pub receiver: u32,
    /// Per-session datagram counter; the AEAD nonce.
    pub counter: u64,
}

impl Header {
    /// Writes the header into the first `HEADER_LEN` bytes of `out`.
    ///
    /// Panics if `out` is shorter than `HEADER_LEN`: callers size their own
    /// buffers, so a short one is a programming error, not input.
    pub fn encode(&self, out: &mut [u8]) {
        let out = &mut out[..HEADER_LEN];
        self.prefix.encode(out);
        out[8..12].copy_from_slice(&self.receiver.to_be_bytes());
        out[12..20].copy_from_slice(&self.counter.to_be_bytes());
    }

    /// Decodes a transport header; `prefix` is what [`Prefix::parse`] read.
    pub fn parse(prefix: Prefix, buf: &[u8]) -> Header {
        Header {
            prefix,
            receiver: be_u32(&buf[8..12]),
            counter: be_u64(&buf[12..20]),
        }
    }

    /// The number of the packet this datagram is a copy of: its counter
    /// less its copy number. `None` if the copy number is larger than the
    /// counter, which no sender makes.
    pub fn packet_number(&self) -> Option<u64> {
        self.counter.checked_sub(u64::from(self.prefix.copy))
    }
}

/// The clear fields of a handshake message: the sender's index for the new
/// session and, in a response, the initiator's index it answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakeIds {
    pub sender_index: u32,
    pub receiver_index: u32,
}

impl HandshakeIds {
    /// The clear indices of a handshake message of `kind` that
    /// [`Prefix::parse`] accepted (so long enough for them).
    pub fn parse(kind: Kind, buf: &[u8]) -> HandshakeIds {
        HandshakeIds {
            sender_index: be_u32(&buf[8..12]),
            receiver_index: if kind == Kind::Response {
                be_u32(&buf[12..16])
            } else {
                0
            },
        }
    }
}

/// A handshake timestamp: seconds since 1970 offset by 2^62 (so a clock
/// set before 1970 still orders) and nanoseconds, big-endian, so that
/// byte order is time order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp(pub [u8; 12]);

impl Timestamp {
    const OFFSET: u64 = 1 << 62;

    /// From nanoseconds relative to the Unix epoch (negative: before it).
    pub fn from_unix_nanos(nanos: i128) -> Timestamp {
        let secs = nanos.div_euclid(1_000_000_000);
        let sub = nanos.rem_euclid(1_000_000_000) as u32;
        let biased = (secs + Self::OFFSET as i128).clamp(0, u64::MAX as i128) as u64;
        let mut b = [0u8; 12];
        b[..8].copy_from_slice(&biased.to_be_bytes());
        b[8..].copy_from_slice(&sub.to_be_bytes());
        Timestamp(b)
    }

    /// Milliseconds relative to the Unix epoch.
    pub fn unix_ms(&self) -> i128 {
        let secs = be_u64(&self.0[..8]) as i128 - Self::OFFSET as i128;
        secs * 1000 + (be_u32(&self.0[8..]) / 1_000_000) as i128
    }

    /// The smallest timestamp after this one.
    pub fn next(&self) -> Timestamp {
        let mut n = u128::from_be_bytes({
            let mut a = [0u8; 16];
            a[4..].copy_from_slice(&self.0);
            a
        });
        // 96 bits: the top value stays the top value.
        n = (n + 1).min((1u128 << 96) - 1);
        let mut b = [0u8; 12];
        b.copy_from_slice(&n.to_be_bytes()[4..]);
        Timestamp(b)
    }
}

pub(crate) fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

pub(crate) fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            prefix: Prefix {
                kind: Kind::Data,
                flags: 0,
                copy: 0,
                sender: 0x0afa_0001,
            },
            receiver: 0xdead_beef,
            counter: 42,
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let mut buf = [0u8; HEADER_LEN + 3];
        sample().encode(&mut buf);
        assert_eq!(&buf[..8], &[2, 1, 0, 0, 0x0a, 0xfa, 0x00, 0x01]);
        assert_eq!(&buf[8..12], &0xdead_beefu32.to_be_bytes());
        assert_eq!(&buf[12..20], &42u64.to_be_bytes());
        let p = Prefix::parse(&buf).expect("prefix");
        assert_eq!(Header::parse(p, &buf), sample());
    }

    #[test]
    fn rejects_short_unknown_and_reserved() {
        let mut buf = [0u8; HEADER_LEN];
        sample().encode(&mut buf);
        assert_eq!(
            Prefix::parse(&buf[..HEADER_LEN - 1]),
            Err(WireError::Malformed)
        );
        let mut v1 = buf;
        v1[0] = 1;
        assert_eq!(Prefix::parse(&v1), Err(WireError::UnknownVersion));
        for (at, value) in [(1, 9), (1, 0), (2, 0x80), (3, MAX_COPIES as u8)] {
            let mut bad = buf;
            bad[at] = value;
            assert_eq!(Prefix::parse(&bad), Err(WireError::Malformed), "byte {at}");
        }
        // A copy number on data, never on a keepalive.
        let mut copy = buf;
        copy[3] = 3;
        assert_eq!(Prefix::parse(&copy).map(|p| p.copy), Ok(3));
        copy[1] = Kind::Keepalive as u8;
        assert_eq!(Prefix::parse(&copy), Err(WireError::Malformed));
        // Handshakes have one exact length each.
        let mut init = [0u8; INITIATION_LEN + 1];
        Prefix {
            kind: Kind::Initiation,
            flags: 0,
            copy: 0,
            sender: 1,
        }
        .encode(&mut init);
        assert!(Prefix::parse(&init[..INITIATION_LEN]).is_ok());
        assert_eq!(Prefix::parse(&init), Err(WireError::Malformed));
        assert_eq!(
            Prefix::parse(&init[..INITIATION_LEN - 1]),
            Err(WireError::Malformed)
        );
    }

    #[test]
    fn packet_number_is_counter_less_copy() {
        let mut h = sample();
        h.prefix.copy = 2;
        assert_eq!(h.packet_number(), Some(40));
        h.counter = 1;
        assert_eq!(h.packet_number(), None);
    }

    #[test]
    fn timestamps_order_as_bytes_even_before_1970() {
        let before = Timestamp::from_unix_nanos(-1_500_000_000);
        let epoch = Timestamp::from_unix_nanos(0);
        let now = Timestamp::from_unix_nanos(1_800_000_000_000_000_000);
        assert!(before < epoch && epoch < now);
        assert!(now < now.next());
        assert_eq!(before.unix_ms(), -1500);
        assert_eq!(now.unix_ms(), 1_800_000_000_000);
        let mut top = Timestamp([0xff; 12]);
        top = top.next();
        assert_eq!(top, Timestamp([0xff; 12]), "saturates");
    }
}
