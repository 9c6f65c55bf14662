//! The hand-written layer's contract with the generated code: the few things `genlogs-auth`
//! names by hand, checked on the corrected document before any code is generated.
//!
//! The library reads the generated types only where it must: `AuthClient::refresh` calls
//! `refresh_tokens_required(refresh_token)` (the generated method with `None` for any optional
//! parameter), `Session::from_response` reads the two token objects, and the
//! error layer decodes FastAPI's 422 body. Everything else (`user_id`, `company_id`, new fields)
//! is carried whole in the generated `AuthenticationResponse` and follows the spec by itself. If
//! upstream changes one of the named things, the build stops here with the JSON path, what the
//! hand-written code expects, what the document now says, and the file to change, instead of a
//! type error deep in generated code.

use serde_json::Value;

use crate::walk::{operations, type_name};
use crate::{JsonPath, SpecError};

/// The operation the client calls, and the generated method it calls.
const REFRESH: (&str, &str, &str) = ("post", "/token/refresh", "refresh_tokens");
/// Its required arguments, in order (optional ones may come and go).
const REFRESH_PARAMETERS: &[&str] = &["refresh_token"];
const CLIENT: &str = "src/client.rs (AuthClient::refresh)";
const SESSION: &str = "src/session.rs (Session::from_response)";
const ERRORS: &str = "src/response.rs (validation_problems)";

/// A body the hand-written code decodes into a generated type it names.
struct Body {
    status: &'static str,
    type_name: &'static str,
    reader: &'static str,
}

const BODIES: &[Body] = &[
    Body {
        status: "200",
        type_name: "AuthenticationResponse",
        reader: SESSION,
    },
    Body {
        status: "422",
        type_name: "HTTPValidationError",
        reader: ERRORS,
    },
];

/// What a field must be for the hand-written code that reads it.
#[derive(Clone, Copy)]
enum Shape {
    /// Exactly this type phrase ([`type_name`]), e.g. `string(password)`.
    Is(&'static str),
    /// An object (inline or referenced), read field by field.
    Object,
    /// An array, read item by item.
    Array,
}

/// One field the hand-written code reads: from a [`Body`]'s type, through `fields` (`[]` steps
/// into array items).
struct Need {
    body: &'static str,
    fields: &'static [&'static str],
    required: bool,
    shape: Shape,
    reader: &'static str,
}

const NEEDS: &[Need] = &[
    Need {
        body: "AuthenticationResponse",
        fields: &["access_token_data"],
        required: true,
        shape: Shape::Object,
        reader: SESSION,
    },
    Need {
        body: "AuthenticationResponse",
        fields: &["access_token_data", "token"],
        required: true,
        shape: Shape::Is("string(password)"),
        reader: SESSION,
    },
    Need {
        body: "AuthenticationResponse",
        fields: &["access_token_data", "expires"],
        required: true,
        shape: Shape::Is("string(date-time)"),
        reader: SESSION,
    },
    Need {
        body: "AuthenticationResponse",
        fields: &["refresh_token_data"],
        required: true,
        shape: Shape::Object,
        reader: SESSION,
    },
    Need {
        body: "AuthenticationResponse",
        fields: &["refresh_token_data", "token"],
        required: true,
        shape: Shape::Is("string(password)"),
        reader: SESSION,
    },
    Need {
        body: "AuthenticationResponse",
        fields: &["refresh_token_data", "expires"],
        required: true,
        shape: Shape::Is("string(date-time)"),
        reader: SESSION,
    },
    // An absent `detail` is an empty list (typify's default for an optional array).
    Need {
        body: "HTTPValidationError",
        fields: &["detail"],
        required: false,
        shape: Shape::Array,
        reader: ERRORS,
    },
    Need {
        body: "HTTPValidationError",
        fields: &["detail", "[]", "loc"],
        required: true,
        shape: Shape::Array,
        reader: ERRORS,
    },
    Need {
        body: "HTTPValidationError",
        fields: &["detail", "[]", "msg"],
        required: true,
        shape: Shape::Is("string"),
        reader: ERRORS,
    },
    Need {
        body: "HTTPValidationError",
        fields: &["detail", "[]", "type"],
        required: true,
        shape: Shape::Is("string"),
        reader: ERRORS,
    },
];

/// Checks the corrected document against everything the hand-written layer names.
pub fn check(doc: &Value) -> Result<(), SpecError> {
    let (method, route, id) = REFRESH;
    let Some(site) = operations(doc)
        .into_iter()
        .find(|site| site.method == method && site.route == route)
    else {
        let paths = JsonPath::root().key("paths");
        let at = match paths.key(route).get(doc) {
            Some(_) => paths.key(route),
            None => paths,
        };
        return Err(broken(
            at,
            CLIENT,
            &format!("calls `{} {route}`", method.to_uppercase()),
            "the document no longer has it",
        ));
    };
    let operation = site.get(doc);
    let actual_id = operation.get("operationId").and_then(Value::as_str);
    if actual_id != Some(id) {
        return Err(broken(
            site.path.key("operationId"),
            CLIENT,
            &format!("calls the generated method `{id}`"),
            &format!("the operation is now named {actual_id:?}"),
        ));
    }
    // Only the required ones: the layer calls the generated method through
    // `refresh_tokens_required` (generate.rs), which passes `None` for every optional one.
    let parameters: Vec<&str> = operation
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|p| p.get("required").and_then(Value::as_bool) == Some(true))
        .filter_map(|p| p.get("name").and_then(Value::as_str))
        .collect();
    if parameters != REFRESH_PARAMETERS {
        return Err(broken(
            site.path.key("parameters"),
            CLIENT,
            &format!("calls `{id}({})`", REFRESH_PARAMETERS.join(", ")),
            &format!(
                "its required parameters are now ({}), so the generated method takes other arguments",
                parameters.join(", ")
            ),
        ));
    }
    let refresh_token = operation
        .get("parameters")
        .and_then(Value::as_array)
        .and_then(|list| {
            list.iter()
                .position(|p| p.get("name").and_then(Value::as_str) == Some(REFRESH_PARAMETERS[0]))
        });
    if let Some(index) = refresh_token {
        let at = site.path.key("parameters").index(index).key("schema");
        let phrase = at.get(doc).map_or_else(|| "any".into(), type_name);
        if phrase != "string" {
            return Err(broken(
                at,
                CLIENT,
                &format!("passes `{}` as a string", REFRESH_PARAMETERS[0]),
                &format!("the document now says {phrase}"),
            ));
        }
    }
    check_api_key(doc, &site)?;
    for body in BODIES {
        let at = site.path.key("responses").key(body.status);
        let content = at.get(doc).and_then(|r| r.get("content"));
        let schema = content
            .and_then(Value::as_object)
            .and_then(|media| media.values().find_map(|m| m.get("schema")));
        let named = schema.map(type_name);
        let json = content
            .and_then(Value::as_object)
            .is_some_and(|media| media.contains_key("application/json"))
            // Error bodies are read raw (`*/*`, declare_error_statuses) and decoded by hand.
            || !body.status.starts_with('2');
        if !json {
            return Err(broken(
                at.key("content"),
                body.reader,
                &format!("decodes the {} body as JSON", body.status),
                "it has no JSON media type, so the generated client would hand over raw bytes",
            ));
        }
        if named.as_deref() != Some(body.type_name) {
            return Err(broken(
                at,
                body.reader,
                &format!(
                    "decodes the {} body as the generated `{}`",
                    body.status, body.type_name
                ),
                &format!(
                    "the body's type is now {}",
                    named.as_deref().unwrap_or("none")
                ),
            ));
        }
    }
    NEEDS.iter().try_for_each(|need| check_need(doc, need))
}

/// The api key the hand-written transport sends on every request.
const API_KEY: &str = "x-api-key";
const TRANSPORT: &str = "src/transport.rs (API_KEY_HEADER)";

/// The refresh operation's security (its own, or the document's) must be one the client meets:
/// an alternative of nothing but `apiKey` schemes in the header [`API_KEY`], or none at all.
fn check_api_key(doc: &Value, site: &crate::walk::OperationSite) -> Result<(), SpecError> {
    let operation = site.get(doc);
    let (at, requirements) = match operation.get("security") {
        Some(list) => (site.path.key("security"), list),
        None => match doc.get("security") {
            Some(list) => (JsonPath::root().key("security"), list),
            None => return Ok(()),
        },
    };
    let Some(alternatives) = requirements.as_array() else {
        return Ok(());
    };
    let schemes = doc.pointer("/components/securitySchemes");
    let describe = |name: &str| -> String {
        match schemes.and_then(|s| s.get(name)) {
            Some(scheme) => crate::walk::security_scheme_phrase(scheme),
            None => format!("an undeclared scheme `{name}`"),
        }
    };
    let sent = format!("apiKey header {API_KEY}");
    let met = |alternative: &Value| {
        alternative
            .as_object()
            .is_some_and(|names| names.keys().all(|name| describe(name) == sent))
    };
    if alternatives.is_empty() || alternatives.iter().any(met) {
        return Ok(());
    }
    let asked: Vec<String> = alternatives
        .iter()
        .filter_map(Value::as_object)
        .map(|names| {
            names
                .keys()
                .map(|n| describe(n))
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .collect();
    Err(broken(
        at,
        TRANSPORT,
        &format!("authenticates with the `{API_KEY}` header (an apiKey scheme)"),
        &format!("the operation now asks for {}", asked.join(" or ")),
    ))
}

fn check_need(doc: &Value, need: &Need) -> Result<(), SpecError> {
    let schemas = JsonPath::root().key("components").key("schemas");
    let mut at = schemas.key(need.body);
    let mut dotted = need.body.to_string();
    for field in need.fields {
        if *field != "[]" {
            dotted.push('.');
        }
        dotted.push_str(field);
    }
    let (last, parents) = need.fields.split_last().expect("a need names a field");
    for field in parents {
        (at, _) = resolve(doc, at);
        at = if *field == "[]" {
            at.key("items")
        } else {
            at.key("properties").key(field)
        };
    }
    let (parent, parent_schema) = resolve(doc, at);
    let expects = match need.shape {
        Shape::Is(phrase) => format!("reads `{dotted}` as {phrase}"),
        Shape::Object => format!("reads `{dotted}` as an object"),
        Shape::Array => format!("reads `{dotted}` as an array"),
    };
    let field_at = parent.key("properties").key(last);
    let Some(field) = parent_schema.and_then(|s| s.pointer(&format!("/properties/{last}"))) else {
        return Err(broken(
            parent,
            need.reader,
            &expects,
            "the document no longer has it",
        ));
    };
    let required = parent_schema
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .is_some_and(|list| list.iter().any(|name| name == *last));
    if need.required && !required {
        return Err(broken(
            field_at,
            need.reader,
            &format!("{expects}, always present"),
            "it is optional (it would be generated as `Option<…>`)",
        ));
    }
    let phrase = type_name(field);
    if phrase.ends_with('?') {
        return Err(broken(
            field_at,
            need.reader,
            &expects,
            &format!("it is nullable ({phrase}; it would be generated as `Option<…>`)"),
        ));
    }
    let (_, resolved) = resolve(doc, field_at.clone());
    let kind = resolved.and_then(|s| s.get("type")).and_then(Value::as_str);
    let fits = match need.shape {
        Shape::Is(expected) => phrase == expected,
        Shape::Object => {
            kind == Some("object") || resolved.is_some_and(|s| s.get("properties").is_some())
        }
        Shape::Array => kind == Some("array"),
    };
    if !fits {
        return Err(broken(
            field_at,
            need.reader,
            &expects,
            &format!("the document now says {phrase}"),
        ));
    }
    Ok(())
}

/// Follows `$ref`s (and a lone `allOf` member) from `at` to the schema they name.
fn resolve(doc: &Value, mut at: JsonPath) -> (JsonPath, Option<&Value>) {
    for _ in 0..16 {
        let Some(schema) = at.get(doc) else {
            return (at, None);
        };
        let reference = schema.get("$ref").and_then(Value::as_str).or_else(|| {
            match schema
                .get("allOf")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
            {
                Some([only]) => only.get("$ref").and_then(Value::as_str),
                _ => None,
            }
        });
        match reference.and_then(|r| r.strip_prefix("#/components/schemas/")) {
            Some(name) => at = JsonPath::root().key("components").key("schemas").key(name),
            None => return (at, Some(schema)),
        }
    }
    (at.clone(), at.get(doc))
}

fn broken(at: JsonPath, reader: &str, expects: &str, now: &str) -> SpecError {
    SpecError::new(
        at,
        format!(
            "(after the quirk pass) the hand-written {reader} {expects}, but {now}. Change {reader} \
             for the new document, then the contract in codegen/src/contract.rs"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quirks::generator::rename_media_type;
    use serde_json::json;

    /// The corrected document's parts that the contract reads, as the quirk pass leaves them.
    fn document() -> Value {
        let token = |format: &str| json!({ "type": "string", "format": format });
        json!({
            "paths": { "/token/refresh": { "post": {
                "operationId": "refresh_tokens",
                "parameters": [{ "name": "refresh_token", "in": "query", "required": true, "schema": { "type": "string" } }],
                "responses": {
                    "200": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/AuthenticationResponse" } } } },
                    "422": { "content": { "*/*": { "schema": { "$ref": "#/components/schemas/HTTPValidationError" } } } }
                }
            }}},
            "components": { "schemas": {
                "AuthenticationResponse": {
                    "type": "object",
                    "required": ["access_token_data", "refresh_token_data", "user_id"],
                    "properties": {
                        "access_token_data": { "$ref": "#/components/schemas/TokenSchema" },
                        "refresh_token_data": { "$ref": "#/components/schemas/TokenSchema" },
                        "user_id": { "type": "string" }
                    }
                },
                "TokenSchema": {
                    "type": "object",
                    "required": ["token", "expires"],
                    "properties": { "token": token("password"), "expires": token("date-time") }
                },
                "HTTPValidationError": { "type": "object", "properties": {
                    "detail": { "type": "array", "items": { "$ref": "#/components/schemas/ValidationError" } }
                }},
                "ValidationError": {
                    "type": "object",
                    "required": ["loc", "msg", "type"],
                    "properties": {
                        "loc": { "type": "array", "items": { "type": "string" } },
                        "msg": { "type": "string" },
                        "type": { "type": "string" }
                    }
                }
            }}
        })
    }

    fn error_after(edit: impl FnOnce(&mut Value)) -> String {
        let mut doc = document();
        edit(&mut doc);
        check(&doc).unwrap_err().to_string()
    }

    fn token_schema(doc: &mut Value) -> &mut Value {
        &mut doc["components"]["schemas"]["TokenSchema"]
    }

    /// Asserts that `error` names the JSONPath `path` as where the document breaks the contract.
    fn assert_at(error: &str, path: &str) {
        let prefix = format!("openapi.json at {path}: ");
        assert!(error.starts_with(&prefix), "{error}");
    }

    /// Asserts that `error` says each of `parts`.
    fn assert_says(error: &str, parts: &[&str]) {
        for part in parts {
            assert!(error.contains(part), "no {part:?} in: {error}");
        }
    }

    #[test]
    fn the_fields_the_layer_does_not_name_may_come_and_go() {
        check(&document()).unwrap();
        let mut doc = document();
        let response = &mut doc["components"]["schemas"]["AuthenticationResponse"];
        response["properties"]
            .as_object_mut()
            .unwrap()
            .shift_remove("user_id");
        response["properties"]["scope"] = json!({ "type": "string", "nullable": true });
        token_schema(&mut doc)["properties"]["kind"] = json!({ "type": "string" });
        check(&doc).unwrap();
    }

    #[test]
    fn a_removed_token_field_names_the_field_and_the_file_to_change() {
        let error = error_after(|doc| {
            token_schema(doc)["properties"]
                .as_object_mut()
                .unwrap()
                .shift_remove("expires");
        });
        assert_at(&error, "$.components.schemas.TokenSchema");
        assert_says(
            &error,
            &[
                "reads `AuthenticationResponse.access_token_data.expires` as string(date-time)",
                "no longer has it",
                "Change src/session.rs (Session::from_response)",
                "codegen/src/contract.rs",
            ],
        );
    }

    #[test]
    fn an_optional_or_nullable_token_is_refused_by_path() {
        let optional = error_after(|doc| {
            token_schema(doc)["required"] = json!(["expires"]);
        });
        assert_at(
            &optional,
            "$.components.schemas.TokenSchema.properties.token",
        );
        assert_says(&optional, &["it is optional"]);
        let nullable = error_after(|doc| {
            token_schema(doc)["properties"]["token"]["nullable"] = json!(true);
        });
        assert_says(&nullable, &["it is nullable (string(password)?"]);
    }

    #[test]
    fn a_retyped_token_field_says_what_it_is_now() {
        let error = error_after(|doc| {
            token_schema(doc)["properties"]["expires"] = json!({ "type": "integer" });
        });
        assert_says(&error, &["the document now says integer"]);
        let object = error_after(|doc| {
            doc["components"]["schemas"]["AuthenticationResponse"]["properties"]
                ["refresh_token_data"] = json!({ "type": "string" });
        });
        assert_says(
            &object,
            &["reads `AuthenticationResponse.refresh_token_data` as an object"],
        );
    }

    #[test]
    fn a_changed_call_or_a_new_required_parameter_names_the_client() {
        let renamed = error_after(|doc| {
            doc["paths"]["/token/refresh"]["post"]["operationId"] = json!("refresh");
        });
        assert_says(&renamed, &["calls the generated method `refresh_tokens`"]);
        let parameter = error_after(|doc| {
            doc["paths"]["/token/refresh"]["post"]["parameters"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "name": "scope", "in": "query", "required": true, "schema": { "type": "string" } }));
        });
        assert_at(&parameter, "$.paths['/token/refresh'].post.parameters");
        assert_says(&parameter, &["now (refresh_token, scope)", "src/client.rs"]);
        // An optional one is passed as `None` by the generated `refresh_tokens_required`.
        let mut optional = document();
        for (name, place) in [("scope", "query"), ("x-request-id", "header")] {
            optional["paths"]["/token/refresh"]["post"]["parameters"]
                .as_array_mut()
                .unwrap()
                .push(json!({ "name": name, "in": place, "schema": { "type": "string" } }));
        }
        assert!(check(&optional).is_ok());
        let body = error_after(|doc| {
            doc["paths"]["/token/refresh"]["post"]["responses"]["200"]["content"]
                ["application/json"]["schema"] = json!({ "$ref": "#/components/schemas/Tokens" });
        });
        assert_says(&body, &["the body's type is now Tokens"]);
    }

    #[test]
    fn the_api_key_the_transport_sends_is_part_of_the_contract() {
        let scheme = |name: &str| json!({ "type": "apiKey", "in": "header", "name": name });
        let mut doc = document();
        doc["paths"]["/token/refresh"]["post"]["security"] = json!([{ "Key": [] }]);
        doc["components"]["securitySchemes"] = json!({ "Key": scheme("X-API-Key") });
        check(&doc).unwrap();
        doc["components"]["securitySchemes"]["Key"] = scheme("X-Genlogs-Key");
        let error = check(&doc).unwrap_err().to_string();
        assert_at(&error, "$.paths['/token/refresh'].post.security");
        assert_says(
            &error,
            &[
                "asks for apiKey header x-genlogs-key",
                "Change src/transport.rs (API_KEY_HEADER)",
            ],
        );
        doc["components"]["securitySchemes"]["Bearer"] =
            json!({ "type": "http", "scheme": "bearer" });
        doc["paths"]["/token/refresh"]["post"]["security"] = json!([{ "Bearer": [] }, {}]);
        check(&doc).unwrap();
    }

    #[test]
    fn a_refresh_token_that_is_no_string_or_a_body_that_is_no_json_is_refused_by_path() {
        let retyped = error_after(|doc| {
            doc["paths"]["/token/refresh"]["post"]["parameters"][0]["schema"] =
                json!({ "type": "integer" });
        });
        assert_at(
            &retyped,
            "$.paths['/token/refresh'].post.parameters[0].schema",
        );
        assert_says(
            &retyped,
            &["passes `refresh_token` as a string, but the document now says integer"],
        );
        let xml = error_after(|doc| {
            let content =
                &mut doc["paths"]["/token/refresh"]["post"]["responses"]["200"]["content"];
            rename_media_type(
                content.as_object_mut().unwrap(),
                "application/json",
                "application/xml",
            )
            .unwrap();
        });
        assert_at(
            &xml,
            "$.paths['/token/refresh'].post.responses['200'].content",
        );
        assert_says(&xml, &["has no JSON media type"]);
        let gone = error_after(|doc| {
            let item = doc["paths"]["/token/refresh"].as_object_mut().unwrap();
            let post = item.shift_remove("post").unwrap();
            item.insert("put".into(), post);
        });
        assert_at(&gone, "$.paths['/token/refresh']");
        assert_says(
            &gone,
            &[
                "calls `POST /token/refresh`",
                "Change src/client.rs (AuthClient::refresh)",
            ],
        );
    }

    #[test]
    fn the_validation_body_is_part_of_the_contract() {
        let error = error_after(|doc| {
            doc["components"]["schemas"]["ValidationError"]["required"] = json!(["loc", "type"]);
        });
        assert_says(
            &error,
            &["`HTTPValidationError.detail[].msg`", "src/response.rs"],
        );
    }
}
