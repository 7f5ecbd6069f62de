//! Charts reported by the matplotlib wrapper: artifact lines in the output, decoded into the
//! fixed `Chart` schema the clients validate.
//!
//! The wrapper prints one line `dtn_artifact_k39fd2:{"type":"chart","value":{…}}` per figure.
//! Such lines are taken out of the result. Each value is decoded into [`Chart`]; a value with a
//! field of the wrong JSON type is dropped whole, because the Python client validates the same
//! types strictly and one bad chart would make the whole code-run answer unreadable. Re-encoding
//! from the typed schema drops unknown keys.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

/// Prefix of an artifact line.
pub const MARKER: &str = "dtn_artifact_k39fd2:";

/// One chart. Empty strings and lists are omitted; `type` and `elements` are always present.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct Chart {
    #[serde(rename = "type", default, serialize_with = "string_or_empty")]
    #[schema(value_type = String, required = true)]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "blank")]
    pub title: Option<String>,
    /// The figure as a base64 PNG.
    #[serde(default, skip_serializing_if = "blank")]
    pub png: Option<String>,
    #[serde(default, skip_serializing_if = "blank")]
    pub x_label: Option<String>,
    #[serde(default, skip_serializing_if = "blank")]
    pub y_label: Option<String>,
    #[serde(default, skip_serializing_if = "none_or_empty")]
    pub x_ticks: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "none_or_empty")]
    pub y_ticks: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "none_or_empty")]
    pub x_tick_labels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "none_or_empty")]
    pub y_tick_labels: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "blank")]
    pub x_scale: Option<String>,
    #[serde(default, skip_serializing_if = "blank")]
    pub y_scale: Option<String>,
    /// `null` when the chart has none (e.g. type `unknown`).
    #[serde(default)]
    #[schema(required = true)]
    pub elements: Option<Vec<ChartElement>>,
}

/// One element: a series (line, scatter), a bar, a pie wedge, a box, or a sub-chart of a
/// composite chart (which keeps only the fields below).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct ChartElement {
    #[serde(default, skip_serializing_if = "blank")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "blank")]
    pub group: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "blank")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "blank")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "blank")]
    pub png: Option<String>,
    #[serde(default, skip_serializing_if = "blank")]
    pub x_label: Option<String>,
    #[serde(default, skip_serializing_if = "blank")]
    pub y_label: Option<String>,
    /// `[[x, y], …]` of a line or scatter series.
    #[serde(default, skip_serializing_if = "none_or_empty")]
    pub points: Option<Vec<Vec<f64>>>,
    /// A bar's value. Always a string: the client types it so; numbers are turned into text.
    #[serde(default, deserialize_with = "string_or_number", skip_serializing_if = "blank")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub angle: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub radius: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_quartile: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub third_quartile: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// A box's outliers: `[]` when it has none (absent for other elements).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outliers: Option<Vec<f64>>,
}

fn blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(str::is_empty)
}

fn none_or_empty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_none_or(Vec::is_empty)
}

fn string_or_empty<S: Serializer>(s: &Option<String>, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_deref().unwrap_or(""))
}

/// A string stays a string and a number becomes its decimal text (`3`, `2.5`); anything else is
/// a type error, which drops the chart.
fn string_or_number<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(Option::<Value>::deserialize(de)?.map(|v| match v {
        Value::Text(s) => s,
        Value::Number(n) => n.to_string(),
    }))
}

/// The chart in one artifact payload (the text after the marker), or `None` when the payload is
/// not JSON, not a chart, or does not fit the schema.
pub fn parse_artifact(payload: &str) -> Option<Chart> {
    #[derive(Deserialize)]
    struct Artifact {
        #[serde(rename = "type")]
        kind: Option<String>,
        value: Option<serde_json::Value>,
    }
    let artifact: Artifact = serde_json::from_str(payload).ok()?;
    if artifact.kind.as_deref() != Some("chart") {
        return None;
    }
    serde_json::from_value(artifact.value?).ok()
}

/// Splits the output into the text users see and the charts. Lines are split on `\n` and
/// re-joined with `\n`, so the rest of the output keeps its shape. A marker in the middle of a
/// line (the program printed text without a newline before `show()`) still counts: the text
/// before it is kept as a line.
pub fn extract(output: String) -> (String, Vec<Chart>) {
    if !output.contains(MARKER) {
        return (output, Vec::new());
    }
    let mut kept: Vec<&str> = Vec::new();
    let mut charts = Vec::new();
    for line in output.split('\n') {
        let Some(at) = line.find(MARKER) else {
            kept.push(line);
            continue;
        };
        if at > 0 {
            kept.push(&line[..at]);
        }
        let payload = line[at + MARKER.len()..].trim();
        if let Some(chart) = (!payload.is_empty()).then(|| parse_artifact(payload)).flatten() {
            charts.push(chart);
        }
    }
    (kept.join("\n"), charts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(value: serde_json::Value) -> String {
        format!("{MARKER}{}", json!({"type": "chart", "value": value}))
    }

    #[test]
    fn marker_lines_are_removed_and_shape_kept() {
        let out = format!("a\n{}\nb\n", line(json!({"type": "line", "elements": []})));
        let (text, charts) = extract(out);
        assert_eq!(text, "a\nb\n");
        assert_eq!(charts.len(), 1);
        assert_eq!(charts[0].kind.as_deref(), Some("line"));
        assert_eq!(extract("no charts\n".into()), ("no charts\n".into(), vec![]));
    }

    #[test]
    fn marker_mid_line_keeps_the_text_before_it() {
        let out = format!("partial{}\nnext", line(json!({"type": "pie"})));
        let (text, charts) = extract(out);
        assert_eq!(text, "partial\nnext");
        assert_eq!(charts.len(), 1);
    }

    #[test]
    fn bad_payloads_are_dropped_but_removed() {
        let out = format!(
            "{MARKER}\n{MARKER} not json\n{MARKER}{}\n{MARKER}{}\nend",
            json!({"type": "other", "value": {"type": "line"}}),
            json!({"type": "chart", "value": {"type": "line", "title": 5}})
        );
        assert_eq!(extract(out), ("end".into(), vec![]));
    }

    #[test]
    fn typed_schema_drops_unknown_keys_and_omits_empty() {
        let chart = parse_artifact(
            &json!({"type": "chart", "value": {
                "type": "pie", "title": "", "x_ticks": [], "extra": {"a": 1},
                "elements": [{"label": "A", "angle": 90, "radius": 1.0, "autopct": "%1.1f%%",
                              "min": null}]
            }})
            .to_string(),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&chart).unwrap(),
            json!({"type": "pie", "elements": [{"label": "A", "angle": 90.0, "radius": 1.0}]})
        );
        let unknown = parse_artifact(r#"{"type":"chart","value":{"type":"unknown","png":"AA=="}}"#).unwrap();
        assert_eq!(
            serde_json::to_value(&unknown).unwrap(),
            json!({"type": "unknown", "png": "AA==", "elements": null})
        );
    }

    #[test]
    fn bar_values_become_strings_and_other_types_drop_the_chart() {
        let bar = |v: serde_json::Value| {
            parse_artifact(
                &json!({"type": "chart", "value": {"type": "bar", "elements": [
                {"label": "a", "group": "g", "value": v}]}})
                .to_string(),
            )
        };
        let value = |c: Option<Chart>| c.unwrap().elements.unwrap()[0].value.clone();
        assert_eq!(value(bar(json!(3))), Some("3".into()));
        assert_eq!(value(bar(json!(2.5))), Some("2.5".into()));
        assert_eq!(value(bar(json!("7"))), Some("7".into()));
        assert_eq!(value(bar(json!(null))), None);
        assert!(bar(json!(true)).is_none());
        assert!(bar(json!([1])).is_none());
    }

    #[test]
    fn wrong_types_drop_the_chart() {
        for bad in [
            json!({"type": "line", "elements": [{"points": [["2024-01-01", 1]]}]}),
            json!({"type": "line", "x_ticks": ["2024-01-01"]}),
            json!({"type": "line", "x_tick_labels": [1]}),
            json!({"type": 1}),
            json!({"type": "box_and_whisker", "elements": [{"median": "x"}]}),
            json!({"type": "line", "elements": {"label": "x"}}),
            json!("a string"),
        ] {
            let payload = json!({"type": "chart", "value": bad}).to_string();
            assert!(parse_artifact(&payload).is_none(), "{payload}");
        }
    }

    #[test]
    fn a_box_without_outliers_has_an_empty_list() {
        let chart = parse_artifact(
            &json!({"type": "chart", "value": {"type": "box_and_whisker", "elements": [
                {"label": "A", "min": 1, "median": 2, "max": 3, "outliers": []},
                {"label": "B", "min": 1, "median": 2, "max": 9, "outliers": [9.5]},
                {"label": "C", "min": 1, "median": 2, "max": 3}]}})
            .to_string(),
        )
        .unwrap();
        let v = serde_json::to_value(&chart).unwrap();
        assert_eq!(v["elements"][0]["outliers"], json!([]));
        assert_eq!(v["elements"][1]["outliers"], json!([9.5]));
        assert!(v["elements"][2].get("outliers").is_none(), "{v}");
    }

    #[test]
    fn composite_children_keep_the_element_subset() {
        let chart = parse_artifact(
            &json!({"type": "chart", "value": {"type": "composite_chart", "title": null,
                "elements": [{"type": "line", "title": "t", "x_label": "x", "x_ticks": [1, 2],
                              "elements": [{"label": "s", "points": [[1, 2]]}]}]}})
            .to_string(),
        )
        .unwrap();
        assert_eq!(
            serde_json::to_value(&chart).unwrap(),
            json!({"type": "composite_chart",
                   "elements": [{"type": "line", "title": "t", "x_label": "x"}]})
        );
    }
}
