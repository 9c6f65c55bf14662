//! Regeneration that survives upstream edits, checked on the pipeline for every variant in
//! `genlogs_auth_tools::variants` (`.ci/variants.sh` builds the whole crate on each): the
//! pipeline generates code with the expected items, passes the hand-written layer's contract,
//! reports the expected change and the expected fix or translation in `surface.txt`; or it fails
//! with the expected message.

use serde_json::Value;

use crate::tools::variants::{self, Expect};
use crate::tools::{self, cli};
use crate::upstream;

#[test]
fn every_variant_regenerates_or_fails_as_expected() {
    let all = variants::all(&upstream()).unwrap();
    assert_eq!(all.len(), 29, "the eleven upstream changes of the spec issue, the optional query and header parameters of issue 16, and the sixteen of issue 24");
    for variant in all {
        let name = variant.name;
        match (&variant.expect, tools::snapshots(&variant.text)) {
            (
                Expect::Builds {
                    report,
                    surface,
                    code,
                },
                Ok(snapshots),
            ) => {
                assert!(snapshots.code.contains(code), "{name}: no `{code}`");
                let lines: Vec<&str> = snapshots.surface.lines().collect();
                assert!(
                    lines.contains(&surface.as_str()),
                    "{name}: no `{surface}` in\n{}",
                    snapshots.surface
                );
                let text = report_text(&variant.text);
                assert!(
                    text.lines().any(|line| line == report),
                    "{name}: no `{report}` in\n{text}"
                );
            }
            (Expect::Fails { error }, Err(failure)) => {
                let failure = failure.to_string();
                assert!(
                    failure.starts_with(error),
                    "{name}: {failure}\nexpected: {error}"
                );
            }
            (expect, outcome) => panic!("{name}: expected {expect:?}, got {outcome:?}"),
        }
    }
}

/// The text `spec-diff OLD NEW` prints for upstream → `text`.
fn report_text(text: &str) -> String {
    let read = |name: &str| match name {
        "old.json" => Ok(upstream()),
        _ => Ok(text.to_string()),
    };
    let (status, output) = cli::spec_diff(&["old.json".into(), "new.json".into()], read);
    assert_eq!(status, 0, "{output}");
    output
}

#[test]
fn a_nullable_field_is_generated_as_an_option_also_through_a_ref() {
    let mut doc: Value = serde_json::from_str(&upstream()).unwrap();
    let properties = &mut doc["components"]["schemas"]["AuthenticationResponse"]["properties"];
    properties["previous"] = serde_json::json!({
        "anyOf": [{ "$ref": "#/components/schemas/AccessTokenSchema" }, { "type": "null" }]
    });
    properties["described"] = serde_json::json!({
        "$ref": "#/components/schemas/AccessTokenSchema", "description": "A 3.1 `$ref` with a sibling."
    });
    let snapshots = tools::snapshots(&doc.to_string()).unwrap();
    let code = snapshots.code;
    assert!(
        code.contains("pub previous: ::std::option::Option<TokenSchema>"),
        "{code}"
    );
    assert!(
        code.contains("pub described: ::std::option::Option<TokenSchema>"),
        "{code}"
    );
    assert!(snapshots.surface.contains("3.1 translation translate_ref_siblings: applied at $.components.schemas.AuthenticationResponse.properties.described.$ref"));
}

#[test]
fn the_spec_diff_command_fails_on_breaking_changes_only_when_asked() {
    let removed = variants::all(&upstream())
        .unwrap()
        .into_iter()
        .find(|v| v.name == "required-field-removed")
        .unwrap()
        .text;
    let read = |name: &str| match name {
        "old.json" => Ok(upstream()),
        "new.json" => Ok(removed.clone()),
        other => Err(format!("cannot read {other}")),
    };
    let args = |list: &[&str]| list.iter().map(ToString::to_string).collect::<Vec<_>>();

    let (status, json) = cli::spec_diff(
        &args(&["--json", "--fail-on-breaking", "old.json", "new.json"]),
        read,
    );
    assert_eq!(status, 1);
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap()["breaking"], 1);

    let (status, markdown) = cli::spec_diff(&args(&["--markdown", "old.json", "new.json"]), read);
    assert_eq!(status, 0);
    assert!(
        markdown.contains("| **BREAKING** | `response-field-removed` | `AuthenticationResponse.company_id` | integer |"),
        "{markdown}"
    );

    let (status, _) = cli::spec_diff(&args(&["--fail-on-breaking", "old.json", "old.json"]), read);
    assert_eq!(status, 0, "no change, no failure");
}

#[test]
fn every_loopback_test_a_variant_names_exists_in_tests_it() {
    for (variant, test) in variants::LOOPBACK_TESTS {
        let all = variants::all(&upstream()).unwrap();
        assert!(all.iter().any(|v| v.name == *variant), "{variant}");
        let (module, function) = test.split_once("::").unwrap();
        let path = format!("{}/tests/it/{module}.rs", env!("CARGO_MANIFEST_DIR"));
        let source = std::fs::read_to_string(&path).unwrap();
        assert!(
            source.contains(&format!("async fn {function}()")),
            "{variant}: no `{function}` in {path}"
        );
    }
}

#[test]
fn a_nullable_required_refresh_token_stays_the_str_the_layer_passes() {
    // FastAPI's `refresh_token: str | None = Query()` (no default): required, and nullable in 3.1.
    // progenitor would make a nullable query parameter optional (`Option<&str>`), which the
    // hand-written `refresh_tokens_required(refresh_token)` could not call.
    let mut doc: Value = serde_json::from_str(&upstream()).unwrap();
    let parameters = doc["paths"]["/token/refresh"]["post"]["parameters"]
        .as_array_mut()
        .unwrap();
    let refresh_token = parameters
        .iter_mut()
        .find(|p| p["name"] == "refresh_token")
        .unwrap();
    refresh_token["schema"] =
        serde_json::json!({ "anyOf": [{ "type": "string" }, { "type": "null" }] });
    let snapshots = tools::snapshots(&doc.to_string()).unwrap();
    assert!(
        snapshots.code.contains(
            "pub async fn refresh_tokens_required<'a>(\n        &'a self,\n        refresh_token: &'a str,\n    )"
        ),
        "{}",
        snapshots.code
    );
    assert!(snapshots.surface.contains(
        "adaptation fit_parameters: applied at $.paths['/token/refresh'].post.parameters[0].schema.nullable"
    ));
}
