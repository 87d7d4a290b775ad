//! Credential files — service-account keys, `authorized_user` files, OAuth client secrets, the
//! token cache — checked field by field before serde reads them, so that a message names the
//! file and the field, never a value: a file given by mistake can hold a private key or a
//! token in any field, and serde's own messages quote what they found
//! (`invalid type: string "…", expected u64`).

use serde_json::Value;

/// What a field must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Text,
    /// Text that is an email address (an account: messages and `auth status` name it).
    Email,
    /// A whole number, at least 0.
    Count,
    /// A list of strings.
    TextList,
}

/// One field of a credential file.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub shape: Shape,
    pub required: bool,
}

pub const fn required(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        required: true,
    }
}

pub const fn optional(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        shape,
        required: false,
    }
}

/// The `type`s of Google's credential files, which a message may name.
pub const KNOWN_TYPES: &[&str] = &[
    "service_account",
    "authorized_user",
    "external_account",
    "external_account_authorized_user",
    "impersonated_service_account",
    "gdch_service_account",
];

/// A field's value described without quoting it: `a number`, `an object`, ...
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Checks that `object` holds `fields`, each of its shape; `prefix` names the object in a
/// message (`installed.`). The problem names the field, never its value.
pub fn check(object: &Value, prefix: &str, fields: &[Field]) -> Result<(), String> {
    let Some(map) = object.as_object() else {
        return Err(match prefix {
            "" => format!("it is {}, not a JSON object", kind(object)),
            _ => format!(
                "its `{}` is {}, not an object",
                prefix.trim_end_matches('.'),
                kind(object)
            ),
        });
    };
    for field in fields {
        let name = field.name;
        match (map.get(name), field.required) {
            (None, true) => return Err(format!("missing field `{prefix}{name}`")),
            (None | Some(Value::Null), false) => {}
            (Some(value), _) => {
                shape_of(value, field.shape).map_err(|why| format!("its `{prefix}{name}` {why}"))?
            }
        }
    }
    Ok(())
}

fn shape_of(value: &Value, shape: Shape) -> Result<(), String> {
    let not = |expected: &str| Err(format!("is {}, not {expected}", kind(value)));
    match (shape, value) {
        (Shape::Text, Value::String(_)) => Ok(()),
        (Shape::Email, Value::String(text)) if is_email(text) => Ok(()),
        (Shape::Email, Value::String(text)) => Err(format!(
            "is not an email address ({} chars)",
            text.chars().count()
        )),
        (Shape::Count, Value::Number(n)) if n.is_u64() => Ok(()),
        (Shape::Count, Value::Number(_)) => Err("is not a whole number".to_owned()),
        (Shape::TextList, Value::Array(items)) => match items.iter().find(|v| !v.is_string()) {
            None => Ok(()),
            Some(item) => Err(format!("holds {}, not only strings", kind(item))),
        },
        (Shape::Text | Shape::Email, _) => not("a string"),
        (Shape::Count, _) => not("a number"),
        (Shape::TextList, _) => not("a list of strings"),
    }
}

/// An address as accounts have them: `name@domain`, no space or control character.
fn is_email(text: &str) -> bool {
    let Some((name, domain)) = text.split_once('@') else {
        return false;
    };
    !name.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && text.len() <= 254
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The `type` of a credentials file, for a message: named when it is one of Google's,
/// otherwise only its length.
pub fn type_for_message(kind: &str) -> String {
    match KNOWN_TYPES.contains(&kind) {
        true => format!("type {kind:?}"),
        false => format!("an unknown type ({} chars)", kind.chars().count()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIELDS: &[Field] = &[
        required("a", Shape::Text),
        optional("b", Shape::Count),
        optional("c", Shape::Email),
        optional("d", Shape::TextList),
    ];

    #[test]
    fn problems_name_the_field_not_the_value() {
        assert_eq!(check(&json!({"a": "x"}), "", FIELDS), Ok(()));
        assert_eq!(
            check(&json!({"a": "x", "b": null}), "", FIELDS),
            Ok(()),
            "null is an absent optional field"
        );
        let refused = [
            (json!({}), "missing field `a`"),
            (
                json!({"a": 12345678901234567890u64}),
                "its `a` is a number, not a string",
            ),
            (
                json!({"a": "x", "b": "secret-value"}),
                "its `b` is a string, not a number",
            ),
            (json!({"a": "x", "b": 1.5}), "its `b` is not a whole number"),
            (
                json!({"a": "x", "c": "ya29.secret"}),
                "its `c` is not an email address (11 chars)",
            ),
            (
                json!({"a": "x", "d": ["ok", {"ya29.name": 1}]}),
                "its `d` holds an object, not only strings",
            ),
            (json!(["ya29.secret"]), "it is a list, not a JSON object"),
        ];
        for (value, message) in refused {
            assert_eq!(
                check(&value, "", FIELDS),
                Err(message.to_owned()),
                "{value}"
            );
        }
        assert_eq!(
            check(&json!("x"), "installed.", FIELDS),
            Err("its `installed` is a string, not an object".to_owned())
        );
        assert_eq!(
            check(&json!({}), "installed.", FIELDS),
            Err("missing field `installed.a`".to_owned())
        );
    }

    #[test]
    fn only_known_types_are_named() {
        assert_eq!(
            type_for_message("external_account"),
            "type \"external_account\""
        );
        assert_eq!(
            type_for_message("-----BEGIN PRIVATE KEY-----\nMII"),
            "an unknown type (31 chars)"
        );
    }
}
