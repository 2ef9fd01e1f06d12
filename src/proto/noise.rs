//! The handshake between two relays: Noise IK
//! (`Noise_IK_25519_ChaChaPoly_BLAKE2s`, from the `snow` crate), the
//! initiator knowing the responder's static key from the cluster file.
//! Message 1 carries the initiator's static key encrypted and proves it
//! (es, ss); message 2 completes forward secrecy (ee, se). Each side gets
//! fresh ephemeral keys every handshake, so every session has new keys,
//! and the two transport keys come out of the split.
//!
//! This module only frames and runs the messages; which handshake to start,
//! accept or refuse is `core::handshake`'s job.

use std::fmt;

use snow::{Builder, HandshakeState};
use zeroize::Zeroize;

use crate::proto::crypto::{KEY_LEN, StreamKey};
use crate::proto::keys::{PrivateKey, PublicKey};

const PATTERN: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
/// Binds every handshake to this protocol and version.
const PROLOGUE: &[u8] = b"mcast-relay wire v2";

/// The handshake failed: a message that does not decrypt or authenticate.
#[derive(Debug, PartialEq, Eq)]
pub struct HandshakeError;

/// A handshake in progress (ours as initiator, or a responder's after
/// message 1).
pub struct Noise(HandshakeState);

impl fmt::Debug for Noise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Noise(MASKED)")
    }
}

/// The two keys of a finished handshake.
pub struct Keys {
    pub send: StreamKey,
    pub recv: StreamKey,
}

fn builder<'a>() -> Builder<'a> {
    // The pattern name is a constant this crate's tests parse.
    Builder::new(PATTERN.parse().expect("a valid Noise pattern"))
}

impl Noise {
    /// Starts a handshake as initiator towards the holder of `remote`.
    pub fn initiator(local: &PrivateKey, remote: &PublicKey) -> Result<Noise, HandshakeError> {
        builder()
            .local_private_key(local.bytes())
            .and_then(|b| b.remote_public_key(remote.bytes()))
            .and_then(|b| b.prologue(PROLOGUE))
            .and_then(|b| b.build_initiator())
            .map(Noise)
            .map_err(|_| HandshakeError)
    }

    /// Starts the responder's side.
    pub fn responder(local: &PrivateKey) -> Result<Noise, HandshakeError> {
        builder()
            .local_private_key(local.bytes())
            .and_then(|b| b.prologue(PROLOGUE))
            .and_then(|b| b.build_responder())
            .map(Noise)
            .map_err(|_| HandshakeError)
    }

    /// Writes the next message, carrying `payload`, into `out`; returns its
    /// length.
    pub fn write(&mut self, payload: &[u8], out: &mut [u8]) -> Result<usize, HandshakeError> {
        self.0
            .write_message(payload, out)
            .map_err(|_| HandshakeError)
    }

    /// Reads the peer's message into `payload`; returns the payload length.
    /// A failed read spoils the state: the caller discards it.
    pub fn read(&mut self, msg: &[u8], payload: &mut [u8]) -> Result<usize, HandshakeError> {
        self.0
            .read_message(msg, payload)
            .map_err(|_| HandshakeError)
    }

    /// The peer's static key, once message 1 has been read (responder) or
    /// from the start (initiator).
    pub fn remote_static(&self) -> Option<PublicKey> {
        let s = self.0.get_remote_static()?;
        let key: [u8; 32] = s.try_into().ok()?;
        Some(PublicKey(key))
    }

    /// The transport keys of a finished handshake.
    pub fn split(mut self) -> Result<Keys, HandshakeError> {
        if !self.0.is_handshake_finished() {
            return Err(HandshakeError);
        }
        let initiator = self.0.is_initiator();
        let (mut i_to_r, mut r_to_i) = self.0.dangerously_get_raw_split();
        let (send, recv): (&[u8; KEY_LEN], &[u8; KEY_LEN]) = if initiator {
            (&i_to_r, &r_to_i)
        } else {
            (&r_to_i, &i_to_r)
        };
        let keys = Keys {
            send: StreamKey::new(send),
            recv: StreamKey::new(recv),
        };
        i_to_r.zeroize();
        r_to_i.zeroize();
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::wire::{INIT_NOISE_LEN, INIT_PAYLOAD_LEN, RESP_NOISE_LEN, RESP_PAYLOAD_LEN};

    fn pair(a: &PrivateKey, b: &PrivateKey) -> (Keys, Keys, PublicKey) {
        let mut i = Noise::initiator(a, &b.public()).expect("initiator");
        let mut r = Noise::responder(b).expect("responder");
        let mut m1 = [0u8; INIT_NOISE_LEN];
        assert_eq!(i.write(&[9; INIT_PAYLOAD_LEN], &mut m1), Ok(INIT_NOISE_LEN));
        let mut p = [0u8; 64];
        assert_eq!(r.read(&m1, &mut p), Ok(INIT_PAYLOAD_LEN));
        let who = r.remote_static().expect("static");
        let mut m2 = [0u8; RESP_NOISE_LEN];
        assert_eq!(r.write(&[3; RESP_PAYLOAD_LEN], &mut m2), Ok(RESP_NOISE_LEN));
        assert_eq!(i.read(&m2, &mut p), Ok(RESP_PAYLOAD_LEN));
        (i.split().expect("split"), r.split().expect("split"), who)
    }

    #[test]
    fn both_sides_agree_and_learn_who_initiated() {
        let a = PrivateKey::from_bytes([1; 32]);
        let b = PrivateKey::from_bytes([2; 32]);
        let (ka, kb, who) = pair(&a, &b);
        assert_eq!(who, a.public());
        let mut msg = *b"advert..";
        let tag = ka.send.seal(0, b"", &mut msg);
        let mut sealed = msg.to_vec();
        sealed.extend_from_slice(&tag);
        assert_eq!(kb.recv.open(0, b"", &mut sealed), Ok(8));
        // Every handshake makes new keys: a second session cannot open the
        // first one's datagrams.
        let (_, kb2, _) = pair(&a, &b);
        let mut again = *b"advert..";
        let tag = ka.send.seal(1, b"", &mut again);
        let mut sealed = again.to_vec();
        sealed.extend_from_slice(&tag);
        assert!(kb2.recv.open(1, b"", &mut sealed).is_err());
    }

    #[test]
    fn message_one_for_someone_else_does_not_read() {
        let a = PrivateKey::from_bytes([1; 32]);
        let b = PrivateKey::from_bytes([2; 32]);
        let c = PrivateKey::from_bytes([3; 32]);
        let mut i = Noise::initiator(&a, &b.public()).expect("initiator");
        let mut m1 = [0u8; INIT_NOISE_LEN];
        i.write(&[0; INIT_PAYLOAD_LEN], &mut m1).expect("write");
        let mut p = [0u8; 64];
        assert!(Noise::responder(&c).expect("r").read(&m1, &mut p).is_err());
        let mut flipped = m1;
        flipped[40] ^= 1;
        assert!(
            Noise::responder(&b)
                .expect("r")
                .read(&flipped, &mut p)
                .is_err()
        );
    }
}
