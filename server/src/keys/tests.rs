use super::*;

const DAY: i64 = 86_400;

fn meta(kid: &str, activates_at: i64, retire_after: Option<i64>) -> KeyMeta {
    KeyMeta {
        kid: kid.to_owned(),
        alg: "ES256".to_owned(),
        activates_at,
        retire_after,
    }
}

fn schedule() -> Schedule {
    Schedule::for_period(30 * DAY)
}

#[test]
fn the_first_start_creates_a_key_that_signs_at_once() {
    let decided = plan(&[], SigningAlg::Es256, 1_000, schedule(), 3_600);
    assert_eq!(
        decided,
        Plan {
            create_at: Some(1_000),
            ..Plan::default()
        }
    );
}

#[test]
fn nothing_happens_in_the_middle_of_a_period() {
    let keys = [meta("a", 0, None)];
    assert_eq!(
        plan(&keys, SigningAlg::Es256, 10 * DAY, schedule(), 3_600),
        Plan::default()
    );
}

#[test]
fn the_next_key_is_published_a_lead_ahead_of_the_end_of_the_period() {
    assert_eq!(schedule().lead, DAY);
    let keys = [meta("a", 0, None)];
    let now = 29 * DAY;
    let decided = plan(&keys, SigningAlg::Es256, now, schedule(), 3_600);
    assert_eq!(decided.create_at, Some(30 * DAY));
}

#[test]
fn a_late_maintenance_still_publishes_the_next_key_a_lead_ahead() {
    let keys = [meta("a", 0, None)];
    let now = 45 * DAY;
    let decided = plan(&keys, SigningAlg::Es256, now, schedule(), 3_600);
    assert_eq!(decided.create_at, Some(now + DAY));
}

#[test]
fn a_pending_key_is_not_created_twice() {
    let keys = [meta("a", 0, None), meta("b", 30 * DAY, None)];
    let decided = plan(&keys, SigningAlg::Es256, 29 * DAY + 10, schedule(), 3_600);
    assert_eq!(decided, Plan::default());
}

#[test]
fn a_switched_out_key_is_retired_one_token_lifetime_after_its_successor_took_over() {
    let keys = [meta("a", 0, None), meta("b", 30 * DAY, None)];
    let decided = plan(&keys, SigningAlg::Es256, 30 * DAY + 5, schedule(), 3_600);
    assert_eq!(decided.retire, vec![("a".to_owned(), 30 * DAY + 3_600)]);
    assert_eq!(decided.create_at, None);
}

#[test]
fn a_key_past_its_retirement_is_deleted() {
    let keys = [meta("a", 0, Some(30 * DAY + 3_600)), meta("b", 30 * DAY, None)];
    let decided = plan(&keys, SigningAlg::Es256, 30 * DAY + 3_600, schedule(), 3_600);
    assert_eq!(decided.delete, vec!["a".to_owned()]);
}

#[test]
fn changing_the_algorithm_creates_a_key_of_the_new_one_at_once() {
    let keys = [meta("a", 0, None)];
    let decided = plan(&keys, SigningAlg::EdDsa, 10, schedule(), 3_600);
    assert_eq!(decided.create_at, Some(10));
}

#[test]
fn every_algorithm_signs_and_verifies_and_survives_a_pkcs8_round_trip() {
    for alg in [SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::EdDsa] {
        let (key, pkcs8) = SigningKey::generate(alg).unwrap();
        let sig = key.sign(b"payload").unwrap();
        assert!(key.verify(b"payload", &sig), "{alg:?}");
        assert!(!key.verify(b"other", &sig), "{alg:?}");
        let parsed = SigningKey::from_pkcs8(alg, &pkcs8).unwrap();
        assert_eq!(parsed.kid, key.kid);
        assert!(parsed.verify(b"payload", &sig));
        assert_eq!(key.jwk["alg"], alg.as_str());
        assert_eq!(key.jwk["kid"], key.kid.as_str());
    }
}

#[test]
fn the_key_encryption_key_seals_and_opens_and_binds_the_kid() {
    let kek = Kek::new(&[7u8; 32]).unwrap();
    let sealed = kek.seal(b"kid-1", b"private").unwrap();
    assert_eq!(kek.open(b"kid-1", &sealed).unwrap(), b"private");
    assert!(kek.open(b"kid-2", &sealed).is_err());
    let other = Kek::new(&[8u8; 32]).unwrap();
    assert!(other.open(b"kid-1", &sealed).is_err());
}

#[test]
fn key_encryption_keys_decode_from_hex_or_base64_and_must_be_32_bytes() {
    let bytes = [0xabu8; 32];
    assert_eq!(Kek::decode(&hex::encode(bytes)).unwrap(), bytes);
    assert_eq!(Kek::decode(&STANDARD.encode(bytes)).unwrap(), bytes);
    assert_eq!(Kek::decode(&URL_SAFE_NO_PAD.encode(bytes)).unwrap(), bytes);
    assert!(Kek::decode("c2hvcnQ=").is_err());
}
