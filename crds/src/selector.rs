//! Label selector matching, as the API server evaluates `matchLabels` and `matchExpressions`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::{Error, Result};

/// Whether `labels` satisfy `selector`. An absent or empty selector matches everything.
pub fn matches(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> Result<bool> {
    let Some(selector) = selector else { return Ok(true) };
    for (key, value) in selector.match_labels.iter().flatten() {
        if labels.get(key) != Some(value) {
            return Ok(false);
        }
    }
    for expr in selector.match_expressions.iter().flatten() {
        let values = expr.values.as_deref().unwrap_or_default();
        let present = labels.get(&expr.key);
        let ok = match expr.operator.as_str() {
            "In" => present.is_some_and(|v| values.contains(v)),
            "NotIn" => present.is_none_or(|v| !values.contains(v)),
            "Exists" => present.is_some(),
            "DoesNotExist" => present.is_none(),
            other => return Err(Error::InvalidSelector(format!("unknown operator {other:?}"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(matches(None, &labels(&[])).unwrap());
        assert!(matches(Some(&LabelSelector::default()), &labels(&[("a", "b")])).unwrap());
    }

    #[test]
    fn match_labels_and_expressions_must_all_hold() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("tier", "backend")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "env".into(),
                operator: "In".into(),
                values: Some(vec!["prod".into(), "staging".into()]),
            }]),
        };
        assert!(matches(Some(&selector), &labels(&[("tier", "backend"), ("env", "prod")])).unwrap());
        assert!(!matches(Some(&selector), &labels(&[("tier", "backend"), ("env", "dev")])).unwrap());
        assert!(!matches(Some(&selector), &labels(&[("env", "prod")])).unwrap());
    }

    #[test]
    fn an_unknown_operator_is_an_error() {
        let selector = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "env".into(),
                operator: "Near".into(),
                values: None,
            }]),
            ..Default::default()
        };
        assert!(matches!(
            matches(Some(&selector), &labels(&[])),
            Err(Error::InvalidSelector(_))
        ));
    }
}
