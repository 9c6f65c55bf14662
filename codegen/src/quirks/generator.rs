//! Adaptations to what progenitor 0.15 and typify 0.8 can generate: valid OpenAPI that they
//! would turn into code that does not compile (a rustc error in generated code is the one
//! failure a spec update must never produce), or into types stricter than a client should be.
//!
//! Each rewrites the document into a form that means the same to this client, reported by path
//! like any other fix; finding nothing to adapt is the usual case. What they read in progenitor
//! and typify (paths in `~/.cargo/registry/src/*/`):
//!
//! - `progenitor-impl/src/method.rs`: a query parameter whose type is `Option<T>` is unwrapped,
//!   a header or path parameter is not (`value.to_string()` on an `Option<&str>`); cookie
//!   parameters are refused; only `application/json` (with parameters) bodies are typed, any
//!   other media type is a raw byte stream, and a JSON media type with `encoding` asserts.
//! - `typify-impl/src/convert.rs`: `format: uuid` is `::uuid::Uuid`, a `pattern` needs
//!   `::regress`, neither of which this crate depends on (`date` is chrono's `NaiveDate`,
//!   `ip`/`ipv4`/`ipv6` std's, `date-time` the crate's `Expiry`: those build); a string with
//!   `minLength`/`maxLength` becomes a validating newtype; a string `enum` becomes a Rust enum of
//!   exactly the listed values; `additionalProperties: false` becomes `deny_unknown_fields`;
//!   `allOf` is merged by typify's own rules, which the hand-written layer's contract cannot read.
//!
//! What a keyword removed here said is kept beside the schema under [`RELAXED`], so that the
//! change report still sees enum values, patterns and lengths.

use serde_json::{json, Map, Value};

use crate::walk::{
    for_each_schema, for_each_schema_under, operations, parameter_sites, request_roots,
    response_roots,
};
use crate::{JsonPath, SpecError};

/// The extension under which a schema keeps the keywords an adaptation removed from it
/// (`{"enum": [..], "pattern": "..", "format": "uuid"}`): typify ignores `x-` members, the
/// change report reads them.
pub const RELAXED: &str = "x-genlogs-relaxed";

/// String formats typify maps to a crate this one does not depend on (`typify-impl`
/// `convert_string`): generated as plain strings instead. The value is still sent and read
/// unchanged; only its parsing into the foreign type is left to the caller.
const FORMATS_WITHOUT_DEPENDENCY: &[&str] = &["uuid"];

/// The string constraints typify turns into a validating newtype.
const STRING_CONSTRAINTS: &[&str] = &["minLength", "maxLength", "pattern"];

/// Moves `key` of `schema` under [`RELAXED`]; whether it was there.
fn relax(schema: &mut Map<String, Value>, key: &str) -> bool {
    let Some(value) = schema.shift_remove(key) else {
        return false;
    };
    let relaxed = schema.entry(RELAXED).or_insert_with(|| json!({}));
    if let Some(relaxed) = relaxed.as_object_mut() {
        relaxed.entry(key).or_insert(value);
    }
    true
}

/// The keyword `key` of `schema`, also where an adaptation moved it under [`RELAXED`].
pub fn keyword<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    schema
        .get(key)
        .or_else(|| schema.get(RELAXED).and_then(|r| r.get(key)))
}

/// Parameters as progenitor can send them. A parameter schema's `nullable` (3.1's
/// `anyOf: [X, {type: null}]`, FastAPI's `x: str | None = None`, in any position) is dropped:
/// a query string, header, path or cookie cannot carry a JSON null, absence is said by
/// `required: false`, and progenitor would give a header or path parameter the type
/// `Option<&str>` it cannot send. Its string constraints go too, so that the generated argument
/// stays a `&str` (the server validates; the change report still compares them). An optional
/// cookie parameter is removed (progenitor cannot send cookies; not sending an optional one is
/// allowed); a required one is refused by path.
pub fn fit_parameters(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    let mut changed = Vec::new();
    for site in parameter_sites(doc) {
        let Some(parameter) = site.get_mut(doc).and_then(Value::as_object_mut) else {
            continue;
        };
        if parameter.get("in").and_then(Value::as_str) == Some("cookie") {
            if parameter.get("required").and_then(Value::as_bool) == Some(true) {
                return Err(SpecError::new(
                    site,
                    "a required cookie parameter, which progenitor cannot send; generate this \
                     operation by hand, or ask upstream for a header or query parameter",
                ));
            }
            continue;
        }
        let Some(schema) = parameter.get_mut("schema").and_then(Value::as_object_mut) else {
            continue;
        };
        if schema.shift_remove("nullable").is_some() {
            changed.push(site.key("schema").key("nullable"));
        }
        let is_string = schema.get("type").and_then(Value::as_str) == Some("string");
        for key in STRING_CONSTRAINTS {
            if is_string && relax(schema, key) {
                changed.push(site.key("schema").key(key));
            }
        }
    }
    changed.extend(drop_optional_cookies(doc));
    Ok(changed)
}

/// Removes every optional cookie parameter (the required ones were refused before).
fn drop_optional_cookies(doc: &mut Value) -> Vec<JsonPath> {
    let mut changed = Vec::new();
    let mut lists: Vec<JsonPath> = Vec::new();
    let paths = doc.get("paths").and_then(Value::as_object);
    for (route, _) in paths.into_iter().flatten() {
        lists.push(JsonPath::root().key("paths").key(route).key("parameters"));
    }
    lists.extend(
        operations(doc)
            .into_iter()
            .map(|s| s.path.key("parameters")),
    );
    for list in lists {
        let Some(parameters) = list.get_mut(doc).and_then(Value::as_array_mut) else {
            continue;
        };
        let mut index = 0;
        parameters.retain(|parameter| {
            let cookie = parameter.get("in").and_then(Value::as_str) == Some("cookie");
            if cookie {
                changed.push(list.index(index));
            }
            index += 1;
            !cookie
        });
    }
    let components = JsonPath::root().key("components").key("parameters");
    if let Some(parameters) = components.get_mut(doc).and_then(Value::as_object_mut) {
        let cookies: Vec<String> = parameters
            .iter()
            .filter(|(_, p)| p.get("in").and_then(Value::as_str) == Some("cookie"))
            .map(|(name, _)| name.clone())
            .collect();
        for name in cookies {
            parameters.shift_remove(&name);
            changed.push(components.key(&name));
        }
    }
    changed
}

/// Strings typify would generate with a crate this one does not depend on: a format in
/// `FORMATS_WITHOUT_DEPENDENCY` (`uuid`) and any `pattern` (`regress`) become plain strings.
/// The service validates its own input, and a response is read, not validated.
pub fn strings_without_dependencies(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    let mut changed = Vec::new();
    for_each_schema(doc, &mut |path, schema| {
        let Some(object) = schema.as_object_mut() else {
            return Ok(());
        };
        let format = object.get("format").and_then(Value::as_str);
        if format.is_some_and(|f| FORMATS_WITHOUT_DEPENDENCY.contains(&f)) {
            relax(object, "format");
            changed.push(path.key("format"));
        }
        if object.get("pattern").is_some() && relax(object, "pattern") {
            changed.push(path.key("pattern"));
        }
        Ok(())
    })?;
    Ok(changed)
}

/// JSON bodies under a media type progenitor types: `application/json`. A `+json` type
/// (`application/problem+json`, `application/vnd.genlogs.v1+json`) or `text/json` is JSON, but
/// progenitor would hand the hand-written layer raw bytes where it expects the typed body; the
/// `encoding` map (meaningful for multipart and form bodies only) makes it assert. Such media
/// types are renamed `application/json` where the body has no `application/json` already.
pub fn json_media_types(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    let mut changed = Vec::new();
    let mut holders: Vec<JsonPath> = Vec::new();
    for site in operations(doc) {
        let operation = site.get(doc);
        holders.extend(
            crate::walk::bodies(&site, operation)
                .into_iter()
                .map(|(p, _)| p),
        );
    }
    for kind in ["requestBodies", "responses"] {
        let at = JsonPath::root().key("components").key(kind);
        let names = at.get(doc).and_then(Value::as_object);
        let names: Vec<String> = names
            .into_iter()
            .flatten()
            .map(|(n, _)| n.clone())
            .collect();
        holders.extend(names.iter().map(|name| at.key(name)));
    }
    for holder in holders {
        let at = holder.key("content");
        let Some(content) = at.get_mut(doc).and_then(Value::as_object_mut) else {
            continue;
        };
        let is_json = |media: &str| {
            let essence = media.split(';').next().unwrap_or("").trim();
            essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
        };
        if !content.keys().any(|m| m == "application/json") {
            if let Some(media) = content.keys().find(|m| is_json(m)).cloned() {
                rename_media_type(content, &media, "application/json").expect("found above");
                changed.push(at.key(&media));
            }
        }
        for (media, body) in content.iter_mut() {
            if !is_json(media) {
                continue;
            }
            let Some(body) = body.as_object_mut() else {
                continue;
            };
            if body.shift_remove("encoding").is_some() {
                changed.push(at.key(media).key("encoding"));
            }
        }
    }
    Ok(changed)
}

/// Moves the body a `content` object holds under the media type `from` to `to`, as its last
/// entry: the body's media type renamed. `None`, changing nothing, when `from` holds no body.
pub fn rename_media_type(content: &mut Map<String, Value>, from: &str, to: &str) -> Option<()> {
    let body = content.shift_remove(from)?;
    content.insert(to.to_string(), body);
    Some(())
}

/// Responses tolerate what the document does not list. typify generates a string `enum` as a
/// Rust enum of exactly its values, so a value the server starts sending before the document
/// lists it fails to decode the whole response (and a refresh whose token already rotated);
/// `additionalProperties: false` rejects any new field; length constraints reject a longer id.
/// In every schema that only responses use, those keywords move under [`RELAXED`] (the known
/// values are also listed in the `description`, so they appear in the generated docs): the value
/// is kept as it came, a plain `String` (or number) the user can read. Request types stay strict:
/// a schema that requests use too is copied for the requests (`{Name}InRequest`), so that the
/// responses keep the names the hand-written layer and users read.
pub fn open_response_schemas(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    let schemas = JsonPath::root().key("components").key("schemas");
    let sent = closure(doc, &request_roots(doc));
    let received = closure(doc, &response_roots(doc));
    let mut changed = Vec::new();
    // A shared schema with something to relax in its closure gets a strict copy for the requests;
    // the responses keep the name, which is what the hand-written layer and users read.
    let mut copies: Vec<(String, String)> = Vec::new();
    for name in received.iter().filter(|n| sent.contains(*n)) {
        let mut reach = closure(doc, &[schemas.key(name)]);
        reach.insert(name.clone());
        let relaxable = reach
            .iter()
            .any(|m| schemas.key(m).get(doc).is_some_and(has_relaxable));
        if relaxable {
            let mut copy = format!("{name}InRequest");
            while schemas.key(&copy).get(doc).is_some() {
                copy.push('_');
            }
            copies.push((name.clone(), copy));
        }
    }
    if let Some(components) = schemas.get_mut(doc).and_then(Value::as_object_mut) {
        for (name, copy) in &copies {
            let Some(mut schema) = components.get(name).cloned() else {
                continue;
            };
            if let Some(title) = schema.get_mut("title") {
                *title = json!(copy);
            }
            components.insert(copy.clone(), schema);
            changed.push(schemas.key(copy));
        }
    }
    let mut strict = request_roots(doc);
    strict.extend(
        sent.iter()
            .filter(|n| !received.contains(*n))
            .map(|n| schemas.key(n)),
    );
    strict.extend(copies.iter().map(|(_, copy)| schemas.key(copy)));
    for root in &strict {
        if let Some(schema) = root.get_mut(doc) {
            for (name, copy) in &copies {
                let [from, to] = [name, copy].map(|n| format!("#/components/schemas/{n}"));
                super::schemas::rewrite_refs(schema, &from, &to);
            }
        }
    }
    let mut open_roots = response_roots(doc);
    open_roots.extend(received.iter().map(|n| schemas.key(n)));
    for_each_schema_under(doc, &open_roots, &mut |path, schema| {
        if let Some(object) = schema.as_object_mut() {
            changed.extend(open(path, object));
        }
        Ok(())
    })?;
    Ok(changed)
}

/// Relaxes one schema (not its subschemas); returns the paths of what it removed.
fn open(path: &JsonPath, schema: &mut Map<String, Value>) -> Vec<JsonPath> {
    let mut changed = Vec::new();
    if let Some(Value::Array(values)) = schema.get("enum").cloned() {
        let known: Vec<&Value> = values.iter().filter(|v| !v.is_null()).collect();
        if !schema.contains_key("type") {
            let kinds: Vec<&str> = known.iter().map(|v| json_type(v)).collect();
            if let [first, rest @ ..] = kinds.as_slice() {
                if rest.iter().all(|k| k == first) {
                    schema.insert("type".into(), json!(first));
                }
            }
        }
        if known.len() < values.len() {
            schema.insert("nullable".into(), json!(true));
        }
        let list: Vec<String> = known.iter().map(|v| format!("`{}`", text(v))).collect();
        let note = format!(
            "Known values: {}; a value the document does not list yet is kept as it comes.",
            list.join(", ")
        );
        let description = match schema.get("description").and_then(Value::as_str) {
            Some(before) => format!("{before}\n\n{note}"),
            None => note,
        };
        schema.insert("description".into(), json!(description));
        relax(schema, "enum");
        changed.push(path.key("enum"));
    }
    if schema.get("additionalProperties") == Some(&json!(false)) {
        relax(schema, "additionalProperties");
        changed.push(path.key("additionalProperties"));
    }
    if schema.get("type").and_then(Value::as_str) == Some("string") {
        for key in STRING_CONSTRAINTS {
            if relax(schema, key) {
                changed.push(path.key(key));
            }
        }
    }
    changed
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "string",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::Bool(_) => "boolean",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), ToString::to_string)
}

/// Whether a schema (not following `$ref`s) has a keyword [`open`] would relax.
fn has_relaxable(schema: &Value) -> bool {
    let mut found = false;
    let mut copy = schema.clone();
    let _ = for_each_in(&mut copy, &mut |object| {
        found |= object.contains_key("enum")
            || object.get("additionalProperties") == Some(&json!(false))
            || (object.get("type").and_then(Value::as_str) == Some("string")
                && STRING_CONSTRAINTS.iter().any(|k| object.contains_key(*k)));
    });
    found
}

/// Calls `visit` on a schema and its subschemas (as [`crate::walk`] descends; `not` excluded:
/// relaxing inside a negation would make it stricter).
fn for_each_in(schema: &mut Value, visit: &mut dyn FnMut(&mut Map<String, Value>)) -> Option<()> {
    let object = schema.as_object_mut()?;
    visit(object);
    for (key, child) in object.iter_mut() {
        match (key.as_str(), child) {
            ("properties", Value::Object(properties)) => {
                properties.values_mut().for_each(|p| {
                    for_each_in(p, visit);
                });
            }
            ("items" | "additionalProperties", child @ Value::Object(_)) => {
                for_each_in(child, visit);
            }
            ("allOf" | "anyOf" | "oneOf", Value::Array(children)) => {
                children.iter_mut().for_each(|c| {
                    for_each_in(c, visit);
                });
            }
            _ => {}
        }
    }
    Some(())
}

/// The component schemas the schemas at `roots` use, through `$ref`s, transitively.
fn closure(doc: &Value, roots: &[JsonPath]) -> std::collections::BTreeSet<String> {
    let mut seen = std::collections::BTreeSet::new();
    let mut stack: Vec<&Value> = roots.iter().filter_map(|r| r.get(doc)).collect();
    while let Some(value) = stack.pop() {
        for name in refs(value) {
            if seen.insert(name.clone()) {
                if let Some(schema) = doc.pointer(&format!("/components/schemas/{name}")) {
                    stack.push(schema);
                }
            }
        }
    }
    seen
}

/// The component schema names `value` refers to, anywhere inside it.
fn refs(value: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match value {
        Value::Object(object) => {
            for (key, child) in object {
                match (key.as_str(), child.as_str()) {
                    ("$ref", Some(target)) => {
                        if let Some(name) = target.strip_prefix("#/components/schemas/") {
                            out.push(name.to_string());
                        }
                    }
                    _ => out.extend(refs(child)),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| out.extend(refs(v))),
        _ => {}
    }
    out
}

/// Composition flattened where the result is an object. Generators write inheritance as
/// `allOf: [{$ref: Base}, {properties: …}]` (several parts, nested, through `$ref`s); typify
/// merges it by rules of its own, and the hand-written layer's contract reads properties. Where
/// every part is an object schema (inline, a `$ref` to one, or itself such a composition), the
/// schema becomes the one object they describe together: the parts' properties in order, then
/// its own, `required` the union. The outer schema's own keywords (`title`, `description`,
/// `nullable`) stay; the parts' `additionalProperties` go (a part's `false` would forbid the
/// other parts' fields). A lone `allOf: [{$ref}]` (3.0's way to annotate a `$ref`) is kept. A
/// property two parts define differently is refused by path: both would apply, which no one
/// Rust type says.
pub fn flatten_all_of(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    let components = doc
        .pointer("/components/schemas")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut changed = Vec::new();
    for_each_schema(doc, &mut |path, schema| {
        let Some(object) = schema.as_object() else {
            return Ok(());
        };
        let parts = object.get("allOf").and_then(Value::as_array);
        let composes = parts.is_some_and(|p| p.len() > 1 || object.contains_key("properties"));
        if !composes {
            return Ok(());
        }
        if let Some(merged) = as_object(&components, path, schema, 0)? {
            *schema = Value::Object(merged);
            changed.push(path.key("allOf"));
        }
        Ok(())
    })?;
    Ok(changed)
}

/// The keywords of an `allOf` part without a `type` that still composes as an object.
const OBJECT_PART_KEYS: &[&str] = &[
    "properties",
    "required",
    "additionalProperties",
    "title",
    "description",
    "example",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// The object schema `schema` describes, flattened, or `None` when it is not one (then the
/// composition is left to typify).
fn as_object(
    components: &Value,
    path: &JsonPath,
    schema: &Value,
    depth: usize,
) -> Result<Option<Map<String, Value>>, SpecError> {
    let Some(object) = schema.as_object() else {
        return Ok(None);
    };
    if depth > 16 {
        return Ok(None);
    }
    if let Some(target) = object.get("$ref").and_then(Value::as_str) {
        let Some(name) = target.strip_prefix("#/components/schemas/") else {
            return Ok(None);
        };
        let Some(referenced) = components.get(name) else {
            return Ok(None);
        };
        let at = JsonPath::root().key("components").key("schemas").key(name);
        return as_object(components, &at, referenced, depth + 1);
    }
    if ["anyOf", "oneOf", "not"]
        .iter()
        .any(|k| object.contains_key(*k))
    {
        return Ok(None);
    }
    let kind = object.get("type").and_then(Value::as_str);
    let Some(parts) = object.get("allOf").and_then(Value::as_array) else {
        // A part without a type that only adds fields, `required` or annotations composes too.
        let adds_to_an_object = object
            .keys()
            .all(|k| OBJECT_PART_KEYS.contains(&k.as_str()));
        let is_object = kind == Some("object") || (kind.is_none() && adds_to_an_object);
        return Ok(is_object.then(|| object.clone()));
    };
    if kind.is_some_and(|k| k != "object") {
        return Ok(None);
    }
    let mut merged = Map::new();
    merged.insert("type".into(), json!("object"));
    let mut properties = Map::new();
    let mut required: Vec<Value> = Vec::new();
    let mut sources: Vec<(String, JsonPath)> = Vec::new();
    let mut add = |from: &Map<String, Value>, at: &JsonPath| -> Result<(), SpecError> {
        let own = from.get("properties").and_then(Value::as_object);
        for (name, property) in own.into_iter().flatten() {
            let here = at.key("properties").key(name);
            match properties.get(name) {
                Some(before) if !same_shape(before, property) => {
                    let (_, first) = sources.iter().find(|(n, _)| n == name).expect("recorded");
                    return Err(SpecError::new(
                        here,
                        format!("an `allOf` part defines property `{name}` differently from {first}; both would apply, which no one generated type can say: give it one definition"),
                    ));
                }
                Some(_) => {
                    properties.insert(name.clone(), property.clone());
                }
                None => {
                    properties.insert(name.clone(), property.clone());
                    sources.push((name.clone(), here));
                }
            }
        }
        let list = from.get("required").and_then(Value::as_array);
        for name in list.into_iter().flatten() {
            if !required.contains(name) {
                required.push(name.clone());
            }
        }
        Ok(())
    };
    for (i, part) in parts.iter().enumerate() {
        let at = path.key("allOf").index(i);
        let Some(part) = as_object(components, &at, part, depth + 1)? else {
            return Ok(None);
        };
        add(&part, &at)?;
    }
    add(object, path)?;
    for (key, value) in object {
        if !["allOf", "properties", "required", "type"].contains(&key.as_str()) {
            merged.insert(key.clone(), value.clone());
        }
    }
    if depth > 0 {
        merged.shift_remove("additionalProperties");
    }
    merged.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        merged.insert("required".into(), Value::Array(required));
    }
    Ok(Some(merged))
}

/// Whether two property schemas say the same, annotations (`title`, `description`, examples)
/// aside.
fn same_shape(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(object) = v.as_object_mut() {
            for key in ["title", "description", "example", "examples"] {
                object.shift_remove(key);
            }
        }
        v
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quirks::testing::{assert_fixes, rendered};

    /// One operation `POST /t` with these parameters, request body schema and 200 body schema,
    /// and these component schemas.
    fn document(parameters: Value, request: Value, response: Value, schemas: Value) -> Value {
        let body =
            |schema: Value| json!({ "content": { "application/json": { "schema": schema } } });
        let mut operation = json!({
            "operationId": "op",
            "parameters": parameters,
            "responses": { "200": body(response) }
        });
        if !request.is_null() {
            operation["requestBody"] = body(request);
        }
        json!({
            "openapi": "3.0.3",
            "paths": { "/t": { "post": operation } },
            "components": { "schemas": schemas }
        })
    }

    fn parameter(place: &str, required: bool, schema: Value) -> Value {
        json!({ "name": format!("p-{place}"), "in": place, "required": required, "schema": schema })
    }

    #[test]
    fn nullable_parameters_lose_the_null_in_every_position() {
        let nullable =
            json!({ "type": "string", "nullable": true, "maxLength": 8, "pattern": "^a" });
        let mut doc = document(
            json!([
                parameter("query", false, nullable.clone()),
                parameter("header", false, nullable.clone()),
                parameter("path", true, nullable.clone()),
            ]),
            Value::Null,
            json!({ "type": "string" }),
            json!({}),
        );
        doc["paths"]["/t"]["parameters"] = json!([parameter("header", false, nullable.clone())]);
        let changed = rendered(&fit_parameters(&mut doc).unwrap());
        for at in [
            "$.paths['/t'].parameters[0].schema.nullable",
            "$.paths['/t'].post.parameters[0].schema.nullable",
            "$.paths['/t'].post.parameters[1].schema.maxLength",
            "$.paths['/t'].post.parameters[2].schema.pattern",
        ] {
            assert!(changed.iter().any(|c| c == at), "{at} not in {changed:?}");
        }
        for i in 0..3 {
            let schema = &doc["paths"]["/t"]["post"]["parameters"][i]["schema"];
            assert_eq!(schema["type"], "string");
            assert!(schema.get("nullable").is_none() && schema.get("maxLength").is_none());
            assert_eq!(
                keyword(schema, "maxLength"),
                Some(&json!(8)),
                "kept for the report"
            );
        }
        assert!(fit_parameters(&mut doc).unwrap().is_empty());
    }

    #[test]
    fn an_optional_cookie_is_dropped_and_a_required_one_refused() {
        let mut doc = document(
            json!([
                parameter("cookie", false, json!({ "type": "string" })),
                parameter("query", true, json!({ "type": "string" }))
            ]),
            Value::Null,
            json!({}),
            json!({}),
        );
        assert_fixes(
            fit_parameters,
            &mut doc,
            &["$.paths['/t'].post.parameters[0]"],
        );
        assert_eq!(doc["paths"]["/t"]["post"]["parameters"][0]["in"], "query");
        let mut required = document(
            json!([parameter("cookie", true, json!({ "type": "string" }))]),
            Value::Null,
            json!({}),
            json!({}),
        );
        let error = fit_parameters(&mut required).unwrap_err();
        assert_eq!(error.path.to_string(), "$.paths['/t'].post.parameters[0]");
        assert!(error.message.contains("cookie"), "{error}");
    }

    #[test]
    fn foreign_formats_and_patterns_become_plain_strings() {
        let mut doc = document(
            json!([]),
            Value::Null,
            json!({ "type": "object", "properties": {
                "id": { "type": "string", "format": "uuid" },
                "day": { "type": "string", "format": "date" },
                "ip": { "type": "string", "format": "ipv4" },
                "code": { "type": "string", "pattern": "^[A-Z]+$" }
            }}),
            json!({}),
        );
        let at =
            "$.paths['/t'].post.responses['200'].content['application/json'].schema.properties";
        assert_eq!(
            rendered(&strings_without_dependencies(&mut doc).unwrap()),
            [format!("{at}.id.format"), format!("{at}.code.pattern")]
        );
        let properties = &doc["paths"]["/t"]["post"]["responses"]["200"]["content"]
            ["application/json"]["schema"]["properties"];
        assert_eq!(
            properties["id"],
            json!({ "type": "string", RELAXED: { "format": "uuid" } })
        );
        assert_eq!(
            properties["day"]["format"], "date",
            "chrono is a dependency"
        );
        assert_eq!(properties["ip"]["format"], "ipv4", "std has the type");
        assert!(properties["code"].get("pattern").is_none());
    }

    #[test]
    fn vendor_json_media_types_become_application_json() {
        let mut doc = document(json!([]), json!({ "type": "string" }), json!({}), json!({}));
        let content = &mut doc["paths"]["/t"]["post"]["responses"]["200"]["content"];
        let vendor = "application/vnd.genlogs.v1+json; charset=utf-8";
        rename_media_type(content.as_object_mut().unwrap(), "application/json", vendor).unwrap();
        content[vendor]["encoding"] = json!({});
        assert_fixes(
            json_media_types,
            &mut doc,
            &[
                "$.paths['/t'].post.responses['200'].content['application/vnd.genlogs.v1+json; charset=utf-8']",
                "$.paths['/t'].post.responses['200'].content['application/json'].encoding",
            ],
        );
        let content = &doc["paths"]["/t"]["post"]["responses"]["200"]["content"];
        assert_eq!(
            content.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["application/json"]
        );
    }

    #[test]
    fn response_enums_open_at_any_depth_and_request_enums_stay() {
        let kind = json!({ "type": "string", "enum": ["bearer", "mac"] });
        let mut doc = document(
            json!([parameter("query", false, kind.clone())]),
            json!({ "$ref": "#/components/schemas/Shared" }),
            json!({ "type": "object", "additionalProperties": false, "properties": {
                "kind": kind.clone(),
                "list": { "type": "array", "items": { "$ref": "#/components/schemas/Item" } },
                "shared": { "$ref": "#/components/schemas/Shared" }
            }}),
            json!({
                "Item": { "type": "object", "properties": { "level": { "enum": [1, 2, null] } } },
                "Shared": { "type": "object", "properties": { "kind": kind.clone() } }
            }),
        );
        let changed = rendered(&open_response_schemas(&mut doc).unwrap());
        let body = "$.paths['/t'].post.responses['200'].content['application/json'].schema";
        for at in [
            "$.components.schemas.SharedInRequest".to_string(),
            format!("{body}.additionalProperties"),
            format!("{body}.properties.kind.enum"),
            "$.components.schemas.Item.properties.level.enum".to_string(),
            "$.components.schemas.Shared.properties.kind.enum".to_string(),
        ] {
            assert!(changed.contains(&at), "{at} not in {changed:?}");
        }
        let response = &doc["paths"]["/t"]["post"]["responses"]["200"]["content"]
            ["application/json"]["schema"];
        assert_eq!(
            response["properties"]["shared"]["$ref"],
            "#/components/schemas/Shared"
        );
        assert!(response.get("additionalProperties").is_none());
        let opened = &response["properties"]["kind"];
        assert!(opened.get("enum").is_none());
        assert_eq!(keyword(opened, "enum"), Some(&json!(["bearer", "mac"])));
        assert!(opened["description"]
            .as_str()
            .unwrap()
            .contains("`bearer`, `mac`"));
        let level = &doc["components"]["schemas"]["Item"]["properties"]["level"];
        assert_eq!(
            (&level["type"], &level["nullable"]),
            (&json!("integer"), &json!(true))
        );
        // What requests send stays strict.
        assert_eq!(doc["paths"]["/t"]["post"]["parameters"][0]["schema"], kind);
        assert_eq!(
            doc["components"]["schemas"]["SharedInRequest"]["properties"]["kind"],
            kind
        );
        assert_eq!(
            doc["paths"]["/t"]["post"]["requestBody"]["content"]["application/json"]["schema"]
                ["$ref"],
            "#/components/schemas/SharedInRequest"
        );
        let shared = &doc["components"]["schemas"]["Shared"]["properties"]["kind"];
        assert!(shared.get("enum").is_none(), "the responses' copy is open");
        assert!(open_response_schemas(&mut doc).unwrap().is_empty());
    }

    #[test]
    fn all_of_objects_flatten_through_refs_and_nesting() {
        let mut doc = document(
            json!([]),
            Value::Null,
            json!({ "$ref": "#/components/schemas/R" }),
            json!({
                "Base": { "type": "object", "required": ["a"], "properties": { "a": { "type": "string" } }, "additionalProperties": false },
                "Middle": { "allOf": [{ "$ref": "#/components/schemas/Base" }, { "properties": { "b": { "type": "integer" } }, "required": ["b"] }] },
                "R": { "title": "R", "allOf": [
                    { "$ref": "#/components/schemas/Middle" },
                    { "type": "object", "properties": { "a": { "type": "string", "description": "again" }, "c": { "type": "boolean" } } }
                ]},
                "Annotated": { "allOf": [{ "$ref": "#/components/schemas/Base" }], "nullable": true },
                "Mixed": { "allOf": [{ "$ref": "#/components/schemas/Base" }, { "type": "string" }] }
            }),
        );
        assert_fixes(
            flatten_all_of,
            &mut doc,
            &[
                "$.components.schemas.Middle.allOf",
                "$.components.schemas.R.allOf",
            ],
        );
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["R"],
            json!({ "type": "object", "title": "R",
                "properties": { "a": { "type": "string", "description": "again" }, "b": { "type": "integer" }, "c": { "type": "boolean" } },
                "required": ["a", "b"] })
        );
        assert!(
            schemas["Annotated"].get("allOf").is_some(),
            "a lone allOf annotates a $ref"
        );
        assert!(
            schemas["Mixed"].get("allOf").is_some(),
            "not an object: left to typify"
        );
    }

    #[test]
    fn a_property_all_of_parts_define_differently_is_refused_by_path() {
        let mut doc = document(
            json!([]),
            Value::Null,
            json!({ "allOf": [
                { "type": "object", "properties": { "a": { "type": "string" } } },
                { "type": "object", "properties": { "a": { "type": "integer" } } }
            ]}),
            json!({}),
        );
        let error = flatten_all_of(&mut doc).unwrap_err();
        let body = "$.paths['/t'].post.responses['200'].content['application/json'].schema";
        assert_eq!(
            error.path.to_string(),
            format!("{body}.allOf[1].properties.a")
        );
        assert!(
            error
                .message
                .contains(&format!("{body}.allOf[0].properties.a")),
            "{error}"
        );
    }
}
