//! Node keys: each relay's static X25519 key pair, in the text forms the
//! key file and the cluster file use (one base64 line of 32 bytes).
//!
//! The private key is wiped from memory when dropped and never printed by
//! `Debug`; the public key is no secret and prints as its base64 form, the
//! way an operator pastes it into `public_key`.

use std::fmt;

use base64::Engine as _;
use curve25519_dalek::{MontgomeryPoint, Scalar};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// Length of a private or public key in bytes.
pub const KEY_LEN: usize = 32;

/// Why a key could not be read from text.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyError {
    NotBase64,
    WrongLength(usize),
    Empty,
    /// The operating system's random source failed (`keygen`).
    NoRandomness,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NotBase64 => f.write_str("the key is not valid base64"),
            KeyError::WrongLength(n) => {
                write!(f, "the key decodes to {n} bytes, expected {KEY_LEN}")
            }
            KeyError::Empty => f.write_str("the key file holds no key"),
            KeyError::NoRandomness => f.write_str("the system's random number source failed"),
        }
    }
}

impl std::error::Error for KeyError {}

fn decode(text: &str) -> Result<[u8; KEY_LEN], KeyError> {
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| KeyError::NotBase64)?,
    );
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::WrongLength(bytes.len()))
}

/// This node's private key. Cloning copies the secret; each copy is wiped
/// when dropped.
#[derive(Clone)]
pub struct PrivateKey(Zeroizing<[u8; KEY_LEN]>);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(MASKED)")
    }
}

impl PrivateKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        PrivateKey(Zeroizing::new(bytes))
    }

    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, KeyError> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(&mut k[..])
            .map_err(|_| KeyError::NoRandomness)?;
        Ok(PrivateKey(k))
    }

    /// Parses the key file format: one base64 line; blank lines and lines
    /// starting with `#` are ignored.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let line = text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or(KeyError::Empty)?;
        decode(line).map(PrivateKey::from_bytes)
    }

    /// The key file's text, as `keygen` writes it.
    pub fn to_file_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "# mcast-relay node private key: keep it on this host only (mode 0600)\n{}\n",
            base64::engine::general_purpose::STANDARD.encode(&self.0[..])
        ))
    }

    /// The matching public key (X25519 of the base point, clamped as the
    /// Diffie-Hellman function clamps).
    pub fn public(&self) -> PublicKey {
        PublicKey(MontgomeryPoint::mul_base_clamped(*self.0).to_bytes())
    }

    /// The raw secret, for the handshake only.
    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

/// A node's public key, as in the cluster file's `public_key`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; KEY_LEN]);

impl PublicKey {
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        decode(text).map(PublicKey)
    }

    pub fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A point of small order (all zeros among them): every Diffie-Hellman
    /// with it gives a value anyone can compute, so a member listed with
    /// such a key could be posed as by anyone. Never a real key.
    pub fn is_weak(&self) -> bool {
        // Small order means eight times the point is the identity, which
        // the x-only ladder gives as u = 0 (on the curve or its twist).
        (MontgomeryPoint(self.0) * Scalar::from(8u8)).to_bytes() == [0; KEY_LEN]
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base64::engine::general_purpose::STANDARD.encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl std::str::FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, KeyError> {
        PublicKey::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_key_round_trips_and_is_masked() {
        let k = PrivateKey::generate().expect("rng");
        let back = PrivateKey::parse(&k.to_file_text()).expect("parses");
        assert_eq!(back.public(), k.public());
        assert_eq!(format!("{k:?}"), "PrivateKey(MASKED)");
        let text = k.to_file_text();
        let secret_line = text.lines().nth(1).expect("key line");
        assert!(!format!("{k:?}").contains(secret_line));
    }

    #[test]
    fn public_key_is_the_x25519_of_the_base_point() {
        // RFC 7748 §6.1, Alice's key pair.
        let hex = |s: &str| -> [u8; 32] {
            let mut a = [0u8; 32];
            for (i, b) in a.iter_mut().enumerate() {
                *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex");
            }
            a
        };
        let private = PrivateKey::from_bytes(hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        let public = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        assert_eq!(private.public(), PublicKey(public));
        let shown = private.public().to_string();
        assert_eq!(PublicKey::parse(&shown), Ok(PublicKey(public)));
    }

    #[test]
    fn small_order_points_are_weak() {
        assert!(PublicKey([0; 32]).is_weak());
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(PublicKey(one).is_weak());
        assert!(!PrivateKey::generate().expect("rng").public().is_weak());
        // Random bytes are mostly not on the curve but on its twist, where
        // X25519 works as well: not weak.
        assert!(!PublicKey([0x42; 32]).is_weak());
        // One of the order-8 points (RFC 7748's list of points to refuse).
        let order8 = [
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ];
        assert!(PublicKey(order8).is_weak());
    }

    #[test]
    fn bad_text_is_refused() {
        assert_eq!(PrivateKey::parse("").map(|_| ()), Err(KeyError::Empty));
        assert_eq!(
            PrivateKey::parse("# only\n\n").map(|_| ()),
            Err(KeyError::Empty)
        );
        assert_eq!(PublicKey::parse("not base64!"), Err(KeyError::NotBase64));
        assert_eq!(PublicKey::parse("AAAA"), Err(KeyError::WrongLength(3)));
    }
}
