//! Fixes to upstream's operations: per-call headers that are not arguments (`accept`,
//! `x-api-key`), FastAPI's operation names, undeclared error statuses and misleading docs.

use serde_json::{json, Map, Value};

use super::object_entry;
use crate::walk::{operations, OperationSite};
use crate::{JsonPath, SpecError};

/// Upstream declares `accept` as a required header parameter. The generated client already sends
/// `Accept: application/json`; a caller-supplied one would be a second, possibly different,
/// `Accept`. Remove the parameter.
pub fn drop_accept_parameter(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    Ok(drop_header_parameter(doc, "accept"))
}

/// Upstream declares `x-api-key` as a per-call header parameter. It is a credential, configured
/// once per client (and sent as a sensitive header by the hand-written hooks): remove the
/// parameter and declare it as what it is, an `apiKey` security scheme.
pub fn api_key_as_security_scheme(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    let changed = drop_header_parameter(doc, "x-api-key");
    if changed.is_empty() {
        return Ok(changed);
    }
    for site in operations(doc) {
        site.get_mut(doc)["security"] = json!([{ "ApiKeyHeader": [] }]);
    }
    if let Some(components) = doc.get_mut("components").and_then(Value::as_object_mut) {
        object_entry(components, "securitySchemes").insert(
            "ApiKeyHeader".into(),
            json!({ "type": "apiKey", "in": "header", "name": "x-api-key" }),
        );
    }
    Ok(changed)
}

/// Removes the header parameter `header` (any case) from every operation.
fn drop_header_parameter(doc: &mut Value, header: &str) -> Vec<JsonPath> {
    let mut changed = Vec::new();
    for site in operations(doc) {
        let operation = site.get_mut(doc);
        let Some(parameters) = operation
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
                changed.push(site.path.key("parameters").index(index));
            }
            index += 1;
            !matches
        });
    }
    changed
}

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

fn known(site: &OperationSite) -> Option<&'static KnownOperation> {
    KNOWN_OPERATIONS
        .iter()
        .find(|known| known.method == site.method && known.route == site.route)
}

/// Upstream names the refresh POST `refresh_token_get`, and may rename it at any time (the
/// operation id is the generator's, not part of the HTTP API). The hand-written layer calls the
/// operation at its method and path: whichever operation is there gets the name the crate gives
/// it (`refresh_tokens`, `create_tokens`), whatever upstream called it, and the rename is
/// reported by path. An operation id that ends in `_get` on any other method describes FastAPI's
/// default naming, not the operation: the misleading `_get` is stripped from unknown ones.
pub fn rename_operations(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    let mut changed = Vec::new();
    for site in operations(doc) {
        let operation = site.get_mut(doc);
        let id = operation
            .get("operationId")
            .and_then(Value::as_str)
            .map(ToString::to_string);
        let id = id.as_deref();
        let name = match known(&site) {
            Some(known) if id != Some(known.name) => known.name.to_string(),
            Some(_) => continue,
            None => match id {
                Some(id) if site.method != "get" && id.ends_with("_get") => {
                    id.trim_end_matches("_get").to_string()
                }
                _ => continue,
            },
        };
        if let Some(id) = id {
            // Kept for the change report: upstream renaming it is news, though nothing breaks.
            operation[UPSTREAM_ID] = json!(id);
        }
        operation["operationId"] = json!(name);
        changed.push(site.path.key("operationId"));
    }
    Ok(changed)
}

/// The extension under which a renamed operation keeps upstream's `operationId`.
pub const UPSTREAM_ID: &str = "x-genlogs-upstream-operation-id";

/// Upstream's page documents the refresh 401 with text copied from the create-token page ("the
/// provided email, and password"). The generated method's docs come from the operation's
/// `description`: give known operations an accurate one where upstream has none.
pub fn document_operations(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    let mut changed = Vec::new();
    for site in operations(doc) {
        let Some(known) = known(&site) else {
            continue;
        };
        let operation = site.get_mut(doc);
        if operation.get("description").is_none() {
            operation["description"] = json!(known.description);
            changed.push(site.path.key("description"));
        }
    }
    Ok(changed)
}

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
/// content, including any upstream declared without content or with a schema of its own:
/// progenitor hands the hand-written layer the raw body, which reads it under a size cap and
/// decodes it by status (422 still as `HTTPValidationError`, whose schema stays referenced).
pub fn declare_error_statuses(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
    let mut changed = Vec::new();
    for site in operations(doc) {
        let responses_path = site.path.key("responses");
        let Some(operation) = site.get_mut(doc).as_object_mut() else {
            continue;
        };
        let responses = object_entry(operation, "responses");
        for (status, response) in responses.iter_mut() {
            if status.starts_with('2') || status == "default" {
                continue;
            }
            let Some(response) = response.as_object_mut() else {
                continue;
            };
            let content = object_entry(response, "content");
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
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quirks::testing::{assert_fixes, rendered};

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

    #[test]
    fn header_parameters_accept_and_api_key_leave_the_call_signature() {
        let parameters = json!([
            { "name": "Accept", "in": "header", "required": true, "schema": { "type": "string" } },
            { "name": "x-api-key", "in": "header", "required": true, "schema": { "type": "string" } },
            { "name": "refresh_token", "in": "query", "required": true, "schema": { "type": "string" } }
        ]);
        let mut doc = operation(parameters, json!({}));
        // Each removes the parameter that is first by then.
        let first = "$.paths['/token/refresh'].post.parameters[0]";
        assert_fixes(drop_accept_parameter, &mut doc, &[first]);
        assert_fixes(api_key_as_security_scheme, &mut doc, &[first]);
        let op = doc.pointer("/paths/~1token~1refresh/post").unwrap();
        assert_eq!(op["parameters"].as_array().unwrap().len(), 1);
        assert_eq!(op["parameters"][0]["name"], "refresh_token");
        assert_eq!(op["security"], json!([{ "ApiKeyHeader": [] }]));
        assert_eq!(
            doc.pointer("/components/securitySchemes/ApiKeyHeader/name")
                .unwrap(),
            "x-api-key"
        );
    }

    #[test]
    fn operations_named_get_on_a_post_are_renamed() {
        let mut doc = operation(json!([]), json!({}));
        doc["paths"]["/other"] = json!({
            "post": { "operationId": "thing_get", "responses": {} },
            "get": { "operationId": "list_get", "responses": {} }
        });
        assert_fixes(
            rename_operations,
            &mut doc,
            &[
                "$.paths['/token/refresh'].post.operationId",
                "$.paths['/other'].post.operationId",
            ],
        );
        assert_eq!(
            doc["paths"]["/token/refresh"]["post"]["operationId"],
            "refresh_tokens"
        );
        assert_eq!(doc["paths"]["/other"]["post"]["operationId"], "thing");
        assert_eq!(doc["paths"]["/other"]["get"]["operationId"], "list_get");
    }

    #[test]
    fn the_refresh_operation_is_named_by_its_method_and_path_whatever_upstream_calls_it() {
        for upstream in [
            json!("refreshTokens"),
            json!("refresh_token_post"),
            Value::Null,
        ] {
            let mut doc = operation(json!([]), json!({}));
            let op = &mut doc["paths"]["/token/refresh"]["post"];
            match &upstream {
                Value::Null => {
                    op.as_object_mut().unwrap().shift_remove("operationId");
                }
                id => op["operationId"] = id.clone(),
            }
            assert_eq!(
                rendered(&rename_operations(&mut doc).unwrap()),
                ["$.paths['/token/refresh'].post.operationId"],
                "{upstream}"
            );
            let op = &doc["paths"]["/token/refresh"]["post"];
            assert_eq!(op["operationId"], "refresh_tokens");
            let kept = if upstream.is_null() {
                None
            } else {
                Some(&upstream)
            };
            assert_eq!(
                op.get(UPSTREAM_ID),
                kept,
                "upstream's id is kept for the report"
            );
        }
    }

    #[test]
    fn error_statuses_are_declared_with_raw_bodies() {
        let responses = json!({
            "200": { "description": "ok", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/A" } } } },
            "422": { "description": "Validation Error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/V" } } } }
        });
        let mut doc = operation(json!([]), responses);
        let changed = rendered(&declare_error_statuses(&mut doc).unwrap());
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
        assert!(declare_error_statuses(&mut doc).unwrap().is_empty());
    }

    #[test]
    fn known_operations_get_accurate_docs_unless_upstream_wrote_some() {
        let mut doc = operation(json!([]), json!({}));
        assert_fixes(
            document_operations,
            &mut doc,
            &["$.paths['/token/refresh'].post.description"],
        );
        let description = doc["paths"]["/token/refresh"]["post"]["description"]
            .as_str()
            .unwrap();
        assert!(description.contains("401 means the refresh token was rejected"));
        assert!(description.contains("does not concern an email or password"));
    }
}
