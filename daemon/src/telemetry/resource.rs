//! The resource every export describes itself with (misc.md §6).

use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;

use crate::config::Config;

/// The attributes, in order; a later key replaces an earlier one, so an extra label may
/// override a standard attribute, as the reference's attribute set does.
pub fn attributes(config: &Config, version: &str, hostname: Option<&str>) -> Vec<KeyValue> {
    let mut attrs = vec![
        KeyValue::new("service.name", format!("sandbox-{}", config.sandbox_id)),
        KeyValue::new("service.version", version.to_string()),
        KeyValue::new(
            "service.instance.id",
            hostname.filter(|h| !h.is_empty()).unwrap_or("unknown").to_string(),
        ),
        KeyValue::new("deployment.environment.name", ""),
    ];
    attrs.extend(config.otel_extra_labels.iter().map(|(k, v)| KeyValue::new(k.clone(), v.clone())));
    for (key, value) in [
        ("daytona_organization_id", &config.organization_id),
        ("daytona_region_id", &config.region_id),
        ("daytona_snapshot", &config.sandbox_snapshot),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            attrs.push(KeyValue::new(key, v.to_string()));
        }
    }
    attrs
}

pub fn resource(config: &Config, version: &str) -> Resource {
    // Empty builder: none of the SDK's detectors (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES),
    // so the attributes are exactly the documented ones.
    Resource::builder_empty().with_attributes(attributes(config, version, hostname().as_deref())).build()
}

/// The host name as Go's `os.Hostname` finds it on Linux.
fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::Value;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Config {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        crate::config::from_env(&vars).unwrap()
    }

    fn as_map(attrs: Vec<KeyValue>) -> Vec<(String, String)> {
        attrs.into_iter().map(|kv| (kv.key.to_string(), kv.value.to_string())).collect()
    }

    #[test]
    fn the_documented_attributes_in_order() {
        let c = config(&[
            ("DAYTONA_SANDBOX_ID", "sb-1"),
            ("DAYTONA_SANDBOX_OTEL_EXTRA_LABELS", "team=a,tier=gold"),
            ("DAYTONA_ORGANIZATION_ID", "org"),
            ("DAYTONA_REGION_ID", "eu"),
            ("DAYTONA_SANDBOX_SNAPSHOT", "snap:1"),
        ]);
        let got = as_map(attributes(&c, "v1.2.3", Some("box")));
        let want: Vec<(String, String)> = [
            ("service.name", "sandbox-sb-1"),
            ("service.version", "v1.2.3"),
            ("service.instance.id", "box"),
            ("deployment.environment.name", ""),
            ("team", "a"),
            ("tier", "gold"),
            ("daytona_organization_id", "org"),
            ("daytona_region_id", "eu"),
            ("daytona_snapshot", "snap:1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn empty_daytona_ids_are_left_out_and_no_hostname_is_unknown() {
        let c = config(&[("DAYTONA_SANDBOX_ID", "x"), ("DAYTONA_REGION_ID", "")]);
        let got = as_map(attributes(&c, "v", None));
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[2], ("service.instance.id".into(), "unknown".into()));
        assert!(!got.iter().any(|(k, _)| k.starts_with("daytona_")));
    }

    #[test]
    fn an_extra_label_may_override_a_standard_attribute() {
        let c = config(&[
            ("DAYTONA_SANDBOX_ID", "x"),
            ("DAYTONA_SANDBOX_OTEL_EXTRA_LABELS", "service.version=9"),
        ]);
        let r = Resource::builder_empty().with_attributes(attributes(&c, "v1", Some("h"))).build();
        assert_eq!(r.get(&"service.version".into()), Some(Value::from("9")));
        assert_eq!(r.get(&"service.name".into()), Some(Value::from("sandbox-x")));
        assert_eq!(r.get(&"deployment.environment.name".into()), Some(Value::from("")));
    }
}
