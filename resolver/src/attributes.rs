//! The one rule for adding values to Twilio attributes (a JSON object in a string), used by the
//! pre-event answer (a conversation's `avatar`) and by participant enrichment (`customer_id`,
//! `display_name`, `avatar`): values already there win, other keys are kept, and attributes that
//! hold something other than an object are never overwritten, since that would lose data
//! someone put there. Empty or `null` attributes count as `{}`.

use serde_json::{Map, Value};

/// Why attributes cannot be added to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the attributes are not a JSON object")]
pub struct NotAnObject;

/// `existing` with every `(key, value)` added whose key is not there yet; `None` when nothing
/// would change (so no update needs to be sent).
///
/// # Errors
/// [`NotAnObject`] when `existing` is not empty, `null` or a JSON object.
pub fn merge(existing: &str, entries: &[(&str, &str)]) -> Result<Option<String>, NotAnObject> {
    let mut object = match existing.trim() {
        "" | "null" => Map::new(),
        text => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => object,
            _ => return Err(NotAnObject),
        },
    };
    let mut changed = false;
    for (key, value) in entries {
        if !object.contains_key(*key) {
            object.insert((*key).to_owned(), Value::String((*value).to_owned()));
            changed = true;
        }
    }
    Ok(changed.then(|| Value::Object(object).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(merged: Result<Option<String>, NotAnObject>) -> Value {
        serde_json::from_str(&merged.unwrap().unwrap()).unwrap()
    }

    #[test]
    fn empty_and_null_count_as_an_empty_object() {
        for empty in ["", "  ", "null"] {
            assert_eq!(
                merge(empty, &[("avatar", "a")]),
                Ok(Some(r#"{"avatar":"a"}"#.to_owned())),
                "{empty:?}"
            );
        }
    }

    #[test]
    fn existing_values_win_and_other_keys_stay() {
        let merged = merge(
            r#"{"display_name":"Bob (VIP)","team":"blue"}"#,
            &[("customer_id", "7"), ("display_name", "Bobby")],
        );
        assert_eq!(
            parsed(merged),
            serde_json::json!({"display_name": "Bob (VIP)", "team": "blue", "customer_id": "7"})
        );
    }

    #[test]
    fn nothing_new_means_no_update() {
        assert_eq!(merge(r#"{"avatar":"mine"}"#, &[("avatar", "a")]), Ok(None));
        assert_eq!(merge("{}", &[]), Ok(None));
    }

    #[test]
    fn anything_but_an_object_is_left_alone() {
        for other in ["[1,2]", "\"text\"", "42", "true", "{broken", "not json"] {
            assert_eq!(
                merge(other, &[("avatar", "a")]),
                Err(NotAnObject),
                "{other}"
            );
        }
    }
}
