//! Regeneration that survives upstream edits: each variant of the spec either generates code that
//! parses and has the expected new items, or fails naming the JSON path; and the change report on
//! (upstream, variant) lists the expected changes.

use serde_json::{json, Value};

use crate::codegen;
use crate::upstream;

fn variant(edit: impl FnOnce(&mut Value)) -> String {
    let mut doc: Value = serde_json::from_str(&upstream()).unwrap();
    edit(&mut doc);
    serde_json::to_string_pretty(&doc).unwrap()
}

fn response_properties(doc: &mut Value) -> &mut Value {
    doc.pointer_mut("/components/schemas/AuthenticationResponse/properties")
        .unwrap()
}

/// Generates the variant's code and checks that it parses as Rust.
fn generate(text: &str) -> String {
    let code = codegen::snapshots(text)
        .unwrap_or_else(|e| panic!("{e}"))
        .code;
    syn::parse_file(&code).expect("generated code parses");
    code
}

/// `(kind, breaking, location)` of each change from upstream to `text`.
fn report(text: &str) -> Vec<(&'static str, bool, String)> {
    codegen::change_report(&upstream(), text)
        .unwrap()
        .into_iter()
        .map(|c| (c.kind, c.breaking, c.location))
        .collect()
}

#[test]
fn the_same_document_minified_changes_nothing() {
    let minified =
        serde_json::to_string(&serde_json::from_str::<Value>(&upstream()).unwrap()).unwrap();
    assert_eq!(generate(&minified), generate(&upstream()));
    assert_eq!(report(&minified), []);
}

#[test]
fn upstream_fixing_the_items_quirk_changes_no_code_and_retires_the_fix() {
    let fixed = variant(|doc| {
        let properties = response_properties(doc);
        properties["access_token_data"] =
            json!({ "$ref": "#/components/schemas/AccessTokenSchema" });
        properties["refresh_token_data"] =
            json!({ "$ref": "#/components/schemas/RefreshTokenSchema" });
    });
    assert_eq!(generate(&fixed), generate(&upstream()));
    assert_eq!(report(&fixed), []);
    let normalized = codegen::normalize(&fixed).unwrap();
    let items = normalized
        .fixes
        .iter()
        .find(|f| f.quirk == codegen::quirks::Quirk::ItemsOnObject)
        .unwrap();
    assert!(!items.applied(), "the fix reports that it found nothing");
    assert!(codegen::snapshots(&fixed)
        .unwrap()
        .surface
        .contains("quirk fix inline_items_on_object: found nothing to fix"));
}

#[test]
fn a_new_optional_response_field_is_generated_and_not_breaking() {
    let added = variant(|doc| {
        response_properties(doc)["scope"] = json!({ "type": "string", "title": "scope" });
    });
    assert!(generate(&added).contains("pub scope: ::std::option::Option<::std::string::String>"));
    assert_eq!(
        report(&added),
        [(
            "optional-field-added",
            false,
            "AuthenticationResponse.scope".to_string()
        )]
    );
}

#[test]
fn a_removed_response_field_is_breaking() {
    let removed = variant(|doc| {
        response_properties(doc)
            .as_object_mut()
            .unwrap()
            .shift_remove("company_id");
        let required = doc
            .pointer_mut("/components/schemas/AuthenticationResponse/required")
            .unwrap();
        required
            .as_array_mut()
            .unwrap()
            .retain(|name| name != "company_id");
    });
    assert!(!generate(&removed).contains("company_id"));
    assert_eq!(
        report(&removed),
        [(
            "response-field-removed",
            true,
            "AuthenticationResponse.company_id".to_string()
        )]
    );
}

#[test]
fn the_create_token_operation_appears_as_a_new_method() {
    let added = variant(|doc| {
        let mut create = doc.pointer("/paths/~1token~1refresh/post").unwrap().clone();
        create["summary"] = json!("Create the AccessToken And Refresh Token");
        create["operationId"] = json!("token_get");
        let parameters = create["parameters"].as_array_mut().unwrap();
        parameters.retain(|p| p["name"] != "refresh_token");
        for name in ["email", "password"] {
            parameters.push(json!({ "name": name, "in": "query", "required": true, "schema": { "type": "string", "title": name } }));
        }
        doc["paths"]["/token"] = json!({ "post": create });
    });
    let code = generate(&added);
    assert!(code.contains("pub async fn create_tokens<'a>(\n        &'a self,\n        email: &'a str,\n        password: &'a str,"), "{code}");
    assert!(code.contains("A 401 means the email or password was rejected."));
    assert_eq!(
        report(&added),
        [("operation-added", false, "POST /token".to_string())]
    );
}

#[test]
fn a_31_type_array_fails_naming_its_path() {
    let nullable = variant(|doc| {
        response_properties(doc)["user_id"] =
            json!({ "type": ["string", "null"], "title": "user_id" });
    });
    let error = codegen::snapshots(&nullable).unwrap_err().to_string();
    assert!(
        error.starts_with("openapi.json at $.components.schemas.AuthenticationResponse.properties.user_id.type: a type array"),
        "{error}"
    );
    assert!(error.contains("extend downgrade_openapi_31"), "{error}");
    assert!(codegen::change_report(&upstream(), &nullable).is_err());
}

#[test]
fn the_spec_diff_command_fails_on_breaking_changes_only_when_asked() {
    let removed = variant(|doc| {
        response_properties(doc)
            .as_object_mut()
            .unwrap()
            .shift_remove("user_id");
    });
    let read = |name: &str| match name {
        "old.json" => Ok(upstream()),
        "new.json" => Ok(removed.clone()),
        other => Err(format!("cannot read {other}")),
    };
    let args = |list: &[&str]| list.iter().map(ToString::to_string).collect::<Vec<_>>();

    let (status, text) = codegen::diff::command(&args(&["old.json", "new.json"]), read);
    assert_eq!(status, 0);
    assert!(
        text.contains("BREAKING response-field-removed")
            && text.contains("AuthenticationResponse.user_id"),
        "{text}"
    );

    let (status, json) = codegen::diff::command(
        &args(&["--json", "--fail-on-breaking", "old.json", "new.json"]),
        read,
    );
    assert_eq!(status, 1);
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap()["breaking"], 1);

    let (status, _) =
        codegen::diff::command(&args(&["--fail-on-breaking", "old.json", "old.json"]), read);
    assert_eq!(status, 0, "no change, no failure");

    let (status, message) = codegen::diff::command(&args(&["old.json", "missing.json"]), read);
    assert_eq!(
        (status, message.as_str()),
        (2, "error: cannot read missing.json\n")
    );
}
