//! The API change report: what changed between two corrected documents, each change classed as
//! breaking for a client or not, after oasdiff's rules (a new required parameter, a removed
//! response field, a changed type, a removed success status or operation break clients; a new
//! optional field or a new operation does not).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::json;

use crate::surface::{Field, Surface};

/// One change between the two documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Whether a client written against the old document can break.
    pub breaking: bool,
    /// A stable identifier of the kind of change, e.g. `response-field-removed`.
    pub kind: &'static str,
    /// Where: `POST /token/refresh`, `AuthenticationResponse.company_id`, …
    pub location: String,
    /// The old and new values, where there are any.
    pub detail: String,
}

/// Which way a type travels, to know which side a change to it can break.
#[derive(Debug, Clone, Copy, Default)]
struct Direction {
    request: bool,
    response: bool,
}

/// Every change from `old` to `new`, operations first, then types.
pub fn compare(old: &Surface, new: &Surface) -> Vec<Change> {
    let mut changes = Changes::default();
    compare_operations(old, new, &mut changes);
    compare_types(old, new, &mut changes);
    changes.0
}

#[derive(Default)]
struct Changes(Vec<Change>);

impl Changes {
    fn push(
        &mut self,
        breaking: bool,
        kind: &'static str,
        location: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.0.push(Change {
            breaking,
            kind,
            location: location.into(),
            detail: detail.into(),
        });
    }
}

fn compare_operations(old: &Surface, new: &Surface, changes: &mut Changes) {
    for (key, before) in &old.operations {
        let Some(after) = new.operations.get(key) else {
            changes.push(
                true,
                "operation-removed",
                key,
                format!("`{}` is gone", before.id),
            );
            continue;
        };
        if before.id != after.id {
            changes.push(
                true,
                "operation-id-changed",
                key,
                format!("method `{}` is now `{}`", before.id, after.id),
            );
        }
        for (name, p) in &before.parameters {
            let at = format!("{key} parameter {name}");
            match after.parameters.get(name) {
                None => changes.push(
                    false,
                    "parameter-removed",
                    at,
                    format!("{} {}", p.location, p.type_name),
                ),
                Some(q) => {
                    if p.location != q.location {
                        changes.push(
                            true,
                            "parameter-location-changed",
                            &at,
                            format!("{} -> {}", p.location, q.location),
                        );
                    }
                    if p.type_name != q.type_name {
                        changes.push(
                            true,
                            "parameter-type-changed",
                            &at,
                            format!("{} -> {}", p.type_name, q.type_name),
                        );
                    }
                    if p.required != q.required {
                        let kind = if q.required {
                            "parameter-became-required"
                        } else {
                            "parameter-became-optional"
                        };
                        changes.push(q.required, kind, &at, "");
                    }
                }
            }
        }
        for (name, q) in &after.parameters {
            if !before.parameters.contains_key(name) {
                let at = format!("{key} parameter {name}");
                let kind = if q.required {
                    "required-parameter-added"
                } else {
                    "optional-parameter-added"
                };
                changes.push(
                    q.required,
                    kind,
                    at,
                    format!("{} {}", q.location, q.type_name),
                );
            }
        }
        compare_request_body(
            key,
            before.request_body.as_ref(),
            after.request_body.as_ref(),
            changes,
        );
        for (status, body) in &before.responses {
            let at = format!("{key} response {status}");
            let success = status.starts_with('2');
            match after.responses.get(status) {
                None => {
                    let kind = if success {
                        "success-status-removed"
                    } else {
                        "error-status-removed"
                    };
                    changes.push(success, kind, at, "");
                }
                Some(new_body) if new_body != body => changes.push(
                    success,
                    "response-body-changed",
                    at,
                    format!(
                        "{} -> {}",
                        body.as_deref().unwrap_or("(no body)"),
                        new_body.as_deref().unwrap_or("(no body)")
                    ),
                ),
                Some(_) => {}
            }
        }
        for status in after
            .responses
            .keys()
            .filter(|s| !before.responses.contains_key(*s))
        {
            changes.push(
                false,
                "status-added",
                format!("{key} response {status}"),
                "",
            );
        }
    }
    for (key, added) in &new.operations {
        if !old.operations.contains_key(key) {
            changes.push(
                false,
                "operation-added",
                key,
                format!("new method `{}`", added.id),
            );
        }
    }
}

fn compare_request_body(
    key: &str,
    before: Option<&Field>,
    after: Option<&Field>,
    changes: &mut Changes,
) {
    let at = format!("{key} request body");
    match (before, after) {
        (None, Some(b)) => changes.push(b.required, "request-body-added", at, b.type_name.clone()),
        (Some(a), None) => changes.push(false, "request-body-removed", at, a.type_name.clone()),
        (Some(a), Some(b)) if a.type_name != b.type_name => changes.push(
            true,
            "request-body-type-changed",
            at,
            format!("{} -> {}", a.type_name, b.type_name),
        ),
        (Some(a), Some(b)) if !a.required && b.required => {
            changes.push(true, "request-body-became-required", at, "")
        }
        _ => {}
    }
}

fn compare_types(old: &Surface, new: &Surface, changes: &mut Changes) {
    let old_directions = directions(old);
    let new_directions = directions(new);
    for (name, before) in &old.types {
        let Some(after) = new.types.get(name) else {
            changes.push(false, "type-removed", name, "");
            continue;
        };
        let direction = {
            let (a, b) = (
                old_directions.get(name).copied().unwrap_or_default(),
                new_directions.get(name).copied().unwrap_or_default(),
            );
            Direction {
                request: a.request || b.request,
                response: a.response || b.response,
            }
        };
        for (field, f) in &before.fields {
            let at = format!("{name}.{field}");
            match after.fields.get(field) {
                None if direction.response => {
                    changes.push(true, "response-field-removed", at, f.type_name.clone())
                }
                None => changes.push(false, "field-removed", at, f.type_name.clone()),
                Some(g) => {
                    if f.type_name != g.type_name {
                        changes.push(
                            true,
                            "field-type-changed",
                            &at,
                            format!("{} -> {}", f.type_name, g.type_name),
                        );
                    }
                    if f.required && !g.required {
                        changes.push(direction.response, "field-became-optional", &at, "");
                    }
                    if !f.required && g.required {
                        changes.push(direction.request, "field-became-required", &at, "");
                    }
                }
            }
        }
        for (field, g) in &after.fields {
            if !before.fields.contains_key(field) {
                let at = format!("{name}.{field}");
                let breaking = direction.request && g.required;
                let kind = if g.required {
                    "required-field-added"
                } else {
                    "optional-field-added"
                };
                changes.push(breaking, kind, at, g.type_name.clone());
            }
        }
    }
    for name in new.types.keys().filter(|n| !old.types.contains_key(*n)) {
        changes.push(false, "type-added", name, "");
    }
}

/// For each type: whether it is reachable from a request (parameters, body) and/or a response.
fn directions(surface: &Surface) -> BTreeMap<String, Direction> {
    let mut out: BTreeMap<String, Direction> = BTreeMap::new();
    let mut mark = |roots: Vec<String>, response: bool| {
        let mut seen = BTreeSet::new();
        let mut stack = roots;
        while let Some(type_name) = stack.pop() {
            for name in surface.types.keys().filter(|n| mentions(&type_name, n)) {
                if seen.insert(name.clone()) {
                    let entry = out.entry(name.clone()).or_default();
                    if response {
                        entry.response = true;
                    } else {
                        entry.request = true;
                    }
                    stack.extend(
                        surface.types[name]
                            .fields
                            .values()
                            .map(|f| f.type_name.clone()),
                    );
                }
            }
        }
    };
    for operation in surface.operations.values() {
        let mut requests: Vec<String> = operation
            .parameters
            .values()
            .map(|p| p.type_name.clone())
            .collect();
        requests.extend(operation.request_body.iter().map(|b| b.type_name.clone()));
        mark(requests, false);
        mark(
            operation.responses.values().flatten().cloned().collect(),
            true,
        );
    }
    out
}

/// Whether a rendered type phrase (`array<TokenSchema>`, `application/json R`) names `type_name`.
fn mentions(phrase: &str, type_name: &str) -> bool {
    phrase
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'))
        .any(|word| word == type_name)
}

/// For people: a count, then one line per change, breaking first.
pub fn render_text(changes: &[Change]) -> String {
    let breaking = changes.iter().filter(|c| c.breaking).count();
    let mut out = format!(
        "API changes: {} ({breaking} breaking, {} non-breaking)\n",
        changes.len(),
        changes.len() - breaking
    );
    let mut sorted: Vec<&Change> = changes.iter().collect();
    sorted.sort_by_key(|c| !c.breaking);
    for change in sorted {
        let class = if change.breaking {
            "BREAKING"
        } else {
            "ok      "
        };
        let _ = write!(out, "{class} {:<28} {}", change.kind, change.location);
        if !change.detail.is_empty() {
            let _ = write!(out, ": {}", change.detail);
        }
        out.push('\n');
    }
    out
}

/// For a pull-request comment: a heading with the counts, then a table, breaking changes first.
pub fn render_markdown(changes: &[Change]) -> String {
    let breaking = changes.iter().filter(|c| c.breaking).count();
    let mut out = format!(
        "### API changes: {} ({breaking} breaking, {} non-breaking)\n",
        changes.len(),
        changes.len() - breaking
    );
    if changes.is_empty() {
        out.push_str("\nThe two documents describe the same API.\n");
        return out;
    }
    out.push_str("\n| | change | where | detail |\n|---|---|---|---|\n");
    let mut sorted: Vec<&Change> = changes.iter().collect();
    sorted.sort_by_key(|c| !c.breaking);
    let cell = |text: &str| text.replace('|', "\\|");
    for change in sorted {
        let class = if change.breaking {
            "**BREAKING**"
        } else {
            "ok"
        };
        let _ = writeln!(
            out,
            "| {class} | `{}` | `{}` | {} |",
            change.kind,
            cell(&change.location),
            cell(&change.detail)
        );
    }
    out
}

/// For tools: `{"breaking": N, "changes": [{"breaking", "kind", "location", "detail"}]}`.
pub fn render_json(changes: &[Change]) -> String {
    let list: Vec<_> = changes
        .iter()
        .map(|c| json!({ "breaking": c.breaking, "kind": c.kind, "location": c.location, "detail": c.detail }))
        .collect();
    let report =
        json!({ "breaking": changes.iter().filter(|c| c.breaking).count(), "changes": list });
    serde_json::to_string_pretty(&report).expect("a Value always serializes") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn surface(required_params: &[&str], fields: Value, required_fields: &[&str]) -> Surface {
        let parameters: Vec<Value> = required_params
            .iter()
            .map(|p| json!({ "name": p, "in": "query", "required": true, "schema": { "type": "string" } }))
            .collect();
        Surface::of(&json!({
            "paths": { "/t": { "post": {
                "operationId": "op",
                "parameters": parameters,
                "responses": { "200": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/R" } } } } }
            }}},
            "components": { "schemas": { "R": { "type": "object", "properties": fields, "required": required_fields } } }
        }))
    }

    fn kinds(changes: &[Change]) -> Vec<(&'static str, bool)> {
        changes.iter().map(|c| (c.kind, c.breaking)).collect()
    }

    #[test]
    fn the_same_surface_has_no_changes() {
        let s = surface(&["q"], json!({ "a": { "type": "string" } }), &["a"]);
        assert!(compare(&s, &s).is_empty());
    }

    #[test]
    fn response_field_changes_follow_oasdiff() {
        let old = surface(
            &[],
            json!({ "a": { "type": "string" }, "b": { "type": "integer" } }),
            &["a", "b"],
        );
        let new = surface(
            &[],
            json!({ "a": { "type": "integer" }, "c": { "type": "string" } }),
            &["a"],
        );
        assert_eq!(
            kinds(&compare(&old, &new)),
            [
                ("field-type-changed", true),
                ("response-field-removed", true),
                ("optional-field-added", false)
            ]
        );
        let optional = surface(&[], json!({ "a": { "type": "string" } }), &[]);
        let required = surface(&[], json!({ "a": { "type": "string" } }), &["a"]);
        assert_eq!(
            kinds(&compare(&required, &optional)),
            [("field-became-optional", true)]
        );
        assert_eq!(
            kinds(&compare(&optional, &required)),
            [("field-became-required", false)]
        );
    }

    #[test]
    fn a_new_required_parameter_breaks_and_a_removed_one_does_not() {
        let none = surface(&[], json!({}), &[]);
        let one = surface(&["q"], json!({}), &[]);
        assert_eq!(
            kinds(&compare(&none, &one)),
            [("required-parameter-added", true)]
        );
        assert_eq!(kinds(&compare(&one, &none)), [("parameter-removed", false)]);
    }

    #[test]
    fn operations_removed_break_and_added_do_not() {
        let one = surface(&[], json!({}), &[]);
        assert_eq!(
            kinds(&compare(&one, &Surface::default())),
            [("operation-removed", true), ("type-removed", false)]
        );
        assert_eq!(
            kinds(&compare(&Surface::default(), &one)),
            [("operation-added", false), ("type-added", false)]
        );
    }

    #[test]
    fn the_reports_render_for_people_and_tools() {
        let changes = vec![
            Change {
                breaking: false,
                kind: "operation-added",
                location: "POST /token".into(),
                detail: "new method `create_tokens`".into(),
            },
            Change {
                breaking: true,
                kind: "response-field-removed",
                location: "R.a".into(),
                detail: "string".into(),
            },
        ];
        let text = render_text(&changes);
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "API changes: 2 (1 breaking, 1 non-breaking)",
                "BREAKING response-field-removed       R.a: string",
                "ok       operation-added              POST /token: new method `create_tokens`",
            ]
        );
        assert_eq!(
            render_markdown(&changes).lines().collect::<Vec<_>>(),
            [
                "### API changes: 2 (1 breaking, 1 non-breaking)",
                "",
                "| | change | where | detail |",
                "|---|---|---|---|",
                "| **BREAKING** | `response-field-removed` | `R.a` | string |",
                "| ok | `operation-added` | `POST /token` | new method `create_tokens` |",
            ]
        );
        assert!(render_markdown(&[]).contains("the same API"));
        let parsed: Value = serde_json::from_str(&render_json(&changes)).unwrap();
        assert_eq!(parsed["breaking"], 1);
        assert_eq!(parsed["changes"][1]["kind"], "response-field-removed");
    }
}
