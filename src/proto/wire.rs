//! Wire format v1: the fixed header in front of every relay datagram.
//!
//! The header travels in clear (the receiver needs it to pick the key and to
//! reject replays before any crypto work) and is authenticated as AEAD
//! associated data. See `docs/wire-format.md` for the normative description.

/// The only protocol version this build speaks.
pub(crate) const VERSION: u8 = 1;
/// Length of the header in bytes.
pub const HEADER_LEN: usize = 32;
/// Length of the AEAD tag that follows the sealed payload.
pub const TAG_LEN: usize = 16;
/// Flag bit: the payload is plaintext with no tag (`insecure = true`).
pub(crate) const FLAG_PLAINTEXT: u8 = 0x01;
/// Flag bit: the sender's interface is a tap, so data payloads are Ethernet
/// frames rather than IP packets.
pub(crate) const FLAG_FRAME: u8 = 0x02;

/// What a datagram carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An inner IP packet to be written into the receiver's interface.
    Data = 1,
    /// Relay-to-relay handshake: proves a peer's epoch is current (see
    /// [`Hello`]).
    Hello = 2,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::Data),
            2 => Some(Kind::Hello),
            _ => None,
        }
    }
}

/// The decoded header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub flags: u8,
    /// The sender's overlay IPv4 address as a big-endian number: unique per
    /// cluster, so it doubles as the sender's identity.
    pub sender: u32,
    /// Chosen by the sender at every start (wall-clock nanoseconds), so that
    /// keys, and with them nonces, are never reused across restarts.
    pub epoch: u64,
    /// Per-datagram counter within the epoch; the AEAD nonce.
    pub counter: u64,
    /// Sender's wall clock when sealing, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

/// Why a header could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Shorter than a header, or a reserved field is set.
    Malformed,
    /// A version this build does not speak.
    UnknownVersion,
}

impl Header {
    /// Writes the header into the first `HEADER_LEN` bytes of `out`.
    ///
    /// Panics if `out` is shorter than `HEADER_LEN`: callers size their own
    /// buffers, so a short one is a programming error, not input.
    pub fn encode(&self, out: &mut [u8]) {
        let out = &mut out[..HEADER_LEN];
        out[0] = VERSION;
        out[1] = self.kind as u8;
        out[2] = self.flags;
        out[3] = 0;
        out[4..8].copy_from_slice(&self.sender.to_be_bytes());
        out[8..16].copy_from_slice(&self.epoch.to_be_bytes());
        out[16..24].copy_from_slice(&self.counter.to_be_bytes());
        out[24..32].copy_from_slice(&self.timestamp_ms.to_be_bytes());
    }

    /// Decodes the header at the start of `buf`; the rest is the payload.
    pub fn parse(buf: &[u8]) -> Result<Header, WireError> {
        let Some(h) = buf.get(..HEADER_LEN) else {
            return Err(WireError::Malformed);
        };
        if h[0] != VERSION {
            return Err(WireError::UnknownVersion);
        }
        let kind = Kind::from_byte(h[1]).ok_or(WireError::Malformed)?;
        if h[2] & !(FLAG_PLAINTEXT | FLAG_FRAME) != 0 || h[3] != 0 {
            return Err(WireError::Malformed);
        }
        Ok(Header {
            kind,
            flags: h[2],
            sender: be_u32(&h[4..8]),
            epoch: be_u64(&h[8..16]),
            counter: be_u64(&h[16..24]),
            timestamp_ms: be_u64(&h[24..32]),
        })
    }

    pub(crate) fn is_plaintext(&self) -> bool {
        self.flags & FLAG_PLAINTEXT != 0
    }

    pub(crate) fn carries_frames(&self) -> bool {
        self.flags & FLAG_FRAME != 0
    }
}

/// Length of a hello's payload.
pub const HELLO_LEN: usize = 36;
/// Hello flag: the sender wants a hello back answering this one.
pub const HELLO_WANT_REPLY: u8 = 0x01;

/// The payload of a [`Kind::Hello`] datagram (sealed like data).
///
/// A hello that asks for an answer is a question: its header (epoch,
/// counter) is unique, and it carries a `challenge` that only its sender
/// can compute and that travels encrypted to that one peer. An answer
/// echoes all three, so it was provably sealed after the question was
/// asked, by someone who read the question — that is what lets a receiver
/// trust a peer's epoch without trusting clocks, and keeps a key holder
/// who cannot see the traffic to another node from posing as that node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// The (epoch, counter) of the hello this one answers; (0, 0) if none.
    pub echo_epoch: u64,
    pub echo_counter: u64,
    /// The challenge of the hello this one answers; 0 if none.
    pub echo_challenge: u64,
    /// This hello's own challenge when it asks for an answer; 0 otherwise.
    pub challenge: u64,
    pub flags: u8,
}

impl Hello {
    pub fn encode(&self, out: &mut [u8]) {
        let out = &mut out[..HELLO_LEN];
        out[0..8].copy_from_slice(&self.echo_epoch.to_be_bytes());
        out[8..16].copy_from_slice(&self.echo_counter.to_be_bytes());
        out[16..24].copy_from_slice(&self.echo_challenge.to_be_bytes());
        out[24..32].copy_from_slice(&self.challenge.to_be_bytes());
        out[32] = self.flags;
        out[33..36].fill(0);
    }

    pub fn parse(b: &[u8]) -> Result<Hello, WireError> {
        if b.len() != HELLO_LEN || b[33..36] != [0, 0, 0] || b[32] & !HELLO_WANT_REPLY != 0 {
            return Err(WireError::Malformed);
        }
        Ok(Hello {
            echo_epoch: be_u64(&b[0..8]),
            echo_counter: be_u64(&b[8..16]),
            echo_challenge: be_u64(&b[16..24]),
            challenge: be_u64(&b[24..32]),
            flags: b[32],
        })
    }

    pub fn wants_reply(&self) -> bool {
        self.flags & HELLO_WANT_REPLY != 0
    }
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(b);
    u32::from_be_bytes(a)
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_be_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Header {
        Header {
            kind: Kind::Data,
            flags: 0,
            sender: 0x0afa_0001,
            epoch: 1_700_000_000_123_456_789,
            counter: 42,
            timestamp_ms: 1_700_000_000_500,
        }
    }

    #[test]
    fn round_trip() {
        let mut buf = [0u8; HEADER_LEN + 3];
        sample().encode(&mut buf);
        assert_eq!(Header::parse(&buf), Ok(sample()));
    }

    #[test]
    fn layout_is_fixed() {
        let mut buf = [0u8; HEADER_LEN];
        sample().encode(&mut buf);
        assert_eq!(&buf[..8], &[1, 1, 0, 0, 0x0a, 0xfa, 0x00, 0x01]);
        assert_eq!(&buf[16..24], &42u64.to_be_bytes());
    }

    #[test]
    fn rejects_short_unknown_and_reserved() {
        let mut buf = [0u8; HEADER_LEN];
        sample().encode(&mut buf);
        assert_eq!(
            Header::parse(&buf[..HEADER_LEN - 1]),
            Err(WireError::Malformed)
        );
        let mut v2 = buf;
        v2[0] = 2;
        assert_eq!(Header::parse(&v2), Err(WireError::UnknownVersion));
        let mut kind = buf;
        kind[1] = 9;
        assert_eq!(Header::parse(&kind), Err(WireError::Malformed));
        kind[1] = 0;
        assert_eq!(Header::parse(&kind), Err(WireError::Malformed));
        let mut flags = buf;
        flags[2] = 0x80;
        assert_eq!(Header::parse(&flags), Err(WireError::Malformed));
        let mut reserved = buf;
        reserved[3] = 1;
        assert_eq!(Header::parse(&reserved), Err(WireError::Malformed));
    }

    #[test]
    fn hello_round_trip_and_strictness() {
        let h = Hello {
            echo_epoch: 7,
            echo_counter: 9,
            echo_challenge: 11,
            challenge: 13,
            flags: HELLO_WANT_REPLY,
        };
        let mut b = [0u8; HELLO_LEN];
        h.encode(&mut b);
        assert_eq!(Hello::parse(&b), Ok(h));
        assert!(h.wants_reply());
        assert_eq!(Hello::parse(&b[..HELLO_LEN - 1]), Err(WireError::Malformed));
        let mut bad = b;
        bad[32] = 0x02;
        assert_eq!(Hello::parse(&bad), Err(WireError::Malformed));
        let mut bad = b;
        bad[35] = 1;
        assert_eq!(Hello::parse(&bad), Err(WireError::Malformed));
    }
}
