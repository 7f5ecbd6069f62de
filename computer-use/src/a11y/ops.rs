//! Acting on one node: focus, invoke an action, set a value (spec computer-use.md §7.4).

use super::bus::{ACCESSIBLE, ACTION, COMPONENT, Calls, EDITABLE_TEXT, VALUE};
use super::error::{A11yError, CallError};
use super::node::NodeRef;
use super::walk::action_names;

pub async fn focus(calls: &Calls, node: &NodeRef) -> Result<(), A11yError> {
    let ok: bool =
        calls.call(node, COMPONENT, "GrabFocus", &()).await.map_err(|e| e.into_a11y(&node.id()))?;
    if !ok {
        return Err(A11yError::NotSupported(String::new()));
    }
    Ok(())
}

/// Which action an invoke means: the first one when none is named, else the first whose name
/// matches case-insensitively.
pub fn pick_action(names: &[String], wanted: Option<&str>) -> Result<usize, A11yError> {
    let wanted = wanted.map(str::trim).unwrap_or_default();
    if names.is_empty() {
        return Err(A11yError::NotSupported("node has no actions".into()));
    }
    if wanted.is_empty() {
        return Ok(0);
    }
    names.iter().position(|n| n.eq_ignore_ascii_case(wanted)).ok_or_else(|| {
        A11yError::NotSupported(format!("no action {wanted:?} (node has {})", names.join(", ")))
    })
}

pub async fn invoke(calls: &Calls, node: &NodeRef, action: Option<&str>) -> Result<(), A11yError> {
    let id = node.id();
    // Asked first: reading `NActions` of a node without the interface is not refused cleanly
    // (at-spi2-atk answers a generic `Failed: Get failed`).
    let interfaces: Vec<String> =
        calls.call(node, ACCESSIBLE, "GetInterfaces", &()).await.map_err(|e| e.into_a11y(&id))?;
    let names = if !interfaces.iter().any(|i| i == ACTION) {
        Vec::new()
    } else {
        match action_names(calls, node).await {
            Ok(names) => names,
            Err(CallError::NotSupported(_)) => Vec::new(),
            Err(e) => return Err(e.into_a11y(&id)),
        }
    };
    let index = pick_action(&names, action)?;
    let index = i32::try_from(index).map_err(|e| A11yError::Internal(e.to_string()))?;
    let done: bool = calls.call(node, ACTION, "DoAction", &(index,)).await.map_err(|e| e.into_a11y(&id))?;
    if !done {
        return Err(A11yError::NotSupported(format!("DoAction({index}) returned false")));
    }
    Ok(())
}

pub async fn set_value(calls: &Calls, node: &NodeRef, value: &str) -> Result<(), A11yError> {
    let id = node.id();
    let interfaces: Vec<String> =
        calls.call(node, ACCESSIBLE, "GetInterfaces", &()).await.map_err(|e| e.into_a11y(&id))?;
    if interfaces.iter().any(|i| i == EDITABLE_TEXT) {
        // The returned bool is not reliable across toolkits; success is the call going through.
        let _: bool = calls
            .call(node, EDITABLE_TEXT, "SetTextContents", &(value,))
            .await
            .map_err(|e| e.into_a11y(&id))?;
        return Ok(());
    }
    let number: f64 = value.trim().parse().map_err(|e| {
        A11yError::NotSupported(format!("node has no EditableText and {value:?} is not numeric: {e}"))
    })?;
    calls
        .set_property(node, VALUE, "CurrentValue", zbus::zvariant::Value::F64(number))
        .await
        .map_err(|e| e.into_a11y(&id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_picked_by_name_or_first() {
        let names = vec!["click".to_owned(), "Press".to_owned()];
        assert_eq!(pick_action(&names, None).unwrap(), 0);
        assert_eq!(pick_action(&names, Some("")).unwrap(), 0);
        assert_eq!(pick_action(&names, Some("press")).unwrap(), 1);
        assert_eq!(pick_action(&names, Some("CLICK")).unwrap(), 0);
        let e = pick_action(&names, Some("explode")).unwrap_err();
        assert!(e.to_string().starts_with("action not supported by node: no action \"explode\""), "{e}");
        let e = pick_action(&[], None).unwrap_err();
        assert!(e.to_string().starts_with("action not supported by node"), "{e}");
    }

    #[tokio::test]
    async fn invoke_picks_by_machine_name_whatever_the_locale() {
        use crate::a11y::fake::{FakeNode, TestBus, node, serve};
        use std::time::Duration;

        let bus = TestBus::start();
        let button = FakeNode::new("push button", "OK").action("click", "Klicken").action("press", "Drücken");
        let done = button.done.clone();
        let (_conn, app) = serve(&bus, vec![("1", button), ("2", FakeNode::new("label", "x"))]).await;
        let calls = bus.calls(Duration::from_secs(2)).await;
        let ok = node(&app, "1");

        invoke(&calls, &ok, Some("press")).await.unwrap();
        invoke(&calls, &ok, Some("CLICK")).await.unwrap();
        invoke(&calls, &ok, None).await.unwrap();
        assert_eq!(*done.lock().unwrap(), [1, 0, 0]);
        // The localized label is not a name.
        let e = invoke(&calls, &ok, Some("Klicken")).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "action not supported by node: no action \"Klicken\" (node has click, press)"
        );
        // A node without the Action interface has no actions: a 400, although reading its
        // NActions fails with a generic error.
        let e = invoke(&calls, &node(&app, "2"), None).await.unwrap_err();
        assert_eq!(e, A11yError::NotSupported("node has no actions".into()));
        assert_eq!(done.lock().unwrap().len(), 3);
    }
}
