//! The whole pipeline on the embedded spec and on broken documents.

use std::path::Path;

use crate::codegen;
use crate::codegen::{Kind, Quirk};
use crate::{tempdir, upstream};

#[test]
fn every_quirk_fix_applies_to_the_upstream_document() {
    let normalized = codegen::normalize(&upstream()).unwrap();
    let names: Vec<_> = normalized.fixes.iter().map(|fix| fix.quirk).collect();
    assert_eq!(names, Quirk::ALL);
    for fix in &normalized.fixes {
        match fix.quirk.kind() {
            Kind::Quirk => assert!(fix.applied(), "{} found nothing to fix", fix.quirk.name()),
            // Upstream's document uses no 3.1-only construct today.
            Kind::Translation => assert!(!fix.applied(), "{} translated", fix.quirk.name()),
            // Nor anything progenitor or typify cannot take.
            Kind::Adaptation => assert!(!fix.applied(), "{} adapted", fix.quirk.name()),
        }
    }
}

#[test]
fn the_quirk_pass_is_idempotent() {
    let once = codegen::normalize(&upstream()).unwrap();
    let twice = codegen::normalize(&once.to_pretty_json()).unwrap();
    assert_eq!(once.document, twice.document);
    assert!(twice.fixes.iter().all(|fix| !fix.applied()));
}

#[test]
fn the_embedded_spec_is_upstreams_document_unchanged() {
    // Upstream's page: ../shared/seeds/refresh-token.md. Its JSON, re-parsed, must equal ours.
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/seeds/refresh-token.md");
    let Ok(page) = std::fs::read_to_string(&seed) else {
        eprintln!("skipped: {} is not beside this checkout", seed.display());
        return;
    };
    let json = page
        .split("```json\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .unwrap();
    let theirs: serde_json::Value = serde_json::from_str(json).unwrap();
    let ours: serde_json::Value = serde_json::from_str(&upstream()).unwrap();
    assert_eq!(theirs, ours);
}

#[test]
fn the_generated_code_has_the_renamed_typed_operation() {
    let normalized = codegen::normalize(&upstream()).unwrap();
    let code = codegen::generate(&normalized.document).unwrap();
    assert!(code.contains("pub async fn refresh_tokens<'a>(\n        &'a self,\n        refresh_token: &'a str,\n    )"), "{code}");
    assert!(code.contains("pub access_token_data: TokenSchema"));
    assert!(code.contains("pub expires: crate::expiry::Expiry"));
    assert!(code.contains("pub token: crate::secret::SecretToken"));
    assert!(
        !code.contains("x_api_key") && !code.contains("accept: &"),
        "credentials and accept are not per-call parameters"
    );
    assert!(!code.contains("AccessTokenSchema") && !code.contains("RefreshTokenSchema"));
}

#[test]
fn build_writes_the_code_and_warns_when_a_fix_finds_nothing() {
    let dir = tempdir("build-ok");
    std::fs::write(dir.join("openapi.json"), upstream()).unwrap();
    assert_eq!(codegen::build(&dir, &dir).unwrap(), Vec::<String>::new());
    assert!(std::fs::read_to_string(dir.join("codegen.rs"))
        .unwrap()
        .contains("refresh_tokens"));

    // Upstream fixes the `items` quirk: the build still works and says the fix can be retired.
    let mut fixed: serde_json::Value = serde_json::from_str(&upstream()).unwrap();
    let properties = fixed
        .pointer_mut("/components/schemas/AuthenticationResponse/properties")
        .unwrap();
    properties["access_token_data"] =
        serde_json::json!({ "$ref": "#/components/schemas/AccessTokenSchema" });
    properties["refresh_token_data"] =
        serde_json::json!({ "$ref": "#/components/schemas/RefreshTokenSchema" });
    let fixed = serde_json::to_string_pretty(&fixed).unwrap();
    assert_ne!(fixed, upstream());
    std::fs::write(dir.join("openapi.json"), fixed).unwrap();
    let warnings = codegen::build(&dir, &dir).unwrap_err_or_warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("inline_items_on_object") && w.contains("found nothing")),
        "{warnings:?}"
    );
}

#[test]
fn a_malformed_spec_fails_the_build_naming_the_json_path() {
    let dir = tempdir("build-bad");
    let cases = [
        ("{ not json", "openapi.json at $: not valid JSON (line 1, column 3)"),
        (
            &upstream().replacen(r#""type": "string","#, r#""type": ["null"],"#, 1),
            "openapi.json at $.paths['/token/refresh'].post.parameters[0].schema.type: a type array that allows only null has no OpenAPI 3.0 form",
        ),
        (
            &upstream().replacen(r#""in": "query""#, r#""in": "body""#, 1),
            "openapi.json at $.paths['/token/refresh'].post.parameters",
        ),
    ];
    let mut no_schema: serde_json::Value = serde_json::from_str(&upstream()).unwrap();
    no_schema["paths"]["/token/refresh"]["post"]["responses"]["200"]["content"]
        ["application/json"] = serde_json::json!({});
    let no_schema = no_schema.to_string();
    let mut mixed: serde_json::Value = serde_json::from_str(&upstream()).unwrap();
    mixed["paths"]["/token/refresh"]["post"]["responses"]["201"] =
        serde_json::json!({ "description": "Created" });
    let mixed = mixed.to_string();
    let mut token_optional: serde_json::Value = serde_json::from_str(&upstream()).unwrap();
    token_optional["components"]["schemas"]["AccessTokenSchema"]["required"] =
        serde_json::json!(["expires"]);
    let token_optional = token_optional.to_string();
    let mut array_header: serde_json::Value = serde_json::from_str(&upstream()).unwrap();
    array_header["paths"]["/token/refresh"]["post"]["parameters"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({ "name": "x-scopes", "in": "header", "schema": { "type": "array", "items": { "type": "string" } } }));
    let array_header = array_header.to_string();
    let cases = [
        cases[0],
        cases[1],
        cases[2],
        (
            &token_optional,
            "openapi.json at $.components.schemas.AccessTokenSchema.properties.token: (after the quirk pass) the hand-written src/session.rs (Session::from_response) reads `AuthenticationResponse.access_token_data.token` as string(password), always present, but it is optional",
        ),
        (
            &no_schema,
            "openapi.json at $.paths['/token/refresh'].post.responses['200'].content['application/json']: a JSON body without a schema",
        ),
        (&mixed, "openapi.json at $.paths['/token/refresh'].post.responses: success responses with bodies of different kinds"),
        (&array_header, "openapi.json at $.paths['/token/refresh'].post.parameters[1].schema: a header parameter of type array"),
    ];
    for (text, expected) in cases {
        std::fs::write(dir.join("openapi.json"), text).unwrap();
        let error = codegen::build(&dir, &dir).unwrap_err();
        assert!(error.starts_with(expected), "{error}\nexpected: {expected}");
    }
}

trait Warnings {
    fn unwrap_err_or_warnings(self) -> Vec<String>;
}

impl Warnings for Result<Vec<String>, String> {
    fn unwrap_err_or_warnings(self) -> Vec<String> {
        self.unwrap_or_else(|error| panic!("the build failed: {error}"))
    }
}
