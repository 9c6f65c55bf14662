//! The API change report: what changed between two corrected documents, each change classed as
//! breaking for a client or not, after oasdiff's rules (a new required parameter, a removed
//! response field, a changed type, a removed success status or operation break clients; a new
//! optional field or a new operation does not).
//!
//! "Breaking" is judged for *this* client, which differs from a strict one in two ways: it reads
//! responses tolerantly (an unknown enum value is kept as a string, an unknown field ignored,
//! lengths and patterns not checked: the spec pipeline's `open_response_schemas`), so new or
//! removed response enum values and response constraint changes do not break it; and it sends
//! requests the document validates, so a request enum value removed or a request constraint
//! tightened does. Every kind is listed, with its oasdiff class, in `codegen/README.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::json;

use crate::surface::{Field, Rules, Surface};

/// The credential this client sends on every request (`src/transport.rs`).
const SENT_CREDENTIAL: &str = "apiKey header x-api-key";

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
    compare_document(old, new, &mut changes);
    compare_operations(old, new, &mut changes);
    compare_types(old, new, &mut changes);
    changes.0
}

/// Servers, and the members the pipeline drops as meaningless to a client.
fn compare_document(old: &Surface, new: &Surface, changes: &mut Changes) {
    for url in old.servers.difference(&new.servers) {
        changes.push(
            true,
            "server-removed",
            url,
            "the default base URL (src/config.rs DEFAULT_BASE_URL) may point at it",
        );
    }
    for url in new.servers.difference(&old.servers) {
        changes.push(false, "server-added", url, "");
    }
    for member in new.ignored.difference(&old.ignored) {
        changes.push(
            false,
            "ignored-member-added",
            member,
            "dropped by the pipeline: not relevant to a client",
        );
    }
    for member in old.ignored.difference(&new.ignored) {
        changes.push(false, "ignored-member-removed", member, "");
    }
}

/// Listed values, constraints and deprecation of a parameter, field or type at `at`, for a
/// schema that requests and/or responses use.
fn compare_rules(at: &str, before: &Rules, after: &Rules, way: Direction, changes: &mut Changes) {
    let (old, new) = (&before.values, &after.values);
    let list = |values: Vec<&String>| {
        values
            .into_iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    };
    for request in [true, false] {
        let applies = if request { way.request } else { way.response };
        if !applies {
            continue;
        }
        let kind = |what: &str| -> &'static str {
            match (request, what) {
                (true, "added") => "request-enum-value-added",
                (true, "removed") => "request-enum-value-removed",
                (true, "restricted") => "request-enum-added",
                (true, _) => "request-enum-removed",
                (false, "added") => "response-enum-value-added",
                (false, "removed") => "response-enum-value-removed",
                (false, "restricted") => "response-enum-added",
                (false, _) => "response-enum-removed",
            }
        };
        match (old.is_empty(), new.is_empty()) {
            (false, false) => {
                let added: Vec<&String> = new.iter().filter(|v| !old.contains(v)).collect();
                let removed: Vec<&String> = old.iter().filter(|v| !new.contains(v)).collect();
                if !added.is_empty() {
                    changes.push(false, kind("added"), at, list(added));
                }
                if !removed.is_empty() {
                    // A value this client may send is refused; a response value no longer
                    // listed was already read as a string.
                    changes.push(request, kind("removed"), at, list(removed));
                }
            }
            (true, false) => {
                changes.push(request, kind("restricted"), at, list(new.iter().collect()))
            }
            (false, true) => changes.push(false, kind("unrestricted"), at, ""),
            (true, true) => {}
        }
    }
    let keys: BTreeSet<&String> = before
        .constraints
        .keys()
        .chain(after.constraints.keys())
        .collect();
    for key in keys {
        let (a, b) = (before.constraints.get(key), after.constraints.get(key));
        if a == b {
            continue;
        }
        let show =
            |v: Option<&serde_json::Value>| v.map_or("none".to_string(), ToString::to_string);
        let detail = format!("{key} {} -> {}", show(a), show(b));
        if way.request {
            if tightens(key, a, b) {
                changes.push(true, "request-constraint-tightened", at, &detail);
            } else {
                changes.push(false, "request-constraint-loosened", at, &detail);
            }
        }
        if way.response {
            changes.push(false, "response-constraint-changed", at, &detail);
        }
    }
    if !before.deprecated && after.deprecated {
        changes.push(false, "deprecated", at, "");
    }
}

/// Whether a validation keyword going from `before` to `after` refuses a value it accepted.
fn tightens(
    key: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> bool {
    let number = |v: Option<&serde_json::Value>| v.and_then(serde_json::Value::as_f64);
    let flag = |v: Option<&serde_json::Value>| v.and_then(serde_json::Value::as_bool) == Some(true);
    match key {
        "maxLength" | "maximum" | "maxItems" | "maxProperties" => {
            match (number(before), number(after)) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(a), Some(b)) => b < a,
            }
        }
        "minLength" | "minimum" | "minItems" | "minProperties" => {
            match (number(before), number(after)) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(a), Some(b)) => b > a,
            }
        }
        "exclusiveMinimum" | "exclusiveMaximum" | "uniqueItems" => !flag(before) && flag(after),
        // `pattern`, `multipleOf`: any new or changed one may refuse a value the old accepted.
        _ => after.is_some(),
    }
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

    /// A breaking `kind` at `location`, detailed `before -> after`, when the two differ.
    fn push_if_changed(&mut self, kind: &'static str, location: &str, before: &str, after: &str) {
        if before != after {
            self.push(true, kind, location, format!("{before} -> {after}"));
        }
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
        if before.id == after.id && before.upstream_id != after.upstream_id {
            let show = |id: &Option<String>| id.clone().unwrap_or_else(|| after.id.clone());
            changes.push(
                false,
                "upstream-id-changed",
                key,
                format!(
                    "{} -> {} (generated as `{}` either way)",
                    show(&before.upstream_id),
                    show(&after.upstream_id),
                    after.id
                ),
            );
        }
        if !before.deprecated && after.deprecated {
            changes.push(false, "operation-deprecated", key, "");
        }
        if before.security != after.security {
            let show = |set: &BTreeSet<String>| {
                if set.is_empty() {
                    "(none declared)".to_string()
                } else {
                    set.iter().cloned().collect::<Vec<_>>().join(" or ")
                }
            };
            let met = |set: &BTreeSet<String>| {
                set.is_empty() || set.contains("none") || set.contains(SENT_CREDENTIAL)
            };
            changes.push(
                met(&before.security) && !met(&after.security),
                "security-changed",
                key,
                format!("{} -> {}", show(&before.security), show(&after.security)),
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
                    changes.push_if_changed(
                        "parameter-location-changed",
                        &at,
                        &p.location,
                        &q.location,
                    );
                    changes.push_if_changed(
                        "parameter-type-changed",
                        &at,
                        &p.type_name,
                        &q.type_name,
                    );
                    if p.required != q.required {
                        let kind = if q.required {
                            "parameter-became-required"
                        } else {
                            "parameter-became-optional"
                        };
                        changes.push(q.required, kind, &at, "");
                    }
                    let sent = Direction {
                        request: true,
                        response: false,
                    };
                    compare_rules(&at, &p.rules, &q.rules, sent, changes);
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
                Some(new_body) if new_body != body => {
                    let kind = if only_media_type_changed(body.as_deref(), new_body.as_deref()) {
                        "response-media-type-changed"
                    } else {
                        "response-body-changed"
                    };
                    changes.push(
                        success,
                        kind,
                        at,
                        format!(
                            "{} -> {}",
                            body.as_deref().unwrap_or("(no body)"),
                            new_body.as_deref().unwrap_or("(no body)")
                        ),
                    );
                }
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
        (Some(a), Some(b)) if a.type_name != b.type_name => {
            let kind = if only_media_type_changed(Some(&a.type_name), Some(&b.type_name)) {
                "request-media-type-changed"
            } else {
                "request-body-type-changed"
            };
            changes.push(
                true,
                kind,
                at,
                format!("{} -> {}", a.type_name, b.type_name),
            )
        }
        (Some(a), Some(b)) if !a.required && b.required => {
            changes.push(true, "request-body-became-required", at, "")
        }
        _ => {}
    }
}

/// Whether two bodies (`application/json R`, or none) differ in their media type alone.
fn only_media_type_changed(before: Option<&str>, after: Option<&str>) -> bool {
    let (old_media, old_type) = media_and_type(before);
    let (new_media, new_type) = media_and_type(after);
    old_type == new_type && old_media != new_media
}

/// `application/json R` → (`application/json`, `R`).
fn media_and_type(phrase: Option<&str>) -> (&str, &str) {
    let phrase = phrase.unwrap_or("");
    phrase.split_once(' ').unwrap_or((phrase, ""))
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
        compare_rules(name, &before.rules, &after.rules, direction, changes);
        for (field, f) in &before.fields {
            let at = format!("{name}.{field}");
            match after.fields.get(field) {
                None if direction.response => {
                    changes.push(true, "response-field-removed", at, f.type_name.clone())
                }
                None => changes.push(false, "field-removed", at, f.type_name.clone()),
                Some(g) => {
                    let detail = format!("{} -> {}", f.type_name, g.type_name);
                    let (was, is) = (f.type_name.strip_suffix('?'), g.type_name.strip_suffix('?'));
                    let kind = if f.type_name == g.type_name {
                        None
                    } else if was.is_none() && is == Some(f.type_name.as_str()) {
                        // Generated as `Option<…>` now: code that read the value breaks.
                        Some((direction.response, "field-became-nullable"))
                    } else if is.is_none() && was == Some(g.type_name.as_str()) {
                        // A null this client sends is refused.
                        Some((direction.request, "field-became-non-nullable"))
                    } else {
                        Some((true, "field-type-changed"))
                    };
                    if let Some((breaking, kind)) = kind {
                        changes.push(breaking, kind, &at, detail);
                    }
                    compare_rules(&at, &f.rules, &g.rules, direction, changes);
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

/// `API changes: N (B breaking, M non-breaking)`: how the text and Markdown reports begin.
fn headline(changes: &[Change]) -> String {
    let breaking = changes.iter().filter(|c| c.breaking).count();
    format!(
        "API changes: {} ({breaking} breaking, {} non-breaking)",
        changes.len(),
        changes.len() - breaking
    )
}

/// The changes, breaking ones first, each group in its order.
fn breaking_first(changes: &[Change]) -> Vec<&Change> {
    let mut sorted: Vec<&Change> = changes.iter().collect();
    sorted.sort_by_key(|c| !c.breaking);
    sorted
}

/// For people: a count, then one line per change, breaking first.
pub fn render_text(changes: &[Change]) -> String {
    let mut out = format!("{}\n", headline(changes));
    for change in breaking_first(changes) {
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
    let mut out = format!("### {}\n", headline(changes));
    if changes.is_empty() {
        out.push_str("\nThe two documents describe the same API.\n");
        return out;
    }
    out.push_str("\n| | change | where | detail |\n|---|---|---|---|\n");
    let cell = |text: &str| text.replace('|', "\\|");
    for change in breaking_first(changes) {
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
    use genlogs_auth_codegen::quirks::generator::rename_media_type;
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

    /// A document with `POST /t` taking `parameters` and a JSON body `Q`, answering a JSON `R`
    /// (content type `media`), with `extra` merged into the document and these component schemas.
    fn document(parameters: Value, schemas: Value, media: &str, extra: Value) -> Value {
        let mut doc = json!({
            "openapi": "3.0.3",
            "servers": [{ "url": "https://api.example.com/auth" }],
            "paths": { "/t": { "post": {
                "operationId": "op",
                "parameters": parameters,
                "requestBody": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Q" } } } },
                "responses": { "200": { "content": { media: { "schema": { "$ref": "#/components/schemas/R" } } } } }
            }}},
            "components": { "schemas": schemas }
        });
        for (key, value) in extra.as_object().unwrap() {
            doc[key] = value.clone();
        }
        doc
    }

    fn changes_between(old: &Value, new: &Value) -> Vec<(&'static str, bool, String)> {
        compare(&Surface::of(old), &Surface::of(new))
            .into_iter()
            .map(|c| (c.kind, c.breaking, format!("{}: {}", c.location, c.detail)))
            .collect()
    }

    fn schemas(q: Value, r: Value) -> Value {
        json!({ "Q": { "type": "object", "properties": q }, "R": { "type": "object", "properties": r } })
    }

    #[test]
    fn response_enum_values_come_and_go_without_breaking_this_client() {
        // As the pipeline leaves a response enum: moved aside, the field a plain string.
        let open = |values: Value| json!({ "kind": { "type": "string", "x-genlogs-relaxed": { "enum": values } } });
        let doc = |r: Value| {
            document(
                json!([]),
                schemas(json!({}), r),
                "application/json",
                json!({}),
            )
        };
        assert_eq!(
            changes_between(&doc(open(json!(["a", "b"]))), &doc(open(json!(["a", "c"])))),
            [
                (
                    "response-enum-value-added",
                    false,
                    r#"R.kind: "c""#.to_string()
                ),
                (
                    "response-enum-value-removed",
                    false,
                    r#"R.kind: "b""#.to_string()
                )
            ]
        );
        let plain = doc(json!({ "kind": { "type": "string" } }));
        assert_eq!(
            changes_between(&plain, &doc(open(json!(["a"]))))[0].0,
            "response-enum-added"
        );
        assert_eq!(
            changes_between(&doc(open(json!(["a"]))), &plain)[0].0,
            "response-enum-removed"
        );
    }

    #[test]
    fn a_request_enum_value_removed_or_a_new_enum_breaks_and_a_value_added_does_not() {
        let parameter = |values: Option<Value>| {
            let mut schema = json!({ "type": "string" });
            if let Some(values) = values {
                schema["enum"] = values;
            }
            let p = json!([{ "name": "grant", "in": "query", "schema": schema }]);
            document(
                p,
                schemas(json!({}), json!({})),
                "application/json",
                json!({}),
            )
        };
        let two = parameter(Some(json!(["a", "b"])));
        assert_eq!(
            changes_between(&two, &parameter(Some(json!(["a"])))),
            [(
                "request-enum-value-removed",
                true,
                r#"POST /t parameter grant: "b""#.to_string()
            )]
        );
        assert_eq!(
            changes_between(&two, &parameter(Some(json!(["a", "b", "c"]))))[0].0,
            "request-enum-value-added"
        );
        assert_eq!(
            changes_between(&parameter(None), &two)[0..1],
            [(
                "request-enum-added",
                true,
                r#"POST /t parameter grant: "a", "b""#.to_string()
            )]
        );
        assert_eq!(
            changes_between(&two, &parameter(None))[0..1],
            [(
                "request-enum-removed",
                false,
                "POST /t parameter grant: ".to_string()
            )]
        );
    }

    #[test]
    fn nullability_breaks_the_side_that_reads_it() {
        let nullable = json!({ "type": "string", "nullable": true });
        let plain = json!({ "type": "string" });
        let doc = |q: &Value, r: &Value| {
            let s = schemas(json!({ "a": q }), json!({ "b": r }));
            document(json!([]), s, "application/json", json!({}))
        };
        assert_eq!(
            changes_between(&doc(&plain, &plain), &doc(&plain, &nullable)),
            [(
                "field-became-nullable",
                true,
                "R.b: string -> string?".to_string()
            )]
        );
        assert_eq!(
            changes_between(&doc(&nullable, &plain), &doc(&plain, &plain)),
            [(
                "field-became-non-nullable",
                true,
                "Q.a: string? -> string".to_string()
            )]
        );
        assert_eq!(
            kinds(&changes_between_surfaces(
                &doc(&plain, &nullable),
                &doc(&plain, &plain)
            )),
            [("field-became-non-nullable", false)],
            "a response field that is never null any more breaks nothing"
        );
    }

    fn changes_between_surfaces(old: &Value, new: &Value) -> Vec<Change> {
        compare(&Surface::of(old), &Surface::of(new))
    }

    #[test]
    fn request_constraints_tightened_break_loosened_do_not_and_response_ones_never() {
        let parameter = |constraints: Value| {
            let mut schema = json!({ "type": "string" });
            for (k, v) in constraints.as_object().unwrap() {
                schema[k] = v.clone();
            }
            json!([{ "name": "refresh_token", "in": "query", "required": true, "schema": schema }])
        };
        let doc = |p: Value, r: Value| {
            document(
                p,
                schemas(json!({}), json!({ "id": r })),
                "application/json",
                json!({}),
            )
        };
        let base = doc(
            parameter(json!({ "maxLength": 10, "minimum": 1 })),
            json!({ "type": "string" }),
        );
        let tighter = doc(
            parameter(json!({ "maxLength": 5, "minimum": 1, "pattern": "^[a-z]+$" })),
            json!({ "type": "string", "x-genlogs-relaxed": { "maxLength": 3 } }),
        );
        assert_eq!(
            changes_between(&base, &tighter),
            [
                (
                    "request-constraint-tightened",
                    true,
                    "POST /t parameter refresh_token: maxLength 10 -> 5".to_string()
                ),
                (
                    "request-constraint-tightened",
                    true,
                    r#"POST /t parameter refresh_token: pattern none -> "^[a-z]+$""#.to_string()
                ),
                (
                    "response-constraint-changed",
                    false,
                    "R.id: maxLength none -> 3".to_string()
                ),
            ]
        );
        let looser = doc(
            parameter(json!({ "maxLength": 20 })),
            json!({ "type": "string" }),
        );
        assert_eq!(
            kinds(&changes_between_surfaces(&base, &looser)),
            [
                ("request-constraint-loosened", false),
                ("request-constraint-loosened", false)
            ]
        );
    }

    #[test]
    fn security_servers_media_types_and_deprecation_are_reported() {
        let scheme = |name: &str| {
            json!({ "components": { "schemas": schemas(json!({}), json!({})), "securitySchemes": {
                "Key": { "type": "apiKey", "in": "header", "name": name },
                "Bearer": { "type": "http", "scheme": "bearer" }
            }}})
        };
        let doc = |security: Value, name: &str| {
            let mut extra = scheme(name);
            extra["security"] = security;
            document(json!([]), json!({}), "application/json", extra)
        };
        let key = doc(json!([{ "Key": [] }]), "x-api-key");
        assert_eq!(
            changes_between(&key, &doc(json!([{ "Key": [] }]), "X-Genlogs-Key")),
            [(
                "security-changed",
                true,
                "POST /t: apiKey header x-api-key -> apiKey header x-genlogs-key".to_string()
            )]
        );
        assert_eq!(
            kinds(&changes_between_surfaces(
                &key,
                &doc(json!([{ "Key": [] }, { "Bearer": [] }]), "x-api-key")
            )),
            [("security-changed", false)],
            "the key is still one way in"
        );
        assert_eq!(
            kinds(&changes_between_surfaces(
                &key,
                &doc(json!([{ "Key": [] }]), "X-API-KEY")
            )),
            [],
            "header names are case-insensitive"
        );

        let base = document(
            json!([]),
            schemas(json!({}), json!({})),
            "application/json",
            json!({}),
        );
        let mut moved = base.clone();
        moved["servers"] = json!([{ "url": "https://auth.example.com" }]);
        assert_eq!(
            kinds(&changes_between_surfaces(&base, &moved)),
            [("server-removed", true), ("server-added", false)]
        );
        let xml = document(
            json!([]),
            schemas(json!({}), json!({})),
            "application/xml",
            json!({}),
        );
        assert_eq!(
            changes_between(&base, &xml),
            [(
                "response-media-type-changed",
                true,
                "POST /t response 200: application/json R -> application/xml R".to_string()
            )]
        );
        let mut form = base.clone();
        let content = &mut form["paths"]["/t"]["post"]["requestBody"]["content"];
        let form_media = "application/x-www-form-urlencoded";
        rename_media_type(
            content.as_object_mut().unwrap(),
            "application/json",
            form_media,
        )
        .unwrap();
        assert_eq!(
            changes_between(&base, &form),
            [(
                "request-media-type-changed",
                true,
                "POST /t request body: application/json Q -> application/x-www-form-urlencoded Q"
                    .to_string()
            )]
        );
        let mut deprecated = base.clone();
        deprecated["paths"]["/t"]["post"]["deprecated"] = json!(true);
        deprecated["components"]["schemas"]["R"]["properties"]["old"] =
            json!({ "type": "string", "deprecated": true });
        let mut before = base.clone();
        before["components"]["schemas"]["R"]["properties"]["old"] = json!({ "type": "string" });
        assert_eq!(
            kinds(&changes_between_surfaces(&before, &deprecated)),
            [("operation-deprecated", false), ("deprecated", false)]
        );
    }

    #[test]
    fn an_operation_id_upstream_renamed_is_news_but_not_breaking() {
        let named = |id: &str| {
            let mut doc = document(
                json!([]),
                schemas(json!({}), json!({})),
                "application/json",
                json!({}),
            );
            doc["paths"]["/t"]["post"]["x-genlogs-upstream-operation-id"] = json!(id);
            doc
        };
        assert_eq!(
            changes_between(&named("op_get"), &named("op_post")),
            [(
                "upstream-id-changed",
                false,
                "POST /t: op_get -> op_post (generated as `op` either way)".to_string()
            )]
        );
    }

    #[test]
    fn members_the_pipeline_drops_are_listed_as_ignored() {
        let old = json!({ "openapi": "3.1.0", "paths": {} });
        let mut new = old.clone();
        new["webhooks"] = json!({ "tokenRevoked": {} });
        let changes = crate::change_report(&old.to_string(), &new.to_string()).unwrap();
        assert_eq!(
            changes,
            [Change {
                breaking: false,
                kind: "ignored-member-added",
                location: "$.webhooks.tokenRevoked".into(),
                detail: "dropped by the pipeline: not relevant to a client".into(),
            }]
        );
        let back = crate::change_report(&new.to_string(), &old.to_string()).unwrap();
        assert_eq!(kinds(&back), [("ignored-member-removed", false)]);
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
