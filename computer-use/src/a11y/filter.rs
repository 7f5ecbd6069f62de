//! The find filter (spec computer-use.md §7.4): role, name with a match mode, and states,
//! AND-ed; empty filters are ignored.

use super::error::A11yError;
use super::walk::{Detail, Info};

/// Matches when no limit (or a non-positive one) is given.
pub const DEFAULT_LIMIT: usize = 500;
pub const MAX_LIMIT: usize = 5000;

#[derive(Debug)]
pub enum NameMatch {
    Substring(String),
    Exact(String),
    Regex(regex::Regex),
}

#[derive(Debug)]
pub struct Filter {
    role: Option<String>,
    name: Option<NameMatch>,
    states: Vec<String>,
}

impl Filter {
    pub fn new(
        role: Option<&str>,
        name: Option<&str>,
        name_match: Option<&str>,
        states: Option<&[String]>,
    ) -> Result<Filter, A11yError> {
        let name = name.unwrap_or_default();
        let mode = name_match.unwrap_or_default();
        let name = match mode {
            "" | "substring" => (!name.is_empty()).then(|| NameMatch::Substring(name.to_owned())),
            "exact" => (!name.is_empty()).then(|| NameMatch::Exact(name.to_owned())),
            "regex" => match name {
                "" => None,
                _ => Some(NameMatch::Regex(regex::Regex::new(name).map_err(|e| {
                    A11yError::InvalidRequest(format!("invalid regex for name filter: {e}"))
                })?)),
            },
            other => {
                return Err(A11yError::InvalidRequest(format!(
                    "unknown nameMatch mode {other:?}, want exact|substring|regex"
                )));
            }
        };
        Ok(Filter {
            role: role.map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned),
            name,
            states: states.unwrap_or_default().iter().filter(|s| !s.trim().is_empty()).cloned().collect(),
        })
    }

    /// What a walk must read for this filter.
    pub fn detail(&self) -> Detail {
        Detail::Filter {
            role: self.role.is_some(),
            name: self.name.is_some(),
            states: !self.states.is_empty(),
        }
    }

    pub fn matches(&self, info: &Info) -> bool {
        if let Some(role) = &self.role
            && !info.role.eq_ignore_ascii_case(role)
        {
            return false;
        }
        let name_ok = match &self.name {
            None => true,
            Some(NameMatch::Substring(s)) => info.name.contains(s.as_str()),
            Some(NameMatch::Exact(s)) => info.name == *s,
            Some(NameMatch::Regex(re)) => re.is_match(&info.name),
        };
        name_ok && info.states.has_all(&self.states)
    }
}

/// The effective match limit: default for ≤ 0, capped at [`MAX_LIMIT`].
pub fn effective_limit(limit: Option<i64>) -> usize {
    match limit {
        Some(l) if l > 0 => usize::try_from(l).unwrap_or(MAX_LIMIT).min(MAX_LIMIT),
        _ => DEFAULT_LIMIT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::a11y::node::States;

    fn info(role: &str, name: &str, states: u64) -> Info {
        Info { role: role.into(), name: name.into(), states: States(states), ..Info::default() }
    }

    fn f(role: Option<&str>, name: Option<&str>, mode: Option<&str>, states: &[&str]) -> Filter {
        let states: Vec<String> = states.iter().map(|s| s.to_string()).collect();
        Filter::new(role, name, mode, Some(&states)).unwrap()
    }

    #[test]
    fn role_is_case_insensitive_equality() {
        let ok = info("push button", "OK", 0);
        assert!(f(Some("Push Button"), None, None, &[]).matches(&ok));
        assert!(!f(Some("push"), None, None, &[]).matches(&ok));
        assert!(f(Some(""), None, None, &[]).matches(&ok));
    }

    #[test]
    fn name_modes() {
        let ok = info("push button", "OK button", 0);
        assert!(f(None, Some("OK"), None, &[]).matches(&ok));
        assert!(f(None, Some("OK"), Some("substring"), &[]).matches(&ok));
        assert!(!f(None, Some("ok"), Some("substring"), &[]).matches(&ok), "substring is case-sensitive");
        assert!(!f(None, Some("OK"), Some("exact"), &[]).matches(&ok));
        assert!(f(None, Some("OK button"), Some("exact"), &[]).matches(&ok));
        assert!(f(None, Some("^OK b.*n$"), Some("regex"), &[]).matches(&ok));
        assert!(f(None, Some("butt"), Some("regex"), &[]).matches(&ok), "regex is unanchored");
        assert!(!f(None, Some("^button"), Some("regex"), &[]).matches(&ok));
        assert!(f(None, Some(""), Some("exact"), &[]).matches(&ok), "empty name filters are ignored");
    }

    #[test]
    fn bad_modes_and_regexes_are_invalid_requests() {
        let e = Filter::new(None, None, Some("fuzzy"), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid accessibility request: unknown nameMatch mode \"fuzzy\", want exact|substring|regex"
        );
        let e = Filter::new(None, Some("("), Some("regex"), None).unwrap_err();
        assert!(
            e.to_string().starts_with("invalid accessibility request: invalid regex for name filter: "),
            "{e}"
        );
    }

    #[test]
    fn states_must_all_be_present_and_filters_are_anded() {
        // enabled(8) and showing(25)
        let ok = info("push button", "OK", 1 << 8 | 1 << 25);
        assert!(f(None, None, None, &["enabled"]).matches(&ok));
        assert!(f(None, None, None, &["enabled", "showing"]).matches(&ok));
        assert!(!f(None, None, None, &["enabled", "focused"]).matches(&ok));
        assert!(f(Some("push button"), Some("OK"), Some("exact"), &["showing"]).matches(&ok));
        assert!(!f(Some("label"), Some("OK"), Some("exact"), &["showing"]).matches(&ok));
    }

    #[test]
    fn detail_reads_only_what_is_filtered() {
        assert_eq!(
            f(Some("label"), None, None, &[]).detail(),
            Detail::Filter { role: true, name: false, states: false }
        );
        assert_eq!(
            f(None, Some("x"), None, &["visible"]).detail(),
            Detail::Filter { role: false, name: true, states: true }
        );
    }

    #[test]
    fn limits() {
        assert_eq!(effective_limit(None), 500);
        assert_eq!(effective_limit(Some(0)), 500);
        assert_eq!(effective_limit(Some(-5)), 500);
        assert_eq!(effective_limit(Some(7)), 7);
        assert_eq!(effective_limit(Some(99_999)), 5000);
    }
}
