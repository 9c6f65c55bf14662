//! Fixes to the shapes of upstream's types: objects declared as `items`, a duplicated token
//! schema, untyped datetimes, and token strings not marked as credentials.

use serde_json::{json, Value};

use crate::walk::for_each_schema;
use crate::{JsonPath, SpecError};

/// Upstream declares `access_token_data` and `refresh_token_data` as `type: object` with
/// `items: {$ref: …}`. `items` means nothing on an object, so progenitor makes them untyped maps;
/// what upstream means is "this field is the referenced object". Replace such a schema by its
/// `items` schema.
pub fn inline_items_on_object(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    let mut changed = Vec::new();
    for_each_schema(doc, &mut |path, schema| {
        let is_object = schema.get("type").and_then(Value::as_str) == Some("object");
        let has_properties = schema.get("properties").is_some();
        if let (true, false, Some(items)) = (is_object, has_properties, schema.get("items")) {
            if items.is_object() {
                *schema = items.clone();
                changed.push(path.clone());
            }
        }
        Ok(())
    })?;
    Ok(changed)
}

/// Upstream's `RefreshTokenSchema` has the same shape as `AccessTokenSchema` and even carries its
/// title (`"title": "AccessTokenSchema"`); the prose calls both `TokenSchema`. Where a component's
/// title names another component of the same shape, merge both into one schema named by their
/// common suffix (`TokenSchema`) and point every `$ref` at it. Where the shapes differ, only the
/// copied title is corrected.
pub fn merge_duplicate_schemas(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    let schemas_path = JsonPath::root().key("components").key("schemas");
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return Ok(Vec::new());
    };
    let shape = |schema: &Value| {
        let mut schema = schema.clone();
        if let Some(object) = schema.as_object_mut() {
            object.remove("title");
        }
        schema
    };
    let copied_titles: Vec<(String, String)> = schemas
        .iter()
        .filter_map(|(name, schema)| {
            let title = schema.get("title")?.as_str()?;
            (title != name && schemas.contains_key(title))
                .then(|| (name.clone(), title.to_string()))
        })
        .collect();
    let mut changed = Vec::new();
    let mut renames = Vec::new();
    for (copy, original) in copied_titles {
        if shape(&schemas[&copy]) == shape(&schemas[&original]) {
            let merged = common_suffix_name(&original, &copy);
            let mut schema = schemas
                .shift_remove(&original)
                .expect("the original was listed above");
            schemas.shift_remove(&copy);
            schema["title"] = json!(merged);
            schemas.insert(merged.clone(), schema);
            renames.push((original, merged.clone()));
            renames.push((copy, merged.clone()));
            changed.push(schemas_path.key(&merged));
        } else {
            schemas[&copy]["title"] = json!(copy);
            changed.push(schemas_path.key(&copy).key("title"));
        }
    }
    for (from, to) in renames {
        rewrite_refs(
            doc,
            &format!("#/components/schemas/{from}"),
            &format!("#/components/schemas/{to}"),
        );
    }
    Ok(changed)
}

/// `AccessTokenSchema` + `RefreshTokenSchema` → `TokenSchema`: the longest common suffix made of
/// whole PascalCase words; the first name where they share none.
fn common_suffix_name(a: &str, b: &str) -> String {
    let words = |s: &str| {
        let mut words: Vec<String> = Vec::new();
        for c in s.chars() {
            match words.last_mut() {
                Some(word) if !c.is_uppercase() => word.push(c),
                _ => words.push(c.to_string()),
            }
        }
        words
    };
    let (wa, wb) = (words(a), words(b));
    let common = wa
        .iter()
        .rev()
        .zip(wb.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    if common == 0 {
        return a.to_string();
    }
    wa[wa.len() - common..].concat()
}

/// Points every `$ref` equal to `from` at `to`, anywhere in `value`.
pub(crate) fn rewrite_refs(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                if key == "$ref" && child.as_str() == Some(from) {
                    *child = json!(to);
                } else {
                    rewrite_refs(child, from, to);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_refs(v, from, to)),
        _ => {}
    }
}

/// Upstream types `expires` as a bare string while the prose says datetime. Add
/// `format: date-time`; the generator maps that format to `crate::expiry::Expiry`, which accepts
/// every form the service emits and means UTC when no offset is given.
pub fn type_expires_as_datetime(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    set_format_on_properties(doc, "expires", "date-time")
}

/// Upstream declares the token strings as plain strings, so generated types would hold them in
/// `String` and print them in `Debug`. They are credentials: mark them `format: password`, which
/// the generator maps to `crate::secret::SecretToken` (redacted `Debug`, no `Display`).
pub fn mark_tokens_secret(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    set_format_on_properties(doc, "token", "password")
}

fn set_format_on_properties(
    doc: &mut Value,
    property: &str,
    format: &str,
) -> Result<Vec<JsonPath>, SpecError> {
    let mut changed = Vec::new();
    for_each_schema(doc, &mut |path, schema| {
        if let Some(field) = schema.pointer_mut(&format!("/properties/{property}")) {
            let is_plain_string = field.get("type").and_then(Value::as_str) == Some("string")
                && field.get("format").is_none();
            if is_plain_string {
                field["format"] = json!(format);
                changed.push(path.key("properties").key(property));
            }
        }
        Ok(())
    })?;
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quirks::testing::assert_fixes;

    #[test]
    fn items_on_an_object_becomes_the_referenced_schema() {
        let mut doc = json!({ "components": { "schemas": { "R": { "properties": {
            "data": { "items": { "$ref": "#/components/schemas/T" }, "type": "object", "title": "data" },
            "list": { "items": { "type": "string" }, "type": "array" }
        }}}}});
        assert_fixes(
            inline_items_on_object,
            &mut doc,
            &["$.components.schemas.R.properties.data"],
        );
        assert_eq!(
            doc.pointer("/components/schemas/R/properties/data")
                .unwrap(),
            &json!({ "$ref": "#/components/schemas/T" })
        );
        assert_eq!(
            doc.pointer("/components/schemas/R/properties/list/type")
                .unwrap(),
            "array"
        );
    }

    #[test]
    fn same_shape_schemas_with_a_copied_title_merge_into_one() {
        let token = |title: &str| json!({ "properties": { "token": { "type": "string" } }, "type": "object", "title": title });
        let mut doc = json!({
            "paths": { "/x": { "post": { "responses": { "200": { "content": { "application/json": { "schema": {
                "properties": {
                    "a": { "$ref": "#/components/schemas/AccessTokenSchema" },
                    "r": { "$ref": "#/components/schemas/RefreshTokenSchema" }
                }
            }}}}}}}},
            "components": { "schemas": {
                "AccessTokenSchema": token("AccessTokenSchema"),
                "RefreshTokenSchema": token("AccessTokenSchema")
            }}
        });
        assert_fixes(
            merge_duplicate_schemas,
            &mut doc,
            &["$.components.schemas.TokenSchema"],
        );
        let schemas = doc
            .pointer("/components/schemas")
            .unwrap()
            .as_object()
            .unwrap();
        assert_eq!(schemas.keys().collect::<Vec<_>>(), ["TokenSchema"]);
        assert_eq!(schemas["TokenSchema"]["title"], "TokenSchema");
        let text = doc.to_string();
        assert_eq!(
            text.matches("#/components/schemas/TokenSchema").count(),
            2,
            "{text}"
        );
    }

    #[test]
    fn different_shapes_only_get_their_copied_title_fixed() {
        let mut doc = json!({ "components": { "schemas": {
            "AccessTokenSchema": { "properties": { "token": { "type": "string" } }, "title": "AccessTokenSchema" },
            "RefreshTokenSchema": { "properties": { "token": { "type": "string" }, "scope": { "type": "string" } }, "title": "AccessTokenSchema" }
        }}});
        assert_fixes(
            merge_duplicate_schemas,
            &mut doc,
            &["$.components.schemas.RefreshTokenSchema.title"],
        );
        assert_eq!(
            doc.pointer("/components/schemas/RefreshTokenSchema/title")
                .unwrap(),
            "RefreshTokenSchema"
        );
        assert!(doc
            .pointer("/components/schemas/AccessTokenSchema")
            .is_some());
    }

    #[test]
    fn common_suffix_name_takes_whole_words() {
        assert_eq!(
            common_suffix_name("AccessTokenSchema", "RefreshTokenSchema"),
            "TokenSchema"
        );
        assert_eq!(common_suffix_name("Alpha", "Beta"), "Alpha");
    }

    #[test]
    fn expires_and_token_get_their_formats_once() {
        let mut doc = json!({ "components": { "schemas": { "T": { "properties": {
            "expires": { "type": "string", "title": "expires" },
            "token": { "type": "string" },
            "other": { "type": "string" }
        }}}}});
        assert_fixes(
            type_expires_as_datetime,
            &mut doc,
            &["$.components.schemas.T.properties.expires"],
        );
        assert_fixes(
            mark_tokens_secret,
            &mut doc,
            &["$.components.schemas.T.properties.token"],
        );
        let properties = doc.pointer("/components/schemas/T/properties").unwrap();
        assert_eq!(properties["expires"]["format"], "date-time");
        assert_eq!(properties["token"]["format"], "password");
        assert!(properties["other"].get("format").is_none());
    }
}
