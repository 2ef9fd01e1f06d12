//! Sealing and opening datagrams: the cluster key, per-stream key derivation
//! and the AEAD (ChaCha20-Poly1305 from `ring`).
//!
//! Every (sender, epoch) pair gets its own key, derived with HKDF-SHA256 from
//! the cluster key. A sender picks a new epoch at every start, so the nonce
//! (the per-epoch counter) never repeats under one key, even across restarts.

use std::fmt;

use base64::Engine as _;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use ring::{hkdf, hmac};

use crate::proto::wire::TAG_LEN;

/// Length of the cluster key in bytes.
pub(crate) const KEY_LEN: usize = 32;

const KDF_SALT: &[u8] = b"mcast-relay wire v1";
const DATA_LABEL: &[u8] = b"data key";

/// The shared cluster secret. `Debug` never prints it.
#[derive(Clone)]
pub struct ClusterKey([u8; KEY_LEN]);

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterKey(MASKED)")
    }
}

/// Why a key could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyError {
    NotBase64,
    WrongLength(usize),
    Empty,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NotBase64 => f.write_str("the key is not valid base64"),
            KeyError::WrongLength(n) => {
                write!(f, "the key decodes to {n} bytes, expected {KEY_LEN}")
            }
            KeyError::Empty => f.write_str("the key file holds no key"),
        }
    }
}

impl ClusterKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        ClusterKey(bytes)
    }

    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, ring::error::Unspecified> {
        let mut k = [0u8; KEY_LEN];
        SystemRandom::new().fill(&mut k)?;
        Ok(ClusterKey(k))
    }

    /// Parses the key file format: one base64 line; blank lines and lines
    /// starting with `#` are ignored.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or(KeyError::Empty)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(line)
            .map_err(|_| KeyError::NotBase64)?;
        let arr: [u8; KEY_LEN] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongLength(bytes.len()))?;
        Ok(ClusterKey(arr))
    }

    /// The key file format written by `keygen`.
    pub fn to_file_text(&self) -> String {
        format!(
            "# mcast-relay cluster key: copy this file to every node (mode 0600)\n{}\n",
            base64::engine::general_purpose::STANDARD.encode(self.0)
        )
    }
}

/// Derives per-stream keys from the cluster key.
pub struct KeySchedule {
    prk: hkdf::Prk,
}

impl fmt::Debug for KeySchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeySchedule(MASKED)")
    }
}

impl KeySchedule {
    pub fn new(key: &ClusterKey) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, KDF_SALT).extract(&key.0);
        KeySchedule { prk }
    }

    /// The key that `sender` uses for every datagram of `epoch`.
    pub fn stream_key(&self, sender: u32, epoch: u64) -> StreamKey {
        let sender = sender.to_be_bytes();
        let epoch = epoch.to_be_bytes();
        let info = [DATA_LABEL, &sender[..], &epoch[..]];
        // Expanding 32 bytes from a SHA-256 PRK cannot fail (the limit is
        // 255 * 32), and the length always fits the algorithm's key.
        let okm = self
            .prk
            .expand(&info, &aead::CHACHA20_POLY1305)
            .expect("HKDF output length is fixed and valid");
        StreamKey(LessSafeKey::new(UnboundKey::from(okm)))
    }
}

/// One sender's key for one epoch.
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
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

impl StreamKey {
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

/// Computes the challenges of this run's questions: an HMAC of the
/// question's counter under a secret that never leaves this process, so
/// nobody else (a key holder included) can predict one it has not read.
pub(crate) struct Challenger(hmac::Key);

impl fmt::Debug for Challenger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Challenger(MASKED)")
    }
}

impl Challenger {
    pub fn new(secret: &[u8; KEY_LEN]) -> Self {
        Challenger(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// A fresh random secret for one run.
    pub(crate) fn random_secret() -> Result<[u8; KEY_LEN], ring::error::Unspecified> {
        let mut s = [0u8; KEY_LEN];
        SystemRandom::new().fill(&mut s)?;
        Ok(s)
    }

    /// The challenge of the question sealed with `counter`.
    pub fn challenge(&self, counter: u64) -> u64 {
        let tag = hmac::sign(&self.0, &counter.to_be_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&tag.as_ref()[..8]);
        u64::from_be_bytes(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> KeySchedule {
        KeySchedule::new(&ClusterKey::from_bytes([7u8; KEY_LEN]))
    }

    fn sealed(key: &StreamKey, counter: u64, aad: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut buf = msg.to_vec();
        let tag = key.seal(counter, aad, &mut buf);
        buf.extend_from_slice(&tag);
        buf
    }

    #[test]
    fn seal_open_round_trip() {
        let k = schedule().stream_key(1, 2);
        let mut buf = sealed(&k, 5, b"hdr", b"hello heartbeat");
        assert_ne!(&buf[..15], b"hello heartbeat");
        let n = k.open(5, b"hdr", &mut buf).expect("opens");
        assert_eq!(&buf[..n], b"hello heartbeat");
    }

    #[test]
    fn any_change_fails_to_open() {
        let s = schedule();
        let k = s.stream_key(1, 2);
        let good = sealed(&k, 5, b"hdr", b"payload");
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert_eq!(k.open(5, b"hdr", &mut bad), Err(OpenError), "flip at {i}");
        }
        assert_eq!(k.open(6, b"hdr", &mut good.clone()), Err(OpenError));
        assert_eq!(k.open(5, b"hds", &mut good.clone()), Err(OpenError));
        assert_eq!(k.open(5, b"hdr", &mut good[..10].to_vec()), Err(OpenError));
        assert_eq!(k.open(5, b"hdr", &mut [0u8; 3]), Err(OpenError));
        // Another sender, another epoch, another cluster key: other keys.
        assert_eq!(
            s.stream_key(2, 2).open(5, b"hdr", &mut good.clone()),
            Err(OpenError)
        );
        assert_eq!(
            s.stream_key(1, 3).open(5, b"hdr", &mut good.clone()),
            Err(OpenError)
        );
        let other = KeySchedule::new(&ClusterKey::from_bytes([8u8; KEY_LEN]));
        assert_eq!(
            other.stream_key(1, 2).open(5, b"hdr", &mut good.clone()),
            Err(OpenError)
        );
    }

    #[test]
    fn key_file_round_trip_and_errors() {
        let k = ClusterKey::generate().expect("rng");
        let text = k.to_file_text();
        let back = ClusterKey::parse(&text).expect("parses");
        assert_eq!(back.0, k.0);
        assert!(matches!(
            ClusterKey::parse("# only a comment\n\n"),
            Err(KeyError::Empty)
        ));
        assert!(matches!(
            ClusterKey::parse("not base64 !!"),
            Err(KeyError::NotBase64)
        ));
        assert!(matches!(
            ClusterKey::parse("AAAA"),
            Err(KeyError::WrongLength(3))
        ));
    }

    #[test]
    fn debug_never_shows_key_material() {
        let k = ClusterKey::from_bytes([0xab; KEY_LEN]);
        assert_eq!(format!("{k:?}"), "ClusterKey(MASKED)");
        assert!(!format!("{:?}", KeySchedule::new(&k)).contains("ab"));
    }

    #[test]
    fn challenges_depend_on_the_secret_and_the_counter() {
        let a = Challenger::new(&[1; KEY_LEN]);
        let b = Challenger::new(&[2; KEY_LEN]);
        assert_eq!(a.challenge(5), Challenger::new(&[1; KEY_LEN]).challenge(5));
        assert_ne!(a.challenge(5), a.challenge(6));
        assert_ne!(a.challenge(5), b.challenge(5));
        assert_eq!(format!("{a:?}"), "Challenger(MASKED)");
        let s1 = Challenger::random_secret().expect("random");
        let s2 = Challenger::random_secret().expect("random");
        assert_ne!(s1, s2);
    }
}
