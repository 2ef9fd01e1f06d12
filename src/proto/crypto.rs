//! The AEAD that seals data and keepalives (ChaCha20-Poly1305 from `ring`,
//! in place) and the handshake MAC that lets a receiver refuse junk before
//! any Diffie-Hellman (HMAC-SHA256 keyed by a hash of the receiver's
//! public key, truncated to 16 bytes: anyone who knows the receiver's
//! public key can compute it, so it proves no identity, only that the
//! sender meant this receiver). Keys come from the Noise handshake
//! (`proto::noise`); nothing here derives one.

use std::fmt;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::{digest, hmac};

use crate::proto::keys::PublicKey;
use crate::proto::wire::{MAC_LEN, TAG_LEN};

/// Length of a transport key in bytes.
pub(crate) const KEY_LEN: usize = 32;

const MAC_LABEL: &[u8] = b"mcast-relay v2 mac1";

/// One direction of one session.
pub struct StreamKey(LessSafeKey);

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamKey(MASKED)")
    }
}

/// Authentication failed: forged, corrupted, or sealed with another key.
#[derive(Debug, PartialEq, Eq)]
pub struct OpenError;

fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; aead::NONCE_LEN];
    n[4..].copy_from_slice(&counter.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

impl StreamKey {
    /// A key from the handshake's output; `ring` keeps its own copy, the
    /// caller wipes `bytes`.
    pub fn new(bytes: &[u8; KEY_LEN]) -> Self {
        // A 32-byte key is exactly what ChaCha20-Poly1305 takes.
        let unbound = UnboundKey::new(&aead::CHACHA20_POLY1305, bytes)
            .expect("a 32-byte key fits ChaCha20-Poly1305");
        StreamKey(LessSafeKey::new(unbound))
    }

    /// Encrypts `payload` in place and returns the tag to append.
    pub fn seal(&self, counter: u64, aad: &[u8], payload: &mut [u8]) -> [u8; TAG_LEN] {
        // ring fails only if the payload exceeds the AEAD's limit (256 GiB).
        let tag = self
            .0
            .seal_in_place_separate_tag(nonce(counter), Aad::from(aad), payload)
            .expect("payload is far below the AEAD length limit");
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Verifies and decrypts `sealed` (ciphertext followed by the tag) in
    /// place; returns the plaintext length.
    pub fn open(&self, counter: u64, aad: &[u8], sealed: &mut [u8]) -> Result<usize, OpenError> {
        if sealed.len() < TAG_LEN {
            return Err(OpenError);
        }
        self.0
            .open_in_place(nonce(counter), Aad::from(aad), sealed)
            .map(|p| p.len())
            .map_err(|_| OpenError)
    }
}

/// The handshake MAC for messages to one receiver.
#[derive(Clone)]
pub struct MacKey(hmac::Key);

impl fmt::Debug for MacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacKey")
    }
}

impl MacKey {
    /// The key for messages to the holder of `receiver`.
    pub fn for_receiver(receiver: &PublicKey) -> MacKey {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(MAC_LABEL);
        ctx.update(receiver.bytes());
        MacKey(hmac::Key::new(hmac::HMAC_SHA256, ctx.finish().as_ref()))
    }

    /// The MAC of `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; MAC_LEN] {
        let tag = hmac::sign(&self.0, msg);
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&tag.as_ref()[..MAC_LEN]);
        out
    }

    /// Whether `mac` is the MAC of `msg`, in constant time.
    pub fn verify(&self, msg: &[u8], mac: &[u8]) -> bool {
        let tag = hmac::sign(&self.0, msg);
        // Every byte compared, whatever differs first: no timing oracle.
        mac.len() == MAC_LEN
            && tag.as_ref()[..MAC_LEN]
                .iter()
                .zip(mac)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let k = StreamKey::new(&[7; KEY_LEN]);
        let mut buf = *b"heartbeat.......";
        let tag = k.seal(5, b"hdr", &mut buf);
        let mut sealed = buf.to_vec();
        sealed.extend_from_slice(&tag);
        let mut ok = sealed.clone();
        assert_eq!(k.open(5, b"hdr", &mut ok), Ok(16));
        assert_eq!(&ok[..16], b"heartbeat.......");
        assert_eq!(k.open(6, b"hdr", &mut sealed.clone()), Err(OpenError));
        assert_eq!(k.open(5, b"hdX", &mut sealed.clone()), Err(OpenError));
        let other = StreamKey::new(&[8; KEY_LEN]);
        assert_eq!(other.open(5, b"hdr", &mut sealed.clone()), Err(OpenError));
        assert_eq!(k.open(5, b"hdr", &mut [0u8; 3]), Err(OpenError));
    }

    #[test]
    fn mac_is_bound_to_the_receiver() {
        let a = MacKey::for_receiver(&PublicKey([1; 32]));
        let b = MacKey::for_receiver(&PublicKey([2; 32]));
        let mac = a.sign(b"message");
        assert!(a.verify(b"message", &mac));
        assert!(!a.verify(b"messagf", &mac));
        assert!(!b.verify(b"message", &mac));
        assert!(!a.verify(b"message", &mac[..15]));
    }
}
