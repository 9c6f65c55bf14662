//! The quirk-fix pass: one function per defect of GenLogs' published OpenAPI document.
//!
//! `openapi.json` is kept exactly as upstream wrote it; every correction happens here, in code,
//! so that review can always diff upstream against what the crate is generated from. Each fix
//! returns the places it changed; a fix that changes nothing means upstream corrected the quirk
//! (build.rs then prints a cargo warning so that the fix can be retired).

use serde_json::{json, Map, Value};

use super::{JsonPath, SpecError};

/// One known defect of the upstream document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    /// a. `openapi: 3.1.0`, while progenitor 0.15 reads only 3.0.x.
    OpenApi31,
    /// b. Object fields declared `type: object` with `items: {$ref}`.
    ItemsOnObject,
    /// c. `RefreshTokenSchema` duplicates `AccessTokenSchema`, title included.
    DuplicateTokenSchema,
    /// d. `expires` typed as a bare string.
    ExpiresAsString,
    /// The token strings are not marked as credentials.
    TokensNotSecret,
    /// e. `accept` declared as a required per-call header.
    AcceptParameter,
    /// f. `x-api-key` declared as a per-call header.
    ApiKeyParameter,
    /// g. `operationId: refresh_token_get` on a POST.
    MisnamedOperation,
    /// h. Only 200 and 422 declared.
    UndeclaredErrors,
    /// i. Error semantics documented wrongly (401 copied from create-token).
    MisleadingDocs,
}

impl Quirk {
    /// Every fix, in the order the pass runs them.
    pub const ALL: [Quirk; 10] = [
        Quirk::OpenApi31,
        Quirk::ItemsOnObject,
        Quirk::DuplicateTokenSchema,
        Quirk::ExpiresAsString,
        Quirk::TokensNotSecret,
        Quirk::AcceptParameter,
        Quirk::ApiKeyParameter,
        Quirk::MisnamedOperation,
        Quirk::UndeclaredErrors,
        Quirk::MisleadingDocs,
    ];

    /// The fix's function name, as the reports and warnings print it.
    pub fn name(self) -> &'static str {
        match self {
            Quirk::OpenApi31 => "downgrade_openapi_31",
            Quirk::ItemsOnObject => "inline_items_on_object",
            Quirk::DuplicateTokenSchema => "merge_duplicate_schemas",
            Quirk::ExpiresAsString => "type_expires_as_datetime",
            Quirk::TokensNotSecret => "mark_tokens_secret",
            Quirk::AcceptParameter => "drop_accept_parameter",
            Quirk::ApiKeyParameter => "api_key_as_security_scheme",
            Quirk::MisnamedOperation => "rename_operations",
            Quirk::UndeclaredErrors => "declare_error_statuses",
            Quirk::MisleadingDocs => "document_operations",
        }
    }

    /// Runs this fix; returns the places it changed (empty: nothing to fix).
    pub fn apply(self, doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
        match self {
            Quirk::OpenApi31 => downgrade_openapi_31(doc),
            Quirk::ItemsOnObject => Ok(inline_items_on_object(doc)),
            Quirk::DuplicateTokenSchema => Ok(merge_duplicate_schemas(doc)),
            Quirk::ExpiresAsString => Ok(type_expires_as_datetime(doc)),
            Quirk::TokensNotSecret => Ok(mark_tokens_secret(doc)),
            Quirk::AcceptParameter => Ok(drop_header_parameter(doc, "accept")),
            Quirk::ApiKeyParameter => Ok(api_key_as_security_scheme(doc)),
            Quirk::MisnamedOperation => Ok(rename_operations(doc)),
            Quirk::UndeclaredErrors => Ok(declare_error_statuses(doc)),
            Quirk::MisleadingDocs => Ok(document_operations(doc)),
        }
    }
}

/// What one fix did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixReport {
    /// Which fix.
    pub quirk: Quirk,
    /// The places it changed; empty when it found nothing to fix.
    pub changed: Vec<JsonPath>,
}

impl FixReport {
    /// Whether the fix found its quirk.
    pub fn applied(&self) -> bool {
        !self.changed.is_empty()
    }
}

/// Runs every fix in order.
pub fn apply_all(doc: &mut Value) -> Result<Vec<FixReport>, SpecError> {
    if !doc.is_object() {
        return Err(SpecError::new(
            JsonPath::root(),
            "the document must be a JSON object",
        ));
    }
    Quirk::ALL
        .iter()
        .map(|&quirk| {
            Ok(FixReport {
                quirk,
                changed: quirk.apply(doc)?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// a. OpenAPI 3.1 → 3.0

/// Schema keywords that exist only in OpenAPI 3.1 (JSON Schema 2020-12) and that progenitor,
/// reading 3.0, would silently ignore or misread.
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

/// Upstream declares `openapi: 3.1.0`, but the document is 3.0-compatible and progenitor 0.15
/// rejects anything but 3.0.x. Downgrade the version, but only after checking that no 3.1-only
/// construct is present: one would be misread by a 3.0 reader, so it fails the build by path.
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
    if !version.starts_with("3.1.") {
        return Err(SpecError::new(
            root.key("openapi"),
            format!("OpenAPI {version} is not supported: only 3.0.x and 3.1.x (downgraded) are"),
        ));
    }
    for key in ["webhooks", "jsonSchemaDialect"] {
        if doc.get(key).is_some() {
            return Err(SpecError::new(
                root.key(key),
                format!("`{key}` is OpenAPI 3.1 only; extend downgrade_openapi_31 to handle it"),
            ));
        }
    }
    if doc.pointer("/components/pathItems").is_some() {
        return Err(SpecError::new(
            root.key("components").key("pathItems"),
            "`components.pathItems` is OpenAPI 3.1 only; extend downgrade_openapi_31",
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
    let unsupported = |key: &str, why: &str| {
        Err(SpecError::new(
            path.key(key),
            format!("{why} is OpenAPI 3.1 only; progenitor reads 3.0 (extend downgrade_openapi_31 to translate it)"),
        ))
    };
    match object.get("type") {
        Some(Value::Array(_)) => {
            return unsupported("type", "a type array such as [\"string\", \"null\"]")
        }
        Some(Value::String(t)) if t == "null" => return unsupported("type", "`type: \"null\"`"),
        _ => {}
    }
    if let Some(key) = SCHEMA_KEYWORDS_31.iter().find(|k| object.contains_key(**k)) {
        return unsupported(key, &format!("the schema keyword `{key}`"));
    }
    for key in ["exclusiveMinimum", "exclusiveMaximum"] {
        if object.get(key).is_some_and(Value::is_number) {
            return unsupported(key, &format!("a numeric `{key}`"));
        }
    }
    if object.contains_key("$ref") && object.len() > 1 {
        return unsupported("$ref", "a `$ref` with sibling keywords");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// b. `items` on an object

/// Upstream declares `access_token_data` and `refresh_token_data` as `type: object` with
/// `items: {$ref: …}`. `items` means nothing on an object, so progenitor makes them untyped maps;
/// what upstream means is "this field is the referenced object". Replace such a schema by its
/// `items` schema.
pub fn inline_items_on_object(doc: &mut Value) -> Vec<JsonPath> {
    let mut changed = Vec::new();
    let _ = for_each_schema(doc, &mut |path, schema| {
        let is_object = schema.get("type").and_then(Value::as_str) == Some("object");
        let has_properties = schema.get("properties").is_some();
        if let (true, false, Some(items)) = (is_object, has_properties, schema.get("items")) {
            if items.is_object() {
                *schema = items.clone();
                changed.push(path.clone());
            }
        }
        Ok(())
    });
    changed
}

// ---------------------------------------------------------------------------------------------
// c. duplicated schema

/// Upstream's `RefreshTokenSchema` has the same shape as `AccessTokenSchema` and even carries its
/// title (`"title": "AccessTokenSchema"`); the prose calls both `TokenSchema`. Where a component's
/// title names another component of the same shape, merge both into one schema named by their
/// common suffix (`TokenSchema`) and point every `$ref` at it. Where the shapes differ, only the
/// copied title is corrected.
pub fn merge_duplicate_schemas(doc: &mut Value) -> Vec<JsonPath> {
    let schemas_path = JsonPath::root().key("components").key("schemas");
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return Vec::new();
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
    changed
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

fn rewrite_refs(value: &mut Value, from: &str, to: &str) {
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

// ---------------------------------------------------------------------------------------------
// d. `expires`, and the token strings

/// Upstream types `expires` as a bare string while the prose says datetime. Add
/// `format: date-time`; the generator maps that format to `crate::expiry::Expiry`, which accepts
/// every form the service emits and means UTC when no offset is given.
pub fn type_expires_as_datetime(doc: &mut Value) -> Vec<JsonPath> {
    set_format_on_properties(doc, "expires", "date-time")
}

/// Upstream declares the token strings as plain strings, so generated types would hold them in
/// `String` and print them in `Debug`. They are credentials: mark them `format: password`, which
/// the generator maps to `crate::secret::Token` (redacted `Debug`, no `Display`).
pub fn mark_tokens_secret(doc: &mut Value) -> Vec<JsonPath> {
    set_format_on_properties(doc, "token", "password")
}

fn set_format_on_properties(doc: &mut Value, property: &str, format: &str) -> Vec<JsonPath> {
    let mut changed = Vec::new();
    let _ = for_each_schema(doc, &mut |path, schema| {
        if let Some(field) = schema.pointer_mut(&format!("/properties/{property}")) {
            let is_plain_string = field.get("type").and_then(Value::as_str) == Some("string")
                && field.get("format").is_none();
            if is_plain_string {
                field["format"] = json!(format);
                changed.push(path.key("properties").key(property));
            }
        }
        Ok(())
    });
    changed
}

// ---------------------------------------------------------------------------------------------
// e, f. header parameters

/// Upstream declares `accept` as a required header parameter. The generated client already sends
/// `Accept: application/json`; a caller-supplied one would be a second, possibly different,
/// `Accept`. Remove the parameter.
pub fn drop_header_parameter(doc: &mut Value, header: &str) -> Vec<JsonPath> {
    let mut changed = Vec::new();
    for operation in operations_mut(doc) {
        let path = operation.path;
        let Some(parameters) = operation
            .value
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        let mut index = 0;
        parameters.retain(|parameter| {
            let matches = parameter.get("in").and_then(Value::as_str) == Some("header")
                && parameter
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|name| name.eq_ignore_ascii_case(header));
            if matches {
                changed.push(path.key("parameters").index(index));
            }
            index += 1;
            !matches
        });
    }
    changed
}

/// Upstream declares `x-api-key` as a per-call header parameter. It is a credential, configured
/// once per client (and sent as a sensitive header by the hand-written hooks): remove the
/// parameter and declare it as what it is, an `apiKey` security scheme.
pub fn api_key_as_security_scheme(doc: &mut Value) -> Vec<JsonPath> {
    let changed = drop_header_parameter(doc, "x-api-key");
    if changed.is_empty() {
        return changed;
    }
    for operation in operations_mut(doc) {
        operation.value["security"] = json!([{ "ApiKeyHeader": [] }]);
    }
    let schemes = doc
        .pointer_mut("/components")
        .map(|components| object_entry(components, "securitySchemes"));
    if let Some(schemes) = schemes {
        schemes.insert(
            "ApiKeyHeader".into(),
            json!({ "type": "apiKey", "in": "header", "name": "x-api-key" }),
        );
    }
    changed
}

// ---------------------------------------------------------------------------------------------
// g, i. names and docs of known operations

/// What the crate calls each operation it knows, and what it tells users about it.
struct KnownOperation {
    method: &'static str,
    route: &'static str,
    name: &'static str,
    description: &'static str,
}

const KNOWN_OPERATIONS: &[KnownOperation] = &[
    KnownOperation {
        method: "post",
        route: "/token/refresh",
        name: "refresh_tokens",
        description: "Exchanges a refresh token for a new access token and a new refresh token. \
            Refresh tokens rotate: after a successful call only the returned refresh token is \
            valid. A 401 means the refresh token was rejected (invalid, expired or already used) \
            and new tokens must be created with `POST /token`; it does not concern an email or \
            password.",
    },
    KnownOperation {
        method: "post",
        route: "/token",
        name: "create_tokens",
        description: "Creates an access token and a refresh token from an email and password. \
            A 401 means the email or password was rejected.",
    },
];

/// Upstream names the refresh POST `refresh_token_get`. An operation id that ends in `_get` on
/// any other method describes FastAPI's default naming, not the operation: rename known
/// operations for what they do, and strip the misleading `_get` from unknown ones.
pub fn rename_operations(doc: &mut Value) -> Vec<JsonPath> {
    let mut changed = Vec::new();
    for operation in operations_mut(doc) {
        let Some(id) = operation.value.get("operationId").and_then(Value::as_str) else {
            continue;
        };
        if operation.method == "get" || !id.ends_with("_get") {
            continue;
        }
        let name = operation.known().map_or_else(
            || id.trim_end_matches("_get").to_string(),
            |known| known.name.to_string(),
        );
        operation.value["operationId"] = json!(name);
        changed.push(operation.path.key("operationId"));
    }
    changed
}

/// Upstream's page documents the refresh 401 with text copied from the create-token page ("the
/// provided email, and password"). The generated method's docs come from the operation's
/// `description`: give known operations an accurate one where upstream has none.
pub fn document_operations(doc: &mut Value) -> Vec<JsonPath> {
    let mut changed = Vec::new();
    for operation in operations_mut(doc) {
        let Some(known) = operation.known() else {
            continue;
        };
        if operation.value.get("description").is_none() {
            operation.value["description"] = json!(known.description);
            changed.push(operation.path.key("description"));
        }
    }
    changed
}

// ---------------------------------------------------------------------------------------------
// h. error statuses

/// Statuses the service or its gateway answer with, beyond upstream's 200 and 422.
const ERROR_STATUSES: &[(&str, &str)] = &[
    ("401", "Unauthorized: the credential in the query was rejected. FastAPI body `{\"detail\": \"…\"}`."),
    ("403", "Forbidden by the API gateway: the `x-api-key` is missing or invalid. Body `{\"message\": \"Forbidden\"}`."),
    ("429", "Too many requests (API gateway); see `Retry-After`. Body `{\"message\": \"Too Many Requests\"}`."),
    ("500", "Internal server error: `{\"detail\": \"…\"}`, or `text/plain` for an unhandled exception."),
    ("503", "Service unavailable."),
    ("504", "Gateway timeout: the request may or may not have been processed."),
];

/// Upstream declares only 200 and 422, while the prose documents 401 and 500 and the gateway in
/// front answers 403, 429 and 504. progenitor asserts when one operation has two different error
/// body types (a body-less response counts as one), and the real bodies differ (JSON `detail`
/// array or string, gateway `message`, plain text). So every error status is declared with `*/*`
/// content, including any upstream declared without content: progenitor hands the
/// hand-written layer the raw body, which reads it under a size cap and decodes it by status
/// (422 still as `HTTPValidationError`, whose schema stays referenced).
pub fn declare_error_statuses(doc: &mut Value) -> Vec<JsonPath> {
    let mut changed = Vec::new();
    for operation in operations_mut(doc) {
        let responses_path = operation.path.key("responses");
        let responses = object_entry(operation.value, "responses");
        for (status, response) in responses.iter_mut() {
            if status.starts_with('2') || status == "default" {
                continue;
            }
            let Some(response) = response.as_object_mut() else {
                continue;
            };
            let content = object_entry_of(response, "content");
            if content.len() == 1 && content.contains_key("*/*") {
                continue;
            }
            let schema = content
                .values()
                .find_map(|media| media.get("schema"))
                .cloned();
            let mut any = Map::new();
            any.insert(
                "*/*".into(),
                schema.map_or_else(|| json!({}), |s| json!({ "schema": s })),
            );
            *content = any;
            changed.push(responses_path.key(status).key("content"));
        }
        for (status, description) in ERROR_STATUSES {
            if !responses.contains_key(*status) {
                responses.insert(
                    status.to_string(),
                    json!({ "description": description, "content": { "*/*": {} } }),
                );
                changed.push(responses_path.key(status));
            }
        }
    }
    changed
}

// ---------------------------------------------------------------------------------------------
// walking the document

pub const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One operation object, with where it is.
struct Operation<'a> {
    /// `$.paths['/route'].method`.
    path: JsonPath,
    /// `post`, `get`, …
    method: String,
    /// `/token/refresh`, …
    route: String,
    value: &'a mut Value,
}

impl Operation<'_> {
    fn known(&self) -> Option<&'static KnownOperation> {
        KNOWN_OPERATIONS
            .iter()
            .find(|known| known.method == self.method && known.route == self.route)
    }
}

/// Every operation object in `paths`.
fn operations_mut(doc: &mut Value) -> Vec<Operation<'_>> {
    let paths_path = JsonPath::root().key("paths");
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (route, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, value) in item.iter_mut() {
            if METHODS.contains(&method.as_str()) && value.is_object() {
                out.push(Operation {
                    path: paths_path.key(route).key(method),
                    method: method.clone(),
                    route: route.clone(),
                    value,
                });
            }
        }
    }
    out
}

fn object_entry_of<'a>(
    object: &'a mut Map<String, Value>,
    key: &str,
) -> &'a mut Map<String, Value> {
    let entry = object.entry(key).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("just made an object")
}

fn object_entry<'a>(value: &'a mut Value, key: &str) -> &'a mut Map<String, Value> {
    if !value.is_object() {
        *value = json!({});
    }
    let object = value.as_object_mut().expect("just made an object");
    let entry = object.entry(key).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("just made an object")
}

type Visitor<'v> = dyn FnMut(&JsonPath, &mut Value) -> Result<(), SpecError> + 'v;

/// Calls `visit` on every schema object in the document, parents before children: component
/// schemas, parameter schemas, request and response body schemas, and their subschemas.
pub fn for_each_schema(doc: &mut Value, visit: &mut Visitor<'_>) -> Result<(), SpecError> {
    let root = JsonPath::root();
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        let base = root.key("components").key("schemas");
        for (name, schema) in schemas.iter_mut() {
            walk_schema(&base.key(name), schema, visit)?;
        }
    }
    for Operation {
        path,
        value: operation,
        ..
    } in operations_mut(doc)
    {
        if let Some(parameters) = operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
        {
            for (i, parameter) in parameters.iter_mut().enumerate() {
                if let Some(schema) = parameter.get_mut("schema") {
                    walk_schema(
                        &path.key("parameters").index(i).key("schema"),
                        schema,
                        visit,
                    )?;
                }
            }
        }
        if let Some(content) = operation.pointer_mut("/requestBody/content") {
            walk_content(&path.key("requestBody").key("content"), content, visit)?;
        }
        if let Some(responses) = operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
        {
            for (status, response) in responses.iter_mut() {
                if let Some(content) = response.get_mut("content") {
                    walk_content(
                        &path.key("responses").key(status).key("content"),
                        content,
                        visit,
                    )?;
                }
            }
        }
    }
    Ok(())
}

fn walk_content(
    path: &JsonPath,
    content: &mut Value,
    visit: &mut Visitor<'_>,
) -> Result<(), SpecError> {
    if let Some(media_types) = content.as_object_mut() {
        for (media_type, media) in media_types.iter_mut() {
            if let Some(schema) = media.get_mut("schema") {
                walk_schema(&path.key(media_type).key("schema"), schema, visit)?;
            }
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
            ("items" | "not", child @ Value::Object(_))
            | ("additionalProperties", child @ Value::Object(_)) => {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn operation(parameters: Value, responses: Value) -> Value {
        json!({
            "openapi": "3.0.3",
            "paths": { "/token/refresh": { "post": {
                "operationId": "refresh_token_get",
                "parameters": parameters,
                "responses": responses
            }}},
            "components": { "schemas": {} }
        })
    }

    fn rendered(paths: &[JsonPath]) -> Vec<String> {
        paths.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn downgrade_rewrites_31_without_31_constructs() {
        let mut doc = json!({ "openapi": "3.1.0", "components": { "schemas": { "A": { "type": "string" } } } });
        assert_eq!(
            rendered(&downgrade_openapi_31(&mut doc).unwrap()),
            ["$.openapi"]
        );
        assert_eq!(doc["openapi"], "3.0.3");
        assert!(
            downgrade_openapi_31(&mut doc).unwrap().is_empty(),
            "3.0 has nothing to fix"
        );
    }

    #[test]
    fn downgrade_refuses_31_constructs_naming_their_path() {
        let cases = [
            (
                json!({ "properties": { "a": { "type": ["string", "null"] } } }),
                "$.components.schemas.A.properties.a.type",
                "type array",
            ),
            (
                json!({ "type": "null" }),
                "$.components.schemas.A.type",
                "`type: \"null\"`",
            ),
            (
                json!({ "const": 1 }),
                "$.components.schemas.A.const",
                "`const`",
            ),
            (
                json!({ "type": "string", "examples": ["x"] }),
                "$.components.schemas.A.examples",
                "`examples`",
            ),
            (
                json!({ "items": { "$ref": "#/x", "description": "d" } }),
                "$.components.schemas.A.items.$ref",
                "sibling",
            ),
            (
                json!({ "type": "integer", "exclusiveMinimum": 0 }),
                "$.components.schemas.A.exclusiveMinimum",
                "numeric",
            ),
        ];
        for (schema, path, what) in cases {
            let mut doc =
                json!({ "openapi": "3.1.0", "components": { "schemas": { "A": schema } } });
            let error = downgrade_openapi_31(&mut doc).unwrap_err();
            assert_eq!(error.path.to_string(), path);
            assert!(
                error.message.contains(what) && error.message.contains("3.1 only"),
                "{}",
                error.message
            );
            assert_eq!(doc["openapi"], "3.1.0", "nothing is changed on failure");
        }
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

    #[test]
    fn items_on_an_object_becomes_the_referenced_schema() {
        let mut doc = json!({ "components": { "schemas": { "R": { "properties": {
            "data": { "items": { "$ref": "#/components/schemas/T" }, "type": "object", "title": "data" },
            "list": { "items": { "type": "string" }, "type": "array" }
        }}}}});
        let changed = inline_items_on_object(&mut doc);
        assert_eq!(
            rendered(&changed),
            ["$.components.schemas.R.properties.data"]
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
        assert!(inline_items_on_object(&mut doc).is_empty());
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
        assert_eq!(
            rendered(&merge_duplicate_schemas(&mut doc)),
            ["$.components.schemas.TokenSchema"]
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
        assert!(merge_duplicate_schemas(&mut doc).is_empty());
    }

    #[test]
    fn different_shapes_only_get_their_copied_title_fixed() {
        let mut doc = json!({ "components": { "schemas": {
            "AccessTokenSchema": { "properties": { "token": { "type": "string" } }, "title": "AccessTokenSchema" },
            "RefreshTokenSchema": { "properties": { "token": { "type": "string" }, "scope": { "type": "string" } }, "title": "AccessTokenSchema" }
        }}});
        assert_eq!(
            rendered(&merge_duplicate_schemas(&mut doc)),
            ["$.components.schemas.RefreshTokenSchema.title"]
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
        assert_eq!(
            rendered(&type_expires_as_datetime(&mut doc)),
            ["$.components.schemas.T.properties.expires"]
        );
        assert_eq!(
            rendered(&mark_tokens_secret(&mut doc)),
            ["$.components.schemas.T.properties.token"]
        );
        let properties = doc.pointer("/components/schemas/T/properties").unwrap();
        assert_eq!(properties["expires"]["format"], "date-time");
        assert_eq!(properties["token"]["format"], "password");
        assert!(properties["other"].get("format").is_none());
        assert!(type_expires_as_datetime(&mut doc).is_empty());
        assert!(mark_tokens_secret(&mut doc).is_empty());
    }

    #[test]
    fn header_parameters_accept_and_api_key_leave_the_call_signature() {
        let parameters = json!([
            { "name": "Accept", "in": "header", "required": true, "schema": { "type": "string" } },
            { "name": "x-api-key", "in": "header", "required": true, "schema": { "type": "string" } },
            { "name": "refresh_token", "in": "query", "required": true, "schema": { "type": "string" } }
        ]);
        let mut doc = operation(parameters, json!({}));
        assert_eq!(
            rendered(&drop_header_parameter(&mut doc, "accept")),
            ["$.paths['/token/refresh'].post.parameters[0]"]
        );
        assert_eq!(
            rendered(&api_key_as_security_scheme(&mut doc)),
            ["$.paths['/token/refresh'].post.parameters[0]"]
        );
        let op = doc.pointer("/paths/~1token~1refresh/post").unwrap();
        assert_eq!(op["parameters"].as_array().unwrap().len(), 1);
        assert_eq!(op["parameters"][0]["name"], "refresh_token");
        assert_eq!(op["security"], json!([{ "ApiKeyHeader": [] }]));
        assert_eq!(
            doc.pointer("/components/securitySchemes/ApiKeyHeader/name")
                .unwrap(),
            "x-api-key"
        );
        assert!(api_key_as_security_scheme(&mut doc).is_empty());
    }

    #[test]
    fn operations_named_get_on_a_post_are_renamed() {
        let mut doc = operation(json!([]), json!({}));
        doc["paths"]["/other"] = json!({
            "post": { "operationId": "thing_get", "responses": {} },
            "get": { "operationId": "list_get", "responses": {} }
        });
        let changed = rename_operations(&mut doc);
        assert_eq!(
            rendered(&changed),
            [
                "$.paths['/token/refresh'].post.operationId",
                "$.paths['/other'].post.operationId"
            ]
        );
        assert_eq!(
            doc["paths"]["/token/refresh"]["post"]["operationId"],
            "refresh_tokens"
        );
        assert_eq!(doc["paths"]["/other"]["post"]["operationId"], "thing");
        assert_eq!(doc["paths"]["/other"]["get"]["operationId"], "list_get");
        assert!(rename_operations(&mut doc).is_empty());
    }

    #[test]
    fn error_statuses_are_declared_with_raw_bodies() {
        let responses = json!({
            "200": { "description": "ok", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/A" } } } },
            "422": { "description": "Validation Error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/V" } } } }
        });
        let mut doc = operation(json!([]), responses);
        let changed = rendered(&declare_error_statuses(&mut doc));
        assert_eq!(
            changed[0],
            "$.paths['/token/refresh'].post.responses['422'].content"
        );
        assert_eq!(changed.len(), 1 + ERROR_STATUSES.len());
        let responses = doc
            .pointer("/paths/~1token~1refresh/post/responses")
            .unwrap();
        assert_eq!(
            responses["422"]["content"],
            json!({ "*/*": { "schema": { "$ref": "#/components/schemas/V" } } })
        );
        assert_eq!(
            responses["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/A"
        );
        for (status, _) in ERROR_STATUSES {
            assert_eq!(
                responses[*status]["content"],
                json!({ "*/*": {} }),
                "{status}"
            );
        }
        assert!(responses["401"]["description"]
            .as_str()
            .unwrap()
            .contains("rejected"));
        assert!(declare_error_statuses(&mut doc).is_empty());
    }

    #[test]
    fn known_operations_get_accurate_docs_unless_upstream_wrote_some() {
        let mut doc = operation(json!([]), json!({}));
        assert_eq!(
            rendered(&document_operations(&mut doc)),
            ["$.paths['/token/refresh'].post.description"]
        );
        let description = doc["paths"]["/token/refresh"]["post"]["description"]
            .as_str()
            .unwrap();
        assert!(description.contains("401 means the refresh token was rejected"));
        assert!(description.contains("does not concern an email or password"));
        assert!(document_operations(&mut doc).is_empty());
    }
}
