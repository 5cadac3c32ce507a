//! Virtual keys: generating secrets, storing their hashes, and checking a presented key.
//!
//! A key reads `lk-<id>-<secret>`: `id` is 12 hex digits, public (the ledger and metrics
//! name it), and `secret` is 48 hex digits (192 bits) from the operating system's CSPRNG.
//! The store keeps the SHA-256 of the whole string: with that much entropy a fast hash is
//! enough, since guessing is hopeless and the hash does not need to slow down brute force.

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use llmkit_store::{Store, VirtualKey, now_secs};

use crate::error::GatewayError;

const PREFIX: &str = "lk-";
const ID_HEX: usize = 12;
const SECRET_HEX: usize = 48;

/// What `llmkit keys create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub name: String,
    /// Empty: every model.
    pub models: Vec<String>,
    pub budget_daily_usd: Option<f64>,
    /// Requests per minute; `None` is no limit.
    pub rpm: Option<u32>,
    /// Tokens per minute; `None` is no limit.
    pub tpm: Option<u32>,
    /// Requests in flight at once; `None` is no limit.
    pub max_concurrent: Option<u32>,
    /// Seconds from now.
    pub expires_in_secs: Option<f64>,
}

/// Creates a key; the secret is returned once and never stored.
pub fn create_key(
    store: &Store,
    spec: &NewKey,
) -> Result<(VirtualKey, SecretString), GatewayError> {
    let (key, secret) = new_key(spec)?;
    store.key_insert(&key, &hash(secret.expose_secret()))?;
    Ok((key, secret))
}

/// A new key record and its secret, checked but not stored yet.
pub(crate) fn new_key(spec: &NewKey) -> Result<(VirtualKey, SecretString), GatewayError> {
    if spec.name.trim().is_empty() {
        return Err(GatewayError::InvalidKey("the name is empty".into()));
    }
    if spec
        .budget_daily_usd
        .is_some_and(|b| !(b.is_finite() && b > 0.0))
    {
        return Err(GatewayError::InvalidKey(
            "the daily budget must be above 0".into(),
        ));
    }
    if [spec.rpm, spec.tpm, spec.max_concurrent].contains(&Some(0)) {
        return Err(GatewayError::InvalidKey(
            "a rate limit must be at least 1".into(),
        ));
    }
    let now = now_secs();
    let id = hex(&random::<{ ID_HEX / 2 }>());
    let secret = secret_for(&id);
    let key = VirtualKey {
        id,
        name: spec.name.trim().to_string(),
        models: spec.models.clone(),
        budget_daily_usd: spec.budget_daily_usd,
        rpm: spec.rpm,
        tpm: spec.tpm,
        max_concurrent: spec.max_concurrent,
        created: now,
        expires: spec.expires_in_secs.map(|s| now + s),
        revoked: None,
    };
    Ok((key, secret))
}

/// Revokes a key at once.
pub fn revoke_key(store: &Store, id: &str) -> Result<(), GatewayError> {
    if store.key_revoke(id, now_secs())? {
        Ok(())
    } else {
        Err(GatewayError::UnknownKey(id.to_string()))
    }
}

/// Gives a live key a new secret (same id, scope and budget); the old one stops working.
pub fn rotate_key(store: &Store, id: &str) -> Result<SecretString, GatewayError> {
    let secret = secret_for(id);
    if store.key_rotate(id, &hash(secret.expose_secret()))? {
        Ok(secret)
    } else {
        Err(GatewayError::UnknownKey(id.to_string()))
    }
}

/// A key's lifetime as `30d`, `12h`, `90m` or `3600s`, in seconds (`llmkit keys create
/// --expires` and the admin API's `expires`).
pub fn parse_lifetime(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let split = text.len().saturating_sub(1);
    let (num, unit) = text.split_at(text.char_indices().last().map_or(split, |(i, _)| i));
    let scale = match unit {
        "d" => 86_400.0,
        "h" => 3_600.0,
        "m" => 60.0,
        "s" => 1.0,
        _ => return Err("use a number with d, h, m or s, e.g. 30d".to_string()),
    };
    match num.parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n * scale),
        _ => Err("use a positive number with d, h, m or s, e.g. 30d".to_string()),
    }
}

/// Why a presented key was refused (each is a 401; the key itself is never echoed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Malformed,
    Unknown,
    Revoked,
    Expired,
}

/// The key behind a presented secret, if it is genuine and live.
#[cfg(test)]
pub(crate) fn authenticate(store: &Store, presented: &str) -> Result<VirtualKey, AuthError> {
    let id = parse_id(presented).ok_or(AuthError::Refused(Refusal::Malformed))?;
    let found = store.key_get(id).map_err(|_| AuthError::Store)?;
    verify(presented, found)
}

/// Checks a presented secret against the record its id names (`None`: no such key).
pub(crate) fn verify(
    presented: &str,
    found: Option<(VirtualKey, Vec<u8>)>,
) -> Result<VirtualKey, AuthError> {
    let Some((key, stored)) = found else {
        return Err(AuthError::Refused(Refusal::Unknown));
    };
    if !constant_time_eq(&hash(presented), &stored) {
        return Err(AuthError::Refused(Refusal::Unknown));
    }
    let now = now_secs();
    if key.revoked.is_some() {
        return Err(AuthError::Refused(Refusal::Revoked));
    }
    if !key.is_active(now) {
        return Err(AuthError::Refused(Refusal::Expired));
    }
    Ok(key)
}

#[derive(Debug)]
pub(crate) enum AuthError {
    Refused(Refusal),
    /// The store could not be read (the request is refused, not let through).
    Store,
}

pub(crate) fn secret_for(id: &str) -> SecretString {
    SecretString::from(format!(
        "{PREFIX}{id}-{}",
        hex(&random::<{ SECRET_HEX / 2 }>())
    ))
}

/// The public id inside a well-formed key.
pub(crate) fn parse_id(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('-')?;
    let hex_of = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_of(id, ID_HEX) && hex_of(secret, SECRET_HEX)).then_some(id)
}

pub(crate) fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares two hashes without an early exit, so the time taken does not tell an attacker
/// how many leading bytes of a guess were right: every byte is XORed and ORed into one
/// accumulator, and only that is tested. The lengths are public (always 32 here).
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn random<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    rand::rng().fill_bytes(&mut buf);
    buf
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_parse() {
        assert_eq!(parse_lifetime("30d"), Ok(30.0 * 86_400.0));
        assert_eq!(parse_lifetime("90m"), Ok(5_400.0));
        assert!(parse_lifetime("30").is_err());
        assert!(parse_lifetime("-1h").is_err());
        assert!(parse_lifetime("").is_err());
        assert!(parse_lifetime("é").is_err());
    }

    #[test]
    fn keys_parse_and_compare() {
        let s = secret_for("0123456789ab");
        assert_eq!(parse_id(s.expose_secret()), Some("0123456789ab"));
        assert_eq!(parse_id("lk-0123456789ab-short"), None);
        assert_eq!(parse_id("sk-whatever"), None);
        assert!(constant_time_eq(&hash("a"), &hash("a")));
        assert!(!constant_time_eq(&hash("a"), &hash("b")));
        assert!(!constant_time_eq(&[1, 2], &[1]));
    }

    #[test]
    fn create_authenticate_rotate_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let (key, secret) = create_key(
            &store,
            &NewKey {
                name: "app".into(),
                ..NewKey::default()
            },
        )
        .unwrap();
        assert_eq!(
            authenticate(&store, secret.expose_secret()).unwrap().id,
            key.id
        );
        let new = rotate_key(&store, &key.id).unwrap();
        assert!(authenticate(&store, secret.expose_secret()).is_err());
        assert!(authenticate(&store, new.expose_secret()).is_ok());
        revoke_key(&store, &key.id).unwrap();
        assert!(matches!(
            authenticate(&store, new.expose_secret()),
            Err(AuthError::Refused(Refusal::Revoked))
        ));
        assert!(create_key(&store, &NewKey::default()).is_err());
        let zero = NewKey {
            name: "app".into(),
            rpm: Some(0),
            ..NewKey::default()
        };
        assert!(create_key(&store, &zero).is_err());
    }
}
