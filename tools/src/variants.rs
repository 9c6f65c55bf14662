//! The upstream changes the pipeline is proven against, each made from the current
//! `openapi.json`: the likely edits GenLogs may publish, and what must follow from each (the
//! crate builds with zero hand edits, with this line in the change report and this line in
//! `surface.txt`; or the build fails with this message).
//!
//! The root crate's tests run the pipeline on each (`tests/codegen/variants.rs`); the
//! `spec-variants` binary writes them out for `.ci/variants.sh`, which builds the whole library
//! on each.

use genlogs_auth_codegen::quirks::generator::rename_media_type;
use serde_json::{json, Value};

/// One upstream change.
#[derive(Debug, Clone)]
pub struct Variant {
    /// A file-name-safe identifier, e.g. `optional-field`.
    pub name: &'static str,
    /// What upstream changed, for people.
    pub what: &'static str,
    /// The changed document's text.
    pub text: String,
    /// What must follow.
    pub expect: Expect,
}

/// What must follow from a [`Variant`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// The crate builds unchanged.
    Builds {
        /// A whole line of `spec-diff`'s text report from upstream to this variant.
        report: String,
        /// A whole line of the variant's `surface.txt`.
        surface: String,
        /// Text the generated code contains.
        code: &'static str,
    },
    /// The build fails with an error that starts with this text.
    Fails {
        /// The start of the build's error.
        error: String,
    },
}

/// Loopback tests (`tests/it`) `.ci/variants.sh` also runs on a variant's copy of the crate, where
/// building is not proof enough: (variant, test path).
pub const LOOPBACK_TESTS: &[(&str, &str)] = &[(
    "response-enum-field",
    "client_refresh::a_value_the_document_does_not_list_decodes_and_every_refresh_succeeds",
)];

const NO_CHANGES: &str = "API changes: 0 (0 breaking, 0 non-breaking)";
const REFRESH: &str = "/paths/~1token~1refresh/post";
const RESPONSE: &str = "/components/schemas/AuthenticationResponse";

/// Every variant of `upstream` (the text of `openapi.json`).
pub fn all(upstream: &str) -> Result<Vec<Variant>, String> {
    let doc: Value = serde_json::from_str(upstream).map_err(|e| format!("openapi.json: {e}"))?;
    let edit = |change: &dyn Fn(&mut Value) -> Option<()>| -> Result<String, String> {
        let mut copy = doc.clone();
        change(&mut copy).ok_or("openapi.json no longer has the shape the variants edit")?;
        Ok(serde_json::to_string_pretty(&copy).expect("a Value always serializes"))
    };
    // A new optional parameter of the refresh operation: `location` (query, header, cookie),
    // with `schema`.
    let with_parameter = |name: &str, location: &str, schema: Value| {
        edit(&|d| {
            d.pointer_mut(&format!("{REFRESH}/parameters"))?
                .as_array_mut()?
                .push(json!({ "name": name, "in": location, "required": false, "schema": schema }));
            Some(())
        })
    };
    // A new field of the refresh response, with `schema`.
    let with_field = |name: &str, schema: Value| {
        edit(&|d| {
            d.pointer_mut(&format!("{RESPONSE}/properties"))?[name] = schema.clone();
            Some(())
        })
    };
    // The refresh operation's `key` set to `value`.
    let with_operation = |key: &str, value: Value| {
        edit(&|d| {
            d.pointer_mut(REFRESH)?[key] = value.clone();
            Some(())
        })
    };
    // The `x-api-key` parameter moved to an apiKey security scheme sending the header `header`.
    let api_key_scheme = |header: &str| {
        edit(&|d| {
            let operation = d.pointer_mut(REFRESH)?;
            operation["parameters"]
                .as_array_mut()?
                .retain(|p| p["name"] != "x-api-key");
            operation["security"] = json!([{ "APIKeyHeader": [] }]);
            d.pointer_mut("/components")?["securitySchemes"] =
                json!({ "APIKeyHeader": { "type": "apiKey", "in": "header", "name": header } });
            Some(())
        })
    };
    // The 200 body moved from `application/json` to the media type `media`.
    let body_media_type = |media: &str| {
        edit(&|d| {
            let content = d.pointer_mut(&format!("{REFRESH}/responses/200/content"))?;
            rename_media_type(content.as_object_mut()?, "application/json", media)
        })
    };
    let builds = |report: &str, surface: &str, code: &'static str| Expect::Builds {
        report: report.to_string(),
        surface: surface.to_string(),
        code,
    };
    let truncated = &upstream[..upstream.len() / 2];
    let (line, column) = end_position(truncated);
    Ok(vec![
        Variant {
            name: "minified",
            what: "the same document, minified",
            text: serde_json::to_string(&doc).expect("a Value always serializes"),
            expect: builds(NO_CHANGES, "quirk fix downgrade_openapi_31: applied at $.openapi", "pub async fn refresh_tokens<'a>("),
        },
        Variant {
            name: "items-fixed",
            what: "upstream fixes the `items` quirk",
            text: edit(&|d| {
                let properties = d.pointer_mut(&format!("{RESPONSE}/properties"))?;
                properties["access_token_data"] = json!({ "$ref": "#/components/schemas/AccessTokenSchema" });
                properties["refresh_token_data"] = json!({ "$ref": "#/components/schemas/RefreshTokenSchema" });
                Some(())
            })?,
            expect: builds(NO_CHANGES, "quirk fix inline_items_on_object: found nothing to fix", "pub access_token_data: TokenSchema"),
        },
        Variant {
            name: "optional-field",
            what: "a new optional string field",
            text: with_field("scope", json!({ "type": "string", "title": "scope" }))?,
            expect: builds(
                "ok       optional-field-added         AuthenticationResponse.scope: string",
                "  field scope: string (optional)",
                "pub scope: ::std::option::Option<::std::string::String>",
            ),
        },
        Variant {
            name: "anyof-null-field",
            what: "a new field via `anyOf [string, null]` (FastAPI's Optional)",
            text: with_field("nickname", json!({ "anyOf": [{ "type": "string" }, { "type": "null" }], "title": "Nickname" }))?,
            expect: builds(
                "ok       optional-field-added         AuthenticationResponse.nickname: string?",
                "3.1 translation translate_null_unions: applied at $.components.schemas.AuthenticationResponse.properties.nickname.anyOf",
                "pub nickname: ::std::option::Option<::std::string::String>",
            ),
        },
        Variant {
            name: "type-array-null-field",
            what: "a new field via `type: [string, \"null\"]`",
            text: with_field("email", json!({ "type": ["string", "null"], "title": "email" }))?,
            expect: builds(
                "ok       optional-field-added         AuthenticationResponse.email: string?",
                "3.1 translation translate_type_arrays: applied at $.components.schemas.AuthenticationResponse.properties.email.type",
                "pub email: ::std::option::Option<::std::string::String>",
            ),
        },
        Variant {
            name: "required-field-removed",
            what: "a required field the hand-written layer does not need (`company_id`) removed",
            text: edit(&|d| {
                let response = d.pointer_mut(RESPONSE)?;
                response["properties"].as_object_mut()?.shift_remove("company_id")?;
                response["required"].as_array_mut()?.retain(|name| name != "company_id");
                Some(())
            })?,
            expect: builds(
                "BREAKING response-field-removed       AuthenticationResponse.company_id: integer",
                "type AuthenticationResponse (object)",
                "pub struct AuthenticationResponse {",
            ),
        },
        Variant {
            name: "create-token-added",
            what: "the create-token operation (`POST /token`, `email` and `password`) added",
            text: edit(&|d| {
                let mut create = d.pointer(REFRESH)?.clone();
                create["summary"] = json!("Create the AccessToken And Refresh Token");
                create["operationId"] = json!("token_get");
                let parameters = create["parameters"].as_array_mut()?;
                parameters.retain(|p| p["name"] != "refresh_token");
                for name in ["email", "password"] {
                    parameters.push(json!({ "name": name, "in": "query", "required": true, "schema": { "type": "string", "title": name } }));
                }
                d["paths"]["/token"] = json!({ "post": create });
                Some(())
            })?,
            expect: builds(
                "ok       operation-added              POST /token: new method `create_tokens`",
                "operation POST /token (create_tokens)",
                "pub async fn create_tokens<'a>(",
            ),
        },
        Variant {
            name: "optional-query-parameter",
            what: "a new optional query parameter (FastAPI's `scope: str | None = None`)",
            text: with_parameter("scope", "query", json!({ "anyOf": [{ "type": "string" }, { "type": "null" }], "title": "Scope" }))?,
            expect: builds(
                "ok       optional-parameter-added     POST /token/refresh parameter scope: query string",
                "  parameter query scope: string (optional)",
                "scope: Option<&'a str>",
            ),
        },
        Variant {
            name: "optional-header-parameter",
            what: "a new optional header parameter (`x-request-id`)",
            text: with_parameter("x-request-id", "header", json!({ "type": "string", "title": "X-Request-Id" }))?,
            expect: builds(
                "ok       optional-parameter-added     POST /token/refresh parameter x-request-id: header string",
                "  parameter header x-request-id: string (optional)",
                "x_request_id: Option<&'a str>",
            ),
        },
        Variant {
            name: "second-error-schema",
            what: "a second error schema on the operation (401 `{detail: string}`)",
            text: edit(&|d| {
                d.pointer_mut(&format!("{REFRESH}/responses"))?["401"] = json!({
                    "description": "Unauthorized",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/HTTPError" } } }
                });
                d.pointer_mut("/components/schemas")?["HTTPError"] = json!({
                    "properties": { "detail": { "type": "string", "title": "Detail" } },
                    "type": "object", "required": ["detail"], "title": "HTTPError"
                });
                Some(())
            })?,
            expect: builds(
                "ok       response-body-changed        POST /token/refresh response 401: */* -> */* HTTPError",
                "  response 401: */* HTTPError",
                "pub struct HttpError {",
            ),
        },
        Variant {
            name: "api-key-security-scheme",
            what: "`x-api-key` moved to a `securitySchemes` entry",
            text: api_key_scheme("x-api-key")?,
            expect: builds(NO_CHANGES, "quirk fix api_key_as_security_scheme: found nothing to fix", "pub async fn refresh_tokens<'a>("),
        },
        Variant {
            name: "openapi-3.0.3",
            what: "`openapi: 3.0.3` declared",
            text: edit(&|d| {
                d["openapi"] = json!("3.0.3");
                Some(())
            })?,
            expect: builds(NO_CHANGES, "quirk fix downgrade_openapi_31: found nothing to fix", "pub async fn refresh_tokens<'a>("),
        },
        // Issue 24: what real generators emit, and the change report's classes.
        Variant {
            name: "optional-header-anyof-null",
            what: "a new optional header parameter in FastAPI's 3.1 form (`anyOf [string, null]`)",
            text: with_parameter("x-correlation-id", "header", json!({ "anyOf": [{ "type": "string" }, { "type": "null" }], "title": "X-Correlation-Id" }))?,
            expect: builds(
                "ok       optional-parameter-added     POST /token/refresh parameter x-correlation-id: header string",
                "  parameter header x-correlation-id: string (optional)",
                "x_correlation_id: Option<&'a str>",
            ),
        },
        Variant {
            name: "optional-cookie-parameter",
            what: "a new optional cookie parameter (`anyOf [string, null]`), which progenitor cannot send",
            text: with_parameter("session", "cookie", json!({ "anyOf": [{ "type": "string" }, { "type": "null" }], "title": "Session" }))?,
            expect: builds(
                NO_CHANGES,
                "adaptation fit_parameters: applied at $.paths['/token/refresh'].post.parameters[1]",
                "pub async fn refresh_tokens<'a>(",
            ),
        },
        Variant {
            name: "string-formats",
            what: "new fields with `format: uuid` (a crate the library does not depend on), `format: date` and a `pattern`",
            text: edit(&|d| {
                let properties = d.pointer_mut(&format!("{RESPONSE}/properties"))?;
                properties["request_id"] = json!({ "type": "string", "format": "uuid", "title": "Request Id" });
                properties["issued_on"] = json!({ "type": "string", "format": "date", "title": "Issued On" });
                properties["region"] = json!({ "type": "string", "pattern": "^[a-z]{2}-[a-z]+$", "title": "Region" });
                Some(())
            })?,
            expect: builds(
                "ok       optional-field-added         AuthenticationResponse.request_id: string",
                "adaptation strings_without_dependencies: applied at $.components.schemas.AuthenticationResponse.properties.request_id.format, $.components.schemas.AuthenticationResponse.properties.region.pattern",
                "pub issued_on: ::std::option::Option<::chrono::naive::NaiveDate>",
            ),
        },
        Variant {
            name: "allof-response",
            what: "the response composed with `allOf` (a nested base schema through `$ref`s, plus the token fields)",
            text: edit(&|d| {
                let schemas = d.pointer_mut("/components/schemas")?;
                let response = schemas["AuthenticationResponse"].clone();
                let properties = response["properties"].as_object()?;
                schemas["CompanySchema"] = json!({
                    "type": "object", "title": "CompanySchema",
                    "properties": { "company_id": properties["company_id"].clone() },
                    "required": ["company_id"]
                });
                schemas["UserSchema"] = json!({ "title": "UserSchema", "allOf": [
                    { "$ref": "#/components/schemas/CompanySchema" },
                    { "type": "object", "properties": { "user_id": properties["user_id"].clone() }, "required": ["user_id"] }
                ]});
                schemas["AuthenticationResponse"] = json!({ "title": "AuthenticationResponse", "allOf": [
                    { "$ref": "#/components/schemas/UserSchema" },
                    { "type": "object", "properties": {
                        "access_token_data": properties["access_token_data"].clone(),
                        "refresh_token_data": properties["refresh_token_data"].clone()
                    }, "required": ["access_token_data", "refresh_token_data"] }
                ]});
                Some(())
            })?,
            expect: builds(
                "ok       type-added                   UserSchema",
                "adaptation flatten_all_of: applied at $.components.schemas.AuthenticationResponse.allOf, $.components.schemas.UserSchema.allOf",
                "pub struct AuthenticationResponse {",
            ),
        },
        Variant {
            name: "operation-id-renamed",
            what: "the refresh operation's `operationId` renamed (`refresh_token_post`)",
            text: with_operation("operationId", json!("refresh_token_post"))?,
            expect: builds(
                "ok       upstream-id-changed          POST /token/refresh: refresh_token_get -> refresh_token_post (generated as `refresh_tokens` either way)",
                "quirk fix rename_operations: applied at $.paths['/token/refresh'].post.operationId",
                "pub async fn refresh_tokens_required<'a>(",
            ),
        },
        Variant {
            name: "webhooks",
            what: "OpenAPI 3.1 `webhooks` (a call the server makes) added",
            text: edit(&|d| {
                d["webhooks"] = json!({ "tokenRevoked": { "post": {
                    "requestBody": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/AuthenticationResponse" } } } },
                    "responses": { "200": { "description": "Acknowledged" } }
                }}});
                Some(())
            })?,
            expect: builds(
                "ok       ignored-member-added         $.webhooks.tokenRevoked: dropped by the pipeline: not relevant to a client",
                "3.1 translation drop_client_irrelevant_31: applied at $.webhooks.tokenRevoked",
                "pub async fn refresh_tokens<'a>(",
            ),
        },
        Variant {
            name: "response-enum-field",
            what: "a new response field declared as an `enum` (`token_type`: `bearer`)",
            text: with_field("token_type", json!({ "type": "string", "enum": ["bearer"], "title": "Token Type" }))?,
            expect: builds(
                "ok       optional-field-added         AuthenticationResponse.token_type: string",
                r#"  field token_type: string (optional) enum ["bearer"]"#,
                "pub token_type: ::std::option::Option<::std::string::String>",
            ),
        },
        Variant {
            name: "request-enum-parameter",
            what: "a new optional query parameter declared as an `enum` (`grant_type`)",
            text: with_parameter("grant_type", "query", json!({ "type": "string", "enum": ["refresh_token"], "title": "Grant Type" }))?,
            expect: builds(
                "ok       optional-parameter-added     POST /token/refresh parameter grant_type: query string",
                r#"  parameter query grant_type: string (optional) enum ["refresh_token"]"#,
                "pub enum GrantType {",
            ),
        },
        Variant {
            name: "response-field-nullable",
            what: "`company_id` becomes nullable (`anyOf [integer, null]`)",
            text: with_field("company_id", json!({ "anyOf": [{ "type": "integer" }, { "type": "null" }], "title": "company_id" }))?,
            expect: builds(
                "BREAKING field-became-nullable        AuthenticationResponse.company_id: integer -> integer?",
                "  field company_id: integer? (required)",
                "pub company_id: ::std::option::Option<i64>",
            ),
        },
        Variant {
            name: "refresh-token-constraints",
            what: "`maxLength` and `pattern` on the `refresh_token` parameter",
            text: edit(&|d| {
                let parameters = d.pointer_mut(&format!("{REFRESH}/parameters"))?.as_array_mut()?;
                let parameter = parameters.iter_mut().find(|p| p["name"] == "refresh_token")?;
                parameter["schema"]["maxLength"] = json!(4096);
                parameter["schema"]["pattern"] = json!("^[A-Za-z0-9._~-]+$");
                Some(())
            })?,
            expect: builds(
                "BREAKING request-constraint-tightened POST /token/refresh parameter refresh_token: maxLength none -> 4096",
                r#"  parameter query refresh_token: string (required) maxLength 4096 pattern "^[A-Za-z0-9._~-]+$""#,
                "refresh_token: &'a str,",
            ),
        },
        Variant {
            name: "server-renamed",
            what: "the server URL changed",
            text: edit(&|d| {
                d["servers"][0]["url"] = json!("https://auth.genlogs.io");
                Some(())
            })?,
            expect: builds(
                "BREAKING server-removed               https://api.genlogs.io/auth: the default base URL (src/config.rs DEFAULT_BASE_URL) may point at it",
                "server https://auth.genlogs.io",
                "pub async fn refresh_tokens<'a>(",
            ),
        },
        Variant {
            name: "vendor-json-media-type",
            what: "the 200 body under a vendor JSON media type (`application/vnd.genlogs.v1+json`)",
            text: body_media_type("application/vnd.genlogs.v1+json")?,
            expect: builds(
                NO_CHANGES,
                "adaptation json_media_types: applied at $.paths['/token/refresh'].post.responses['200'].content['application/vnd.genlogs.v1+json']",
                "Result<ResponseValue<types::AuthenticationResponse>, Error<ByteStream>>",
            ),
        },
        Variant {
            name: "operation-deprecated",
            what: "the refresh operation marked `deprecated`",
            text: with_operation("deprecated", json!(true))?,
            expect: builds(
                "ok       operation-deprecated         POST /token/refresh",
                "operation POST /token/refresh (refresh_tokens) deprecated",
                "pub async fn refresh_tokens<'a>(",
            ),
        },
        Variant {
            name: "api-key-header-renamed",
            what: "the api key moved to a security scheme with another header name (`X-Genlogs-Key`)",
            text: api_key_scheme("X-Genlogs-Key")?,
            expect: Expect::Fails {
                error: "openapi.json at $.paths['/token/refresh'].post.security: (after the quirk pass) the hand-written src/transport.rs (API_KEY_HEADER) authenticates with the `x-api-key` header (an apiKey scheme), but the operation now asks for apiKey header x-genlogs-key".into(),
            },
        },
        Variant {
            name: "xml-response",
            what: "the 200 body as `application/xml` only",
            text: body_media_type("application/xml")?,
            expect: Expect::Fails {
                error: "openapi.json at $.paths['/token/refresh'].post.responses['200'].content: (after the quirk pass) the hand-written src/session.rs (Session::from_response) decodes the 200 body as JSON, but it has no JSON media type".into(),
            },
        },
        Variant {
            name: "token-field-renamed",
            what: "the token fields themselves changed (`token` renamed `value`)",
            text: edit(&|d| {
                for name in ["AccessTokenSchema", "RefreshTokenSchema"] {
                    let schema = d.pointer_mut(&format!("/components/schemas/{name}"))?;
                    let token = schema["properties"].as_object_mut()?.shift_remove("token")?;
                    schema["properties"]["value"] = token;
                    schema["required"] = json!(["value", "expires"]);
                }
                Some(())
            })?,
            expect: Expect::Fails {
                error: "openapi.json at $.components.schemas.TokenSchema: (after the quirk pass) the hand-written src/session.rs (Session::from_response) reads `AuthenticationResponse.access_token_data.token` as string(password), but the document no longer has it. Change src/session.rs (Session::from_response) for the new document, then the contract in codegen/src/contract.rs".into(),
            },
        },
        Variant {
            name: "truncated",
            what: "a truncated file",
            text: truncated.to_string(),
            expect: Expect::Fails {
                error: format!("openapi.json at $: not valid JSON (line {line}, column {column}): EOF while parsing"),
            },
        },
    ])
}

/// Where a parser reading all of `text` stops: its last line (1-based) and that line's length.
fn end_position(text: &str) -> (usize, usize) {
    let line = text.matches('\n').count() + 1;
    let column = text
        .rsplit('\n')
        .next()
        .map_or(0, |last| last.chars().count());
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_position_is_where_serde_json_reports_a_truncated_document() {
        assert_eq!(end_position("{\n  \"a\": [1,"), (2, 10));
        for cut in ["{", "{\n  \"a\": [1,", "{\n  \"é\": {\n    \"b\""] {
            let error = serde_json::from_str::<Value>(cut).unwrap_err();
            assert!(error.is_eof(), "{cut}");
            assert_eq!(end_position(cut), (error.line(), error.column()), "{cut}");
        }
    }

    #[test]
    fn variants_refuse_a_document_they_cannot_edit() {
        assert!(all("{}").is_err());
        assert!(all("not json").is_err());
    }
}
