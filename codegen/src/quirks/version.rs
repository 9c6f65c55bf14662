//! OpenAPI 3.1 → 3.0: upstream declares 3.1 (FastAPI does), progenitor 0.15 reads only 3.0.x.
//!
//! Each 3.1 construct with an exact 3.0 form has a translation of its own, reported by path like
//! any other fix; `downgrade_openapi_31` runs after them, refuses by JSON path whatever is left
//! that 3.0 cannot say, and only then declares the document 3.0.3. The translations touch
//! nothing in a document that is already 3.0.

use serde_json::{json, Map, Value};

use crate::walk::for_each_schema;
use crate::{JsonPath, SpecError};

/// Schema keywords that exist only in OpenAPI 3.1 (JSON Schema 2020-12), have no 3.0 form, and
/// that progenitor, reading 3.0, would silently ignore or misread. (`const` and `examples` are
/// translated before this list is checked; they stay here in case a translation left one.)
const SCHEMA_KEYWORDS_31: &[&str] = &[
    "const",
    "examples",
    "prefixItems",
    "$defs",
    "$schema",
    "$id",
    "$anchor",
    "if",
    "then",
    "else",
    "dependentSchemas",
    "dependentRequired",
    "unevaluatedProperties",
    "unevaluatedItems",
    "patternProperties",
    "propertyNames",
    "contains",
    "minContains",
    "maxContains",
    "contentEncoding",
    "contentMediaType",
];

fn is_31(doc: &Value) -> bool {
    doc.get("openapi")
        .and_then(Value::as_str)
        .is_some_and(|v| v.starts_with("3.1."))
}

/// Runs `translate` on every schema of a 3.1 document; collects the paths it reports.
fn translate_schemas(
    doc: &mut Value,
    mut translate: impl FnMut(&JsonPath, &mut Map<String, Value>) -> Result<Option<JsonPath>, SpecError>,
) -> Result<Vec<JsonPath>, SpecError> {
    let mut changed = Vec::new();
    if !is_31(doc) {
        return Ok(changed);
    }
    for_each_schema(doc, &mut |path, schema| {
        if let Some(object) = schema.as_object_mut() {
            changed.extend(translate(path, object)?);
        }
        Ok(())
    })?;
    Ok(changed)
}

fn no_30_form(path: JsonPath, what: &str) -> SpecError {
    SpecError::new(
        path,
        format!("{what} has no OpenAPI 3.0 form, and progenitor reads 3.0 only; change the document or generate this part by hand"),
    )
}

/// 3.1 writes an optional value as `type: [X, "null"]`; 3.0 says `type: X, nullable: true`.
/// Several non-null types become an `anyOf` of one schema per type, which is what the array
/// means. Refused: a type array with only `"null"` (3.0 cannot type a value that is always null).
pub fn translate_type_arrays(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    translate_schemas(doc, |path, schema| {
        let Some(Value::Array(types)) = schema.get("type") else {
            return Ok(None);
        };
        let at = path.key("type");
        let mut kinds = Vec::new();
        for kind in types {
            let Some(kind) = kind.as_str() else {
                return Err(SpecError::new(at, "a type array must hold type names"));
            };
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        let nullable = kinds.contains(&"null");
        let others: Vec<String> = kinds
            .iter()
            .filter(|k| **k != "null")
            .map(ToString::to_string)
            .collect();
        match others.as_slice() {
            [] => return Err(no_30_form(at, "a type array that allows only null")),
            [only] => {
                schema.insert("type".into(), json!(only));
            }
            several => {
                if schema.contains_key("anyOf") {
                    return Err(no_30_form(at, "a type array beside an `anyOf`"));
                }
                schema.remove("type");
                let options: Vec<Value> = several.iter().map(|k| json!({ "type": k })).collect();
                schema.insert("anyOf".into(), Value::Array(options));
            }
        }
        if nullable {
            schema.insert("nullable".into(), json!(true));
        }
        Ok(Some(at))
    })
}

/// FastAPI (pydantic v2) writes `Optional[X]` as `anyOf: [X, {type: "null"}]` (or `oneOf`);
/// 3.0 says X with `nullable: true`. An inline X is merged into the schema; a `$ref` X becomes
/// `allOf: [X]`, because 3.0 ignores keywords beside a `$ref` (progenitor reads `nullable` beside
/// an `allOf`). With several non-null options, the null one is dropped and the union made
/// nullable. Refused: a union of nothing but null.
pub fn translate_null_unions(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    translate_schemas(doc, |path, schema| {
        for combiner in ["anyOf", "oneOf"] {
            let Some(Value::Array(options)) = schema.get(combiner) else {
                continue;
            };
            let is_null = |option: &Value| option.get("type") == Some(&json!("null"));
            if !options.iter().any(is_null) {
                continue;
            }
            let at = path.key(combiner);
            let mut rest: Vec<Value> = options.iter().filter(|o| !is_null(o)).cloned().collect();
            match rest.len() {
                0 => return Err(no_30_form(at, "a union that allows only null")),
                1 => {
                    schema.remove(combiner);
                    let only = rest.remove(0);
                    merge_or_wrap(schema, only);
                }
                _ => {
                    schema.insert(combiner.into(), Value::Array(rest));
                }
            }
            schema.insert("nullable".into(), json!(true));
            return Ok(Some(at));
        }
        Ok(None)
    })
}

/// Puts `only`'s keywords into `schema`, unless it is a `$ref` or shares a keyword with `schema`
/// (then `allOf: [only]`, which means the same).
fn merge_or_wrap(schema: &mut Map<String, Value>, only: Value) {
    let mergeable = only.as_object().filter(|object| {
        !object.contains_key("$ref") && object.keys().all(|k| !schema.contains_key(k))
    });
    match mergeable {
        Some(object) => schema.extend(object.clone()),
        None => match schema.get_mut("allOf").and_then(Value::as_array_mut) {
            Some(all_of) => all_of.push(only),
            None => {
                schema.insert("allOf".into(), json!([only]));
            }
        },
    }
}

/// 3.1's `const: V` is 3.0's `enum: [V]`. Refused: a `const` beside an `enum` that does not list
/// it (nothing would match; upstream meant something else).
pub fn translate_const(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    translate_schemas(doc, |path, schema| {
        let Some(value) = schema.remove("const") else {
            return Ok(None);
        };
        let at = path.key("const");
        if let Some(Value::Array(listed)) = schema.get("enum") {
            if !listed.contains(&value) {
                return Err(SpecError::new(
                    at,
                    "a `const` that its own `enum` does not list matches nothing",
                ));
            }
        }
        schema.insert("enum".into(), json!([value]));
        Ok(Some(at))
    })
}

/// 3.1 schemas list `examples: [..]`; 3.0 schemas have one `example`. The first becomes the
/// `example` (an existing `example` is kept); the list goes.
pub fn translate_examples(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    translate_schemas(doc, |path, schema| {
        let Some(examples) = schema.remove("examples") else {
            return Ok(None);
        };
        let at = path.key("examples");
        let Value::Array(examples) = examples else {
            return Err(SpecError::new(at, "schema `examples` must be an array"));
        };
        if let (false, Some(first)) = (schema.contains_key("example"), examples.into_iter().next())
        {
            schema.insert("example".into(), first);
        }
        Ok(Some(at))
    })
}

/// 3.1's numeric `exclusiveMinimum: N` is 3.0's `minimum: N, exclusiveMinimum: true` (same for
/// the maximum). Where an inclusive bound is also given, the stricter of the two is kept.
pub fn translate_exclusive_bounds(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    translate_schemas(doc, |path, schema| {
        let mut changed = None;
        for (exclusive, inclusive, stricter) in [
            ("exclusiveMinimum", "minimum", std::cmp::Ordering::Greater),
            ("exclusiveMaximum", "maximum", std::cmp::Ordering::Less),
        ] {
            let Some(bound) = schema.get(exclusive).and_then(Value::as_f64) else {
                continue;
            };
            let keep_inclusive = schema
                .get(inclusive)
                .and_then(Value::as_f64)
                .is_some_and(|other| other.partial_cmp(&bound) == Some(stricter));
            if keep_inclusive {
                schema.remove(exclusive);
            } else {
                let value = schema.remove(exclusive).expect("read above");
                schema.insert(inclusive.into(), value);
                schema.insert(exclusive.into(), json!(true));
            }
            changed = Some(path.key(exclusive));
        }
        Ok(changed)
    })
}

/// In 3.1 the keywords beside a `$ref` apply too (pydantic v2 writes a field's `description` there);
/// 3.0 ignores them. `allOf: [{$ref}]` with the same keywords beside it means what 3.1 meant.
pub fn translate_ref_siblings(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    translate_schemas(doc, |path, schema| {
        if !schema.contains_key("$ref") || schema.len() == 1 {
            return Ok(None);
        }
        let reference = schema.remove("$ref").expect("checked above");
        merge_or_wrap(schema, json!({ "$ref": reference }));
        Ok(Some(path.key("$ref")))
    })
}

/// OpenAPI 3.1 members that describe nothing a client sends or reads, dropped (each reported by
/// path, and listed by the change report): `webhooks` (calls the *server* makes to subscribers),
/// `jsonSchemaDialect` (which JSON Schema dialect the document uses: the translations above
/// already read it as 2020-12, FastAPI's), `components.pathItems` that no `$ref` uses, and the
/// schema annotations `$schema`, `$comment`, `contentMediaType` and `contentEncoding` (a string
/// stays a string). A `components.pathItems` entry that `paths` uses stays, and is refused below.
pub fn drop_client_irrelevant_31(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    let mut changed = Vec::new();
    if !is_31(doc) {
        return Ok(changed);
    }
    let root = JsonPath::root();
    if let Some(Value::Object(webhooks)) = doc.get("webhooks") {
        changed.extend(webhooks.keys().map(|name| root.key("webhooks").key(name)));
    }
    let Some(object) = doc.as_object_mut() else {
        return Ok(changed);
    };
    if let Some(webhooks) = object.shift_remove("webhooks") {
        if webhooks.as_object().is_none_or(|w| w.is_empty()) {
            changed.push(root.key("webhooks"));
        }
    }
    if object.shift_remove("jsonSchemaDialect").is_some() {
        changed.push(root.key("jsonSchemaDialect"));
    }
    let text = serde_json::to_string(&object).expect("a Value always serializes");
    if let Some(Value::Object(components)) = object.get_mut("components") {
        if let Some(Value::Object(items)) = components.get_mut("pathItems") {
            let unused: Vec<String> = items
                .keys()
                .filter(|name| !text.contains(&format!("\"#/components/pathItems/{name}\"")))
                .cloned()
                .collect();
            for name in unused {
                items.shift_remove(&name);
                changed.push(root.key("components").key("pathItems").key(&name));
            }
            if items.is_empty() {
                components.shift_remove("pathItems");
            }
        }
    }
    changed.extend(translate_schemas(doc, |path, schema| {
        let mut dropped = None;
        for key in ["$schema", "$comment", "contentMediaType", "contentEncoding"] {
            if schema.shift_remove(key).is_some() {
                dropped = Some(path.key(key));
            }
        }
        Ok(dropped)
    })?);
    Ok(changed)
}

/// Upstream declares `openapi: 3.1.0`, while progenitor 0.15 rejects anything but 3.0.x. After
/// the translations above, check that no 3.1-only construct is left (a 3.0 reader would misread
/// it, so it fails the build by path), then declare 3.0.3.
pub fn downgrade_openapi_31(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    let root = JsonPath::root();
    let version = doc
        .get("openapi")
        .and_then(Value::as_str)
        .ok_or_else(|| SpecError::new(root.key("openapi"), "missing the `openapi` version string"))?
        .to_string();
    if version.starts_with("3.0.") {
        return Ok(Vec::new());
    }
    if !is_31(doc) {
        return Err(SpecError::new(
            root.key("openapi"),
            format!("OpenAPI {version} is not supported: only 3.0.x and 3.1.x (downgraded) are"),
        ));
    }
    for key in ["webhooks", "jsonSchemaDialect"] {
        if doc.get(key).is_some() {
            return Err(no_30_form(root.key(key), &format!("`{key}` (OpenAPI 3.1)")));
        }
    }
    if doc.pointer("/components/pathItems").is_some() {
        return Err(no_30_form(
            root.key("components").key("pathItems"),
            "`components.pathItems` (OpenAPI 3.1)",
        ));
    }
    for_each_schema(doc, &mut |path, schema| check_schema_is_30(path, schema))?;
    doc["openapi"] = json!("3.0.3");
    Ok(vec![root.key("openapi")])
}

fn check_schema_is_30(path: &JsonPath, schema: &mut Value) -> Result<(), SpecError> {
    let Some(object) = schema.as_object() else {
        return Err(SpecError::new(
            path.clone(),
            "a schema must be a JSON object",
        ));
    };
    let refuse = |key: &str, what: &str| Err(no_30_form(path.key(key), what));
    match object.get("type") {
        Some(Value::Array(_)) => return refuse("type", "a type array"),
        Some(Value::String(t)) if t == "null" => {
            return refuse("type", "`type: \"null\"` outside a union")
        }
        _ => {}
    }
    if let Some(key) = SCHEMA_KEYWORDS_31.iter().find(|k| object.contains_key(**k)) {
        return refuse(key, &format!("the JSON Schema 2020-12 keyword `{key}`"));
    }
    for key in ["exclusiveMinimum", "exclusiveMaximum"] {
        if object.get(key).is_some_and(Value::is_number) {
            return refuse(key, &format!("a numeric `{key}`"));
        }
    }
    if object.contains_key("$ref") && object.len() > 1 {
        return refuse("$ref", "a `$ref` with sibling keywords (3.0 ignores them)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quirks::testing::assert_fixes;

    /// A 3.1 document with one component schema `A`.
    fn with_schema(schema: Value) -> Value {
        json!({ "openapi": "3.1.0", "components": { "schemas": { "A": schema } } })
    }

    fn schema_a(doc: &Value) -> &Value {
        &doc["components"]["schemas"]["A"]
    }

    /// `translate` on a schema `A` with the properties `before` must report exactly the places
    /// `changed`, leave them as `after`, and find nothing more on a second run.
    fn assert_translates(
        translate: fn(&mut Value) -> Result<Vec<JsonPath>, SpecError>,
        before: Value,
        changed: &[&str],
        after: Value,
    ) {
        let mut doc = with_schema(json!({ "properties": before }));
        assert_fixes(translate, &mut doc, changed);
        assert_eq!(schema_a(&doc)["properties"], after);
    }

    #[test]
    fn type_arrays_with_null_become_nullable() {
        assert_translates(
            translate_type_arrays,
            json!({
                "a": { "type": ["string", "null"], "title": "A" },
                "b": { "type": ["integer"] },
                "c": { "type": ["string", "integer", "null"] }
            }),
            &[
                "$.components.schemas.A.properties.a.type",
                "$.components.schemas.A.properties.b.type",
                "$.components.schemas.A.properties.c.type",
            ],
            json!({
                "a": { "type": "string", "title": "A", "nullable": true },
                "b": { "type": "integer" },
                "c": { "anyOf": [{ "type": "string" }, { "type": "integer" }], "nullable": true }
            }),
        );
    }

    #[test]
    fn a_type_array_of_only_null_is_refused_by_path() {
        let mut doc = with_schema(json!({ "type": ["null"] }));
        let error = translate_type_arrays(&mut doc).unwrap_err();
        assert_eq!(error.path.to_string(), "$.components.schemas.A.type");
        assert!(error.message.contains("no OpenAPI 3.0 form"), "{error}");
    }

    #[test]
    fn fastapi_optionals_become_nullable_with_refs_through_all_of() {
        assert_translates(
            translate_null_unions,
            json!({
                "s": { "anyOf": [{ "type": "string" }, { "type": "null" }], "title": "S" },
                "r": { "anyOf": [{ "$ref": "#/components/schemas/T" }, { "type": "null" }] },
                "o": { "oneOf": [{ "type": "null" }, { "type": "integer" }, { "type": "string" }] }
            }),
            &[
                "$.components.schemas.A.properties.s.anyOf",
                "$.components.schemas.A.properties.r.anyOf",
                "$.components.schemas.A.properties.o.oneOf",
            ],
            json!({
                "s": { "title": "S", "type": "string", "nullable": true },
                "r": { "allOf": [{ "$ref": "#/components/schemas/T" }], "nullable": true },
                "o": { "oneOf": [{ "type": "integer" }, { "type": "string" }], "nullable": true }
            }),
        );
    }

    #[test]
    fn a_union_of_only_null_is_refused_by_path() {
        let mut doc = with_schema(json!({ "anyOf": [{ "type": "null" }] }));
        let error = translate_null_unions(&mut doc).unwrap_err();
        assert_eq!(error.path.to_string(), "$.components.schemas.A.anyOf");
    }

    #[test]
    fn const_becomes_a_one_value_enum() {
        let mut doc = with_schema(json!({ "type": "string", "const": "bearer" }));
        assert_fixes(translate_const, &mut doc, &["$.components.schemas.A.const"]);
        assert_eq!(
            schema_a(&doc),
            &json!({ "type": "string", "enum": ["bearer"] })
        );
        let mut contradiction = with_schema(json!({ "const": 1, "enum": [2] }));
        assert!(translate_const(&mut contradiction).is_err());
    }

    #[test]
    fn schema_examples_become_one_example() {
        let mut doc = with_schema(json!({ "type": "string", "examples": ["a", "b"] }));
        assert_fixes(
            translate_examples,
            &mut doc,
            &["$.components.schemas.A.examples"],
        );
        assert_eq!(schema_a(&doc), &json!({ "type": "string", "example": "a" }));
        let mut both = with_schema(json!({ "example": "x", "examples": ["a"] }));
        translate_examples(&mut both).unwrap();
        assert_eq!(schema_a(&both), &json!({ "example": "x" }));
    }

    #[test]
    fn numeric_exclusive_bounds_take_the_boolean_form() {
        assert_translates(
            translate_exclusive_bounds,
            json!({
                "a": { "type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 10 },
                "b": { "type": "integer", "exclusiveMinimum": 0, "minimum": 5 }
            }),
            &[
                "$.components.schemas.A.properties.a.exclusiveMaximum",
                "$.components.schemas.A.properties.b.exclusiveMinimum",
            ],
            json!({
                "a": { "type": "integer", "minimum": 0, "exclusiveMinimum": true, "maximum": 10, "exclusiveMaximum": true },
                "b": { "type": "integer", "minimum": 5 }
            }),
        );
    }

    #[test]
    fn translations_leave_a_30_document_alone() {
        let schema = json!({ "type": ["string", "null"], "const": 1, "examples": [1], "exclusiveMinimum": 1, "items": { "$ref": "#/x", "title": "x" } });
        let mut doc = with_schema(schema.clone());
        doc["openapi"] = json!("3.0.3");
        for translate in [
            translate_type_arrays,
            translate_null_unions,
            translate_const,
            translate_examples,
            translate_exclusive_bounds,
            translate_ref_siblings,
        ] {
            assert!(translate(&mut doc).unwrap().is_empty());
        }
        assert_eq!(schema_a(&doc), &schema);
    }

    #[test]
    fn keywords_beside_a_ref_move_beside_an_all_of() {
        assert_translates(
            translate_ref_siblings,
            json!({
                "a": { "$ref": "#/components/schemas/T", "description": "the token" },
                "b": { "$ref": "#/components/schemas/T" }
            }),
            &["$.components.schemas.A.properties.a.$ref"],
            json!({
                "a": { "description": "the token", "allOf": [{ "$ref": "#/components/schemas/T" }] },
                "b": { "$ref": "#/components/schemas/T" }
            }),
        );
    }

    #[test]
    fn downgrade_rewrites_31_without_31_constructs() {
        let mut doc = with_schema(json!({ "type": "string" }));
        assert_fixes(downgrade_openapi_31, &mut doc, &["$.openapi"]);
        assert_eq!(doc["openapi"], "3.0.3");
    }

    #[test]
    fn downgrade_refuses_what_30_cannot_say_naming_its_path() {
        let cases = [
            (
                json!({ "type": "null" }),
                "$.components.schemas.A.type",
                "`type: \"null\"`",
            ),
            (
                json!({ "items": { "$ref": "#/x", "description": "d" } }),
                "$.components.schemas.A.items.$ref",
                "sibling",
            ),
            (
                json!({ "type": "array", "prefixItems": [{ "type": "string" }] }),
                "$.components.schemas.A.prefixItems",
                "`prefixItems`",
            ),
            (
                json!({ "if": { "type": "string" } }),
                "$.components.schemas.A.if",
                "`if`",
            ),
        ];
        for (schema, path, what) in cases {
            let mut doc = with_schema(schema);
            let error = downgrade_openapi_31(&mut doc).unwrap_err();
            assert_eq!(error.path.to_string(), path);
            assert!(
                error.message.contains(what) && error.message.contains("no OpenAPI 3.0 form"),
                "{}",
                error.message
            );
            assert_eq!(doc["openapi"], "3.1.0", "nothing is changed on failure");
        }
    }

    #[test]
    fn members_meaningless_to_a_client_are_dropped_and_reported() {
        let mut doc = json!({
            "openapi": "3.1.0",
            "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
            "webhooks": { "tokenRevoked": { "post": { "responses": {} } }, "userDeleted": {} },
            "paths": { "/a": { "$ref": "#/components/pathItems/Used" } },
            "components": {
                "pathItems": { "Used": {}, "Unused": {} },
                "schemas": { "A": { "type": "string", "$comment": "c", "contentEncoding": "base64" } }
            }
        });
        assert_fixes(
            drop_client_irrelevant_31,
            &mut doc,
            &[
                "$.webhooks.tokenRevoked",
                "$.webhooks.userDeleted",
                "$.jsonSchemaDialect",
                "$.components.pathItems.Unused",
                "$.components.schemas.A.contentEncoding",
            ],
        );
        assert!(doc.get("webhooks").is_none() && doc.get("jsonSchemaDialect").is_none());
        assert_eq!(schema_a(&doc), &json!({ "type": "string" }));
        assert!(
            doc.pointer("/components/pathItems/Used").is_some(),
            "used by paths"
        );
    }

    #[test]
    fn downgrade_refuses_31_document_features_and_other_versions() {
        let mut webhooks = json!({ "openapi": "3.1.0", "webhooks": {} });
        assert_eq!(
            downgrade_openapi_31(&mut webhooks)
                .unwrap_err()
                .path
                .to_string(),
            "$.webhooks"
        );
        let mut swagger = json!({ "openapi": "2.0" });
        assert!(downgrade_openapi_31(&mut swagger)
            .unwrap_err()
            .message
            .contains("not supported"));
        let mut missing = json!({});
        assert_eq!(
            downgrade_openapi_31(&mut missing)
                .unwrap_err()
                .path
                .to_string(),
            "$.openapi"
        );
    }
}
