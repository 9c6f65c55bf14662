//! The quirk-fix pass is idempotent on any mix of upstream's quirks and plausible edits (new
//! fields, plain or nullable in 3.1's two forms; new routes): applying it to its own output
//! changes nothing and finds nothing to fix, and the result generates.

use proptest::prelude::*;
use serde_json::{json, Value};

use crate::{codegen, upstream};

/// Upstream's document with a random subset of its quirks already fixed and random additions.
fn variant() -> impl Strategy<Value = String> {
    let fixes = prop::collection::vec(any::<bool>(), 9);
    let extra_fields = prop::collection::btree_map(
        "[a-z][a-z_]{0,9}",
        (
            prop_oneof![
                Just("string"),
                Just("integer"),
                Just("boolean"),
                Just("number")
            ],
            0..3usize,
        ),
        0..4,
    );
    let extra_route = prop::option::of("/[a-z]{1,8}");
    (fixes, extra_fields, extra_route).prop_map(|(fixes, extra_fields, extra_route)| {
        let mut doc: Value = serde_json::from_str(&upstream()).unwrap();
        let op = "/paths/~1token~1refresh/post";
        if fixes[0] {
            doc["openapi"] = json!("3.0.3");
        }
        if fixes[1] {
            let properties = doc
                .pointer_mut("/components/schemas/AuthenticationResponse/properties")
                .unwrap();
            properties["access_token_data"] =
                json!({ "$ref": "#/components/schemas/AccessTokenSchema" });
            properties["refresh_token_data"] =
                json!({ "$ref": "#/components/schemas/RefreshTokenSchema" });
        }
        if fixes[2] {
            doc["components"]["schemas"]["RefreshTokenSchema"]["title"] =
                json!("RefreshTokenSchema");
        }
        if fixes[3] {
            doc["components"]["schemas"]["AccessTokenSchema"]["properties"]["expires"]["format"] =
                json!("date-time");
        }
        let parameters = doc
            .pointer_mut(&format!("{op}/parameters"))
            .unwrap()
            .as_array_mut()
            .unwrap();
        if fixes[4] {
            parameters.retain(|p| p["name"] != "accept");
        }
        if fixes[5] {
            parameters.retain(|p| p["name"] != "x-api-key");
        }
        if fixes[6] {
            doc.pointer_mut(op).unwrap()["operationId"] = json!("refresh_tokens");
        }
        if fixes[7] {
            doc.pointer_mut(&format!("{op}/responses")).unwrap()["401"] =
                json!({ "description": "Unauthorized" });
        }
        if fixes[8] {
            doc.pointer_mut(op).unwrap()["description"] = json!("Refreshes.");
        }
        let properties = doc
            .pointer_mut("/components/schemas/AuthenticationResponse/properties")
            .unwrap();
        for (name, (kind, style)) in extra_fields {
            // FastAPI's two ways of writing `Optional[X]` exist only in the 3.1 document.
            properties[name.as_str()] = match (style, fixes[0]) {
                (1, false) => {
                    json!({ "anyOf": [{ "type": kind }, { "type": "null" }], "title": name })
                }
                (2, false) => json!({ "type": [kind, "null"], "title": name }),
                _ => json!({ "type": kind, "title": name }),
            };
        }
        if let Some(route) = extra_route {
            let copy = doc.pointer(op).unwrap().clone();
            doc["paths"][route.as_str()] = json!({ "post": copy });
            doc["paths"][route.as_str()]["post"]["operationId"] =
                json!(format!("{}_get", &route[1..]));
        }
        serde_json::to_string_pretty(&doc).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn applying_the_quirk_pass_twice_changes_nothing(text in variant()) {
        let once = codegen::normalize(&text).unwrap();
        let twice = codegen::normalize(&once.to_pretty_json()).unwrap();
        prop_assert_eq!(&once.document, &twice.document);
        for fix in &twice.fixes {
            prop_assert!(!fix.applied(), "{} applied on the second pass at {:?}", fix.quirk.name(), fix.changed);
        }
        codegen::generate(&once.document).unwrap();
    }
}
