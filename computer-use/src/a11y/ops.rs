//! Acting on one node: focus, invoke an action, set a value (spec computer-use.md §7.4).

use super::bus::{ACCESSIBLE, ACTION, COMPONENT, Calls, EDITABLE_TEXT, VALUE};
use super::error::{A11yError, CallError};
use super::node::{Bounds, NodeRef, STATE_DEFUNCT, STATE_SHOWING, STATE_VISIBLE, States};
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

/// The centre of `bounds`, rounded towards the top left; `None` for empty bounds.
pub fn centre(bounds: Bounds) -> Option<(i32, i32)> {
    if bounds.width <= 0 || bounds.height <= 0 {
        return None;
    }
    // Saturating: nonsense extents from an application must not overflow.
    Some((bounds.x.saturating_add(bounds.width / 2), bounds.y.saturating_add(bounds.height / 2)))
}

/// Where an element-targeted input acts: the centre of the node's current extents in screen
/// coordinates. A node that is gone (its object or its application) is `NodeGone`; one that is
/// not showing, not visible, or without bounds is `NotVisible`.
pub async fn on_screen_centre(calls: &Calls, node: &NodeRef) -> Result<(i32, i32), A11yError> {
    let id = node.id();
    let gone_or = |e: CallError| match e {
        CallError::NotFound(d) => A11yError::NodeGone(format!("{id}: {d}")),
        other => other.into_a11y(&id),
    };
    let (states, extents) = tokio::join!(
        calls.call::<_, Vec<u32>>(node, ACCESSIBLE, "GetState", &()),
        calls.call::<_, (i32, i32, i32, i32)>(node, COMPONENT, "GetExtents", &(0u32,))
    );
    let states = States::from_words(&states.map_err(gone_or)?);
    if states.has(STATE_DEFUNCT) {
        return Err(A11yError::NodeGone(format!("{id}: the node is defunct")));
    }
    if !states.has(STATE_SHOWING) || !states.has(STATE_VISIBLE) {
        return Err(A11yError::NotVisible(format!("{id} is not showing on screen")));
    }
    let (x, y, width, height) = match extents {
        Ok(e) => e,
        Err(CallError::NotSupported(_)) => {
            return Err(A11yError::NotVisible(format!("{id} has no screen bounds (no Component interface)")));
        }
        Err(e) => return Err(gone_or(e)),
    };
    let bounds = Bounds { x, y, width, height };
    centre(bounds).ok_or_else(|| A11yError::NotVisible(format!("{id} has empty bounds {width}x{height}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centres() {
        let b = |x, y, width, height| Bounds { x, y, width, height };
        assert_eq!(centre(b(10, 20, 100, 50)), Some((60, 45)));
        assert_eq!(centre(b(0, 0, 1, 1)), Some((0, 0)));
        assert_eq!(centre(b(5, 5, 3, 3)), Some((6, 6)));
        assert_eq!(centre(b(-100, -10, 40, 20)), Some((-80, 0)));
        // Nonsense extents far off screen saturate instead of overflowing.
        assert_eq!(centre(b(i32::MAX - 10, 0, 100, 2)), Some((i32::MAX, 1)));
        assert_eq!(centre(b(10, 10, 0, 5)), None);
        assert_eq!(centre(b(10, 10, 5, -1)), None);
    }

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

    #[tokio::test]
    async fn element_targets_must_exist_and_be_on_screen() {
        use crate::a11y::fake::{FakeNode, TestBus, node, serve};
        use std::time::Duration;

        let bus = TestBus::start();
        let on_screen = 1 << STATE_SHOWING | 1 << STATE_VISIBLE;
        let hidden =
            FakeNode { states: vec![1 << STATE_VISIBLE, 0], ..FakeNode::new("push button", "Hidden") };
        // Showing, but without the Component interface: no bounds to act on.
        let flat = FakeNode { states: vec![on_screen, 0], ..FakeNode::new("label", "Flat") };
        let dead =
            FakeNode { states: vec![on_screen | 1 << STATE_DEFUNCT, 0], ..FakeNode::new("label", "Dead") };
        let (conn, app) = serve(&bus, vec![("1", hidden), ("2", flat), ("3", dead)]).await;
        let calls = bus.calls(Duration::from_secs(2)).await;

        let e = on_screen_centre(&calls, &node(&app, "1")).await.unwrap_err();
        assert!(matches!(e, A11yError::NotVisible(_)), "{e}");
        assert!(e.to_string().ends_with("is not showing on screen"), "{e}");
        let e = on_screen_centre(&calls, &node(&app, "2")).await.unwrap_err();
        assert!(matches!(e, A11yError::NotVisible(_)) && e.to_string().contains("no screen bounds"), "{e}");
        let e = on_screen_centre(&calls, &node(&app, "3")).await.unwrap_err();
        assert!(matches!(e, A11yError::NodeGone(_)), "{e}");
        // An object the application does not have, and an application that left.
        let e = on_screen_centre(&calls, &node(&app, "99")).await.unwrap_err();
        assert!(matches!(e, A11yError::NodeGone(_)), "{e}");
        drop(conn);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let e = on_screen_centre(&calls, &node(&app, "1")).await.unwrap_err();
        assert!(matches!(e, A11yError::NodeGone(_)), "{e}");
        assert!(e.to_string().starts_with("accessibility node is gone: "), "{e}");
    }
}
