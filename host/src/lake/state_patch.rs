//! Connector state as a change to the previous commit's state, so a large state that changes a
//! little per commit (a drain's window of frame ids) is not copied into every manifest.
//!
//! A patch describes an object key by key: a value set, a key removed, a nested object patched, or
//! an array that slid (items dropped from the front, items pushed at the back) — the shape of every
//! window or queue. Applying the patch to the previous state gives exactly the new state.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The change of a JSON object from one commit to the next.
pub type StatePatch = BTreeMap<String, Change>;

/// What happened to one key of an object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The key now holds this value.
    Set(Value),
    /// The key is gone.
    Remove,
    /// The array lost `drop` items at the front and gained `push` at the back.
    Slide { drop: usize, push: Vec<Value> },
    /// The key holds an object that changed like this.
    Patch(StatePatch),
}

/// Why a patch does not apply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    #[error("the previous state is not a JSON object, so a patch cannot apply to it")]
    NotAnObject,
    #[error("key `{key}` is not an array of at least {drop} items, so it cannot slide")]
    NotSlidable { key: String, drop: usize },
    #[error("key `{key}` is not an object, so it cannot be patched")]
    NotPatchable { key: String },
}

/// The patch turning `old` into `new`, when both are objects and the patch is clearly smaller
/// than `new` itself (otherwise the state is stored whole).
pub fn diff(old: &Value, new: &Value) -> Option<StatePatch> {
    let (Value::Object(old), Value::Object(new)) = (old, new) else {
        return None;
    };
    let patch = diff_objects(old, new);
    let patch_len = serde_json::to_vec(&patch).map_or(usize::MAX, |v| v.len());
    let full_len = serde_json::to_vec(new).map_or(0, |v| v.len());
    (patch_len.saturating_mul(2) < full_len).then_some(patch)
}

fn diff_objects(old: &Map<String, Value>, new: &Map<String, Value>) -> StatePatch {
    let mut patch = StatePatch::new();
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        patch.insert(key.clone(), Change::Remove);
    }
    for (key, value) in new {
        let change = match (old.get(key), value) {
            (Some(before), after) if before == after => continue,
            (Some(Value::Object(before)), Value::Object(after)) => {
                Change::Patch(diff_objects(before, after))
            }
            (Some(Value::Array(before)), Value::Array(after)) => match slide(before, after) {
                Some((drop, push)) => Change::Slide {
                    drop,
                    push: push.to_vec(),
                },
                None => Change::Set(value.clone()),
            },
            _ => Change::Set(value.clone()),
        };
        patch.insert(key.clone(), change);
    }
    patch
}

/// `(drop, pushed)` when `after` is `before` without its first `drop` items, followed by `pushed`.
/// The smallest such `drop` is found among the first 64 offsets where `before` holds `after[0]`.
fn slide<'a>(before: &[Value], after: &'a [Value]) -> Option<(usize, &'a [Value])> {
    let Some(first) = after.first() else {
        return Some((before.len(), after));
    };
    // Bounded, so arrays of repeated values cannot make a commit quadratic.
    let kept_from = (0..before.len())
        .filter(|&drop| &before[drop] == first)
        .take(64)
        .find(|&drop| {
            let kept = &before[drop..];
            kept.len() <= after.len() && after[..kept.len()] == *kept
        });
    let drop = kept_from.unwrap_or(before.len());
    // Nothing kept: sliding would only restate the array.
    (drop < before.len()).then(|| (drop, &after[before.len() - drop..]))
}

/// `old` changed by `patch`.
pub fn apply(old: &Value, patch: &StatePatch) -> Result<Value, PatchError> {
    let Value::Object(old) = old else {
        return Err(PatchError::NotAnObject);
    };
    let mut object = old.clone();
    apply_to(&mut object, patch)?;
    Ok(Value::Object(object))
}

fn apply_to(object: &mut Map<String, Value>, patch: &StatePatch) -> Result<(), PatchError> {
    for (key, change) in patch {
        match change {
            Change::Set(value) => {
                object.insert(key.clone(), value.clone());
            }
            Change::Remove => {
                object.remove(key);
            }
            Change::Slide { drop, push } => match object.get_mut(key) {
                Some(Value::Array(items)) if items.len() >= *drop => {
                    items.drain(..*drop);
                    items.extend(push.iter().cloned());
                }
                _ => {
                    return Err(PatchError::NotSlidable {
                        key: key.clone(),
                        drop: *drop,
                    });
                }
            },
            Change::Patch(inner) => match object.get_mut(key) {
                Some(Value::Object(nested)) => apply_to(nested, inner)?,
                _ => return Err(PatchError::NotPatchable { key: key.clone() }),
            },
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn window(from: usize, to: usize) -> Value {
        let ids: Vec<String> = (from..to).map(|i| format!("frame-{i:06}")).collect();
        json!({ "recent_frame_ids": ids, "version": 1 })
    }

    #[test]
    fn a_sliding_window_is_stored_as_what_it_gained_and_lost() {
        let (old, new) = (window(0, 2048), window(40, 2088));
        let patch = diff(&old, &new).expect("a small change is a patch");
        assert_eq!(
            patch["recent_frame_ids"],
            Change::Slide {
                drop: 40,
                push: (2048..2088)
                    .map(|i| json!(format!("frame-{i:06}")))
                    .collect()
            }
        );
        assert!(!patch.contains_key("version"));
        assert_eq!(apply(&old, &patch).unwrap(), new);
    }

    #[test]
    fn nested_objects_removed_keys_and_replaced_arrays_round_trip() {
        let big: Vec<u32> = (0..500).collect();
        let old =
            json!({ "a": { "b": 1, "c": [1, 2, 3], "big": big }, "gone": true, "list": [5, 6] });
        let new = json!({ "a": { "b": 2, "c": [9], "big": big }, "list": [6, 7, 8], "new": "x" });
        let patch = diff(&old, &new).expect("patch");
        assert_eq!(patch["gone"], Change::Remove);
        assert_eq!(apply(&old, &patch).unwrap(), new);
    }

    #[test]
    fn small_or_unrelated_states_are_stored_whole() {
        assert!(diff(&json!({ "cursor": 1 }), &json!({ "cursor": 2 })).is_none());
        assert!(diff(&json!([1, 2]), &json!([2, 3])).is_none());
        assert!(diff(&window(0, 100), &window(5000, 5100)).is_none());
    }

    #[test]
    fn a_patch_for_another_shape_is_refused() {
        let patch = StatePatch::from([(
            "ids".to_owned(),
            Change::Slide {
                drop: 3,
                push: vec![],
            },
        )]);
        assert!(matches!(
            apply(&json!({ "ids": [1] }), &patch),
            Err(PatchError::NotSlidable { .. })
        ));
        assert!(matches!(
            apply(&json!(null), &patch),
            Err(PatchError::NotAnObject)
        ));
    }

    #[test]
    fn random_windows_round_trip() {
        let mut rng = crate::test_rng::Rng::new(7);
        let mut old = window(0, 300);
        for _ in 0..200 {
            let start = rng.below(400);
            let new = window(start, start + 250 + rng.below(100));
            if let Some(patch) = diff(&old, &new) {
                assert_eq!(apply(&old, &patch).unwrap(), new);
            }
            old = new;
        }
    }
}
