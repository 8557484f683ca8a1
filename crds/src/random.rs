//! Random values shared by the operator, the token server and the tests: one generator, so that every
//! client secret, token, code, session id, salt and key-encryption key has the same strength and
//! encoding. (Signing keys and AEAD nonces come from aws-lc's own generator, inside its key types.)
//!
//! The generator is `rand`'s thread-local `ThreadRng`, a `CryptoRng`: ChaCha seeded from the operating
//! system, reseeded every 64 KiB of output and after a fork.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore as _;

/// `N` random bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::rng().fill_bytes(&mut out);
    out
}

/// 256 random bits, base64url without padding (43 characters): client secrets, opaque tokens,
/// authorization codes and session ids.
pub fn token() -> String {
    URL_SAFE_NO_PAD.encode(bytes::<32>())
}

/// 128 random bits, base64url without padding (22 characters): JWT `jti`s and other identifiers that
/// need to be unique rather than unguessable.
pub fn id() -> String {
    URL_SAFE_NO_PAD.encode(bytes::<16>())
}

/// 256 random bits in standard base64 with padding: the key-encryption key's Secret value.
pub fn key_base64() -> String {
    STANDARD.encode(bytes::<32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_base64url_and_distinct() {
        let (a, b) = (token(), token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(URL_SAFE_NO_PAD.decode(&a).unwrap().len(), 32);
    }

    #[test]
    fn ids_are_128_bit_and_keys_are_padded_base64_of_32_bytes() {
        assert_eq!(URL_SAFE_NO_PAD.decode(id()).unwrap().len(), 16);
        assert_eq!(STANDARD.decode(key_base64()).unwrap().len(), 32);
    }
}
