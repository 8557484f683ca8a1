//! Durations as Kubernetes writes them (`30s`, `15m`, `1h30m`), validated by the API server with CEL and
//! parsed here for policy resolution.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A positive duration in Go's notation, as used across Kubernetes APIs: `90s`, `15m`, `1h30m`, `720h`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(pub String);

/// The pattern every duration must match; `duration()` in CEL accepts exactly these strings.
pub const PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$";

impl Duration {
    /// Builds a duration from its text without checking it; [`Duration::as_secs`] checks.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The duration in whole seconds (fractions are truncated), or an error if it is malformed or zero.
    pub fn as_secs(&self) -> Result<u64> {
        parse_secs(&self.0)
    }
}

impl std::fmt::Display for Duration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "maxLength": 32,
            "x-kubernetes-validations": [{
                "rule": format!(
                    "self.matches('{}') && duration(self) > duration('0s')",
                    PATTERN.replace('\\', "\\\\")
                ),
                "message": "must be a positive duration such as 90s, 15m or 1h30m",
            }],
        })
    }
}

/// Parses a Go-style duration into whole seconds. Zero and negative durations are refused.
fn parse_secs(text: &str) -> Result<u64> {
    let invalid = || Error::InvalidDuration(text.to_owned());
    if text.is_empty() {
        return Err(invalid());
    }
    let mut total_nanos: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let (number, tail) = rest.split_at(number_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(invalid()),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() || (number.contains('.') && fraction.is_empty()) {
            return Err(invalid());
        }
        let whole: u128 = whole.parse().map_err(|_| invalid())?;
        let mut value = whole.checked_mul(unit_nanos).ok_or_else(invalid)?;
        let mut scale = unit_nanos;
        for digit in fraction.chars() {
            scale /= 10;
            let digit = u128::from(digit.to_digit(10).ok_or_else(invalid)?);
            value += digit * scale;
        }
        total_nanos = total_nanos.checked_add(value).ok_or_else(invalid)?;
        rest = tail;
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000).map_err(|_| invalid())?;
    if total_nanos == 0 {
        return Err(invalid());
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_durations_parse_to_seconds() {
        assert_eq!(Duration::new("90s").as_secs().unwrap(), 90);
        assert_eq!(Duration::new("15m").as_secs().unwrap(), 900);
        assert_eq!(Duration::new("1h30m").as_secs().unwrap(), 5400);
        assert_eq!(Duration::new("1.5h").as_secs().unwrap(), 5400);
        assert_eq!(Duration::new("720h").as_secs().unwrap(), 2_592_000);
        assert_eq!(Duration::new("1500ms").as_secs().unwrap(), 1);
    }

    #[test]
    fn zero_empty_and_malformed_durations_are_refused() {
        for bad in ["", "0s", "10", "h", "1d", "-5m", "1.h", ".5h", "5 m", "1h-"] {
            assert!(
                matches!(Duration::new(bad).as_secs(), Err(Error::InvalidDuration(_))),
                "{bad:?} should be refused"
            );
        }
    }
}
