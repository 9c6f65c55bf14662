//! The one walk over a document: where its operations are and where its schemas are. The quirk
//! fixes, the surface, the generator-limit checks and the error locator all use it, so they agree
//! on what counts as an operation or a schema and name the same JSON paths.

use serde_json::Value;

use crate::{JsonPath, SpecError};

/// The HTTP methods a path item can hold as operations (its other keys are not operations).
pub const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Where one operation is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationSite {
    /// `$.paths['/route'].method`.
    pub path: JsonPath,
    /// `post`, `get`, …
    pub method: String,
    /// `/token/refresh`, …
    pub route: String,
}

impl OperationSite {
    /// `POST /token/refresh`: how reports name the operation.
    pub fn key(&self) -> String {
        format!("{} {}", self.method.to_ascii_uppercase(), self.route)
    }

    /// The operation object in `doc`.
    pub fn get<'a>(&self, doc: &'a Value) -> &'a Value {
        self.path
            .get(doc)
            .expect("an operation site points into the document it was found in")
    }

    /// The operation object in `doc`, mutably (the fixes never add or remove operations, so a
    /// site found before a fix still points at its operation).
    pub fn get_mut<'a>(&self, doc: &'a mut Value) -> &'a mut Value {
        self.path
            .get_mut(doc)
            .expect("an operation site points into the document it was found in")
    }
}

/// Every operation object in `paths`, in document order.
pub fn operations(doc: &Value) -> Vec<OperationSite> {
    let paths = doc.get("paths").and_then(Value::as_object);
    let mut out = Vec::new();
    for (route, item) in paths.into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            if METHODS.contains(&method.as_str()) && operation.is_object() {
                out.push(OperationSite {
                    path: JsonPath::root().key("paths").key(route).key(method),
                    method: method.clone(),
                    route: route.clone(),
                });
            }
        }
    }
    out
}

/// Where the bodies of an operation are: its request body and each response, keyed by the path
/// of the object that holds `content`.
pub fn bodies(site: &OperationSite, operation: &Value) -> Vec<(JsonPath, String)> {
    let mut out = Vec::new();
    if operation.get("requestBody").is_some() {
        out.push((site.path.key("requestBody"), "requestBody".to_string()));
    }
    let responses = operation.get("responses").and_then(Value::as_object);
    for status in responses.into_iter().flatten().map(|(status, _)| status) {
        out.push((site.path.key("responses").key(status), status.clone()));
    }
    out
}

/// Where every top-level schema is: component schemas, then the [`request_roots`], then the
/// [`response_roots`].
pub fn schema_roots(doc: &Value) -> Vec<JsonPath> {
    let mut out = members(doc, &JsonPath::root().key("components").key("schemas"));
    out.extend(request_roots(doc));
    out.extend(response_roots(doc));
    out
}

/// The members of the object at `path` (none when it is not an object), as paths.
fn members(doc: &Value, path: &JsonPath) -> Vec<JsonPath> {
    let object = path.get(doc).and_then(Value::as_object);
    object
        .into_iter()
        .flatten()
        .map(|(name, _)| path.key(name))
        .collect()
}

/// Where every parameter object is: those of `components.parameters`, then, for each path
/// item, its shared `parameters` and each operation's own.
pub fn parameter_sites(doc: &Value) -> Vec<JsonPath> {
    let root = JsonPath::root();
    let mut out = members(doc, &root.key("components").key("parameters"));
    let count = |path: &JsonPath| path.get(doc).and_then(Value::as_array).map_or(0, Vec::len);
    let paths = doc.get("paths").and_then(Value::as_object);
    for (route, _) in paths.into_iter().flatten() {
        let shared = root.key("paths").key(route).key("parameters");
        out.extend((0..count(&shared)).map(|i| shared.index(i)));
    }
    for site in operations(doc) {
        let own = site.path.key("parameters");
        out.extend((0..count(&own)).map(|i| own.index(i)));
    }
    out
}

/// The schemas of what a client sends: every parameter's schema (see [`parameter_sites`]) and
/// every request body's (also those of `components.requestBodies`).
pub fn request_roots(doc: &Value) -> Vec<JsonPath> {
    let mut out: Vec<JsonPath> = parameter_sites(doc)
        .into_iter()
        .map(|p| p.key("schema"))
        .filter(|p| p.get(doc).is_some())
        .collect();
    let mut holders = members(
        doc,
        &JsonPath::root().key("components").key("requestBodies"),
    );
    for site in operations(doc) {
        let operation = site.get(doc);
        let bodies = bodies(&site, operation).into_iter();
        holders.extend(
            bodies
                .filter(|(_, name)| name == "requestBody")
                .map(|(p, _)| p),
        );
    }
    out.extend(content_schemas(doc, holders));
    out
}

/// The schemas of what a server answers: every response body's (also those of
/// `components.responses`).
pub fn response_roots(doc: &Value) -> Vec<JsonPath> {
    let mut holders = members(doc, &JsonPath::root().key("components").key("responses"));
    for site in operations(doc) {
        let operation = site.get(doc);
        let bodies = bodies(&site, operation).into_iter();
        holders.extend(
            bodies
                .filter(|(_, name)| name != "requestBody")
                .map(|(p, _)| p),
        );
    }
    content_schemas(doc, holders)
}

fn content_schemas(doc: &Value, holders: Vec<JsonPath>) -> Vec<JsonPath> {
    let mut out = Vec::new();
    for holder in holders {
        for media in members(doc, &holder.key("content")) {
            let schema = media.key("schema");
            if schema.get(doc).is_some() {
                out.push(schema);
            }
        }
    }
    out
}

/// What [`for_each_schema`] calls on each schema: its path and the schema itself, which it may
/// replace (the walk then descends into the replacement).
pub type Visitor<'v> = dyn FnMut(&JsonPath, &mut Value) -> Result<(), SpecError> + 'v;

/// Calls `visit` on every schema in the document, parents before children: each of
/// [`schema_roots`] and their subschemas (properties, items, additionalProperties, not,
/// allOf/anyOf/oneOf, prefixItems). Stops at the first error.
pub fn for_each_schema(doc: &mut Value, visit: &mut Visitor<'_>) -> Result<(), SpecError> {
    let roots = schema_roots(doc);
    for_each_schema_under(doc, &roots, visit)
}

/// [`for_each_schema`] on the schemas at `roots` and their subschemas only.
pub fn for_each_schema_under(
    doc: &mut Value,
    roots: &[JsonPath],
    visit: &mut Visitor<'_>,
) -> Result<(), SpecError> {
    for path in roots {
        if let Some(schema) = path.get_mut(doc) {
            walk_schema(path, schema, visit)?;
        }
    }
    Ok(())
}

fn walk_schema(
    path: &JsonPath,
    schema: &mut Value,
    visit: &mut Visitor<'_>,
) -> Result<(), SpecError> {
    visit(path, schema)?;
    let Some(object) = schema.as_object_mut() else {
        return Ok(());
    };
    for (key, child) in object.iter_mut() {
        match (key.as_str(), child) {
            ("properties", Value::Object(properties)) => {
                for (name, property) in properties.iter_mut() {
                    walk_schema(&path.key("properties").key(name), property, visit)?;
                }
            }
            ("items" | "not" | "additionalProperties", child @ Value::Object(_)) => {
                walk_schema(&path.key(key), child, visit)?;
            }
            ("allOf" | "anyOf" | "oneOf" | "prefixItems", Value::Array(children)) => {
                for (i, child) in children.iter_mut().enumerate() {
                    walk_schema(&path.key(key).index(i), child, visit)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A security scheme in one short, comparable phrase: `apiKey header x-api-key`,
/// `http bearer`, `oauth2`; header names in lower case (HTTP's are case-insensitive).
pub fn security_scheme_phrase(scheme: &Value) -> String {
    let field = |key: &str| scheme.get(key).and_then(Value::as_str).unwrap_or("");
    match field("type") {
        "apiKey" => {
            let name = match field("in") {
                "header" => field("name").to_ascii_lowercase(),
                _ => field("name").to_string(),
            };
            format!("apiKey {} {name}", field("in"))
        }
        "http" => format!("http {}", field("scheme").to_ascii_lowercase()),
        other => other.to_string(),
    }
}

/// A schema in one short, comparable phrase: `TokenSchema`, `string(date-time)`,
/// `array<ValidationError>`, `string|integer`, `object{a,b}`; a `?` marks `nullable`.
pub fn type_name(schema: &Value) -> String {
    let nullable = if schema.get("nullable").and_then(Value::as_bool) == Some(true) {
        "?"
    } else {
        ""
    };
    format!("{}{nullable}", base_type_name(schema))
}

fn base_type_name(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return reference
            .rsplit('/')
            .next()
            .unwrap_or(reference)
            .to_string();
    }
    for combiner in ["anyOf", "oneOf", "allOf"] {
        if let Some(options) = schema.get(combiner).and_then(Value::as_array) {
            let separator = if combiner == "allOf" { "&" } else { "|" };
            return options
                .iter()
                .map(type_name)
                .collect::<Vec<_>>()
                .join(separator);
        }
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("array") => format!(
            "array<{}>",
            schema.get("items").map_or_else(|| "any".into(), type_name)
        ),
        Some("object") => match schema.get("properties").and_then(Value::as_object) {
            Some(properties) => format!(
                "object{{{}}}",
                properties.keys().cloned().collect::<Vec<_>>().join(",")
            ),
            None => "object".into(),
        },
        Some(kind) => match schema.get("format").and_then(Value::as_str) {
            Some(format) => format!("{kind}({format})"),
            None => kind.to_string(),
        },
        None => "any".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document() -> Value {
        json!({
            "paths": { "/t": {
                "summary": "not an operation",
                "post": {
                    "parameters": [{ "name": "q", "in": "query", "schema": { "type": "string" } }],
                    "requestBody": { "content": { "application/json": { "schema": { "type": "integer" } } } },
                    "responses": { "200": { "content": { "application/json": { "schema": {
                        "type": "object", "properties": { "a": { "anyOf": [{ "type": "string" }] } }
                    } } } } }
                }
            }},
            "components": { "schemas": { "S": { "type": "array", "items": { "type": "boolean" } } } }
        })
    }

    #[test]
    fn operations_are_the_method_keys_of_each_path_item() {
        let sites = operations(&document());
        assert_eq!(sites.len(), 1);
        assert_eq!(sites[0].key(), "POST /t");
        assert_eq!(sites[0].path.to_string(), "$.paths['/t'].post");
    }

    #[test]
    fn every_schema_is_visited_parents_first() {
        let mut doc = document();
        let mut seen = Vec::new();
        for_each_schema(&mut doc, &mut |path, _| {
            seen.push(path.to_string());
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                "$.components.schemas.S",
                "$.components.schemas.S.items",
                "$.paths['/t'].post.parameters[0].schema",
                "$.paths['/t'].post.requestBody.content['application/json'].schema",
                "$.paths['/t'].post.responses['200'].content['application/json'].schema",
                "$.paths['/t'].post.responses['200'].content['application/json'].schema.properties.a",
                "$.paths['/t'].post.responses['200'].content['application/json'].schema.properties.a.anyOf[0]",
            ]
        );
    }

    #[test]
    fn the_walk_descends_into_a_replaced_schema() {
        let mut doc = json!({ "components": { "schemas": { "S": { "type": "object" } } } });
        let mut seen = Vec::new();
        for_each_schema(&mut doc, &mut |path, schema| {
            seen.push(path.to_string());
            if schema.get("type") == Some(&json!("object")) {
                *schema = json!({ "items": { "type": "string" } });
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            ["$.components.schemas.S", "$.components.schemas.S.items"]
        );
    }
}
