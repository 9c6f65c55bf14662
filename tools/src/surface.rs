//! The API surface of a corrected document: operations, parameters, response statuses and type
//! fields, in a stable order. Rendered as the committed `surface.txt` snapshot, and compared by
//! the change report ([`crate::diff`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use genlogs_auth_codegen::quirks::{FixReport, Kind};
use genlogs_auth_codegen::walk::{operations, type_name};

/// Everything a client of the API depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Surface {
    /// Keyed by `METHOD /path`.
    pub operations: BTreeMap<String, Operation>,
    /// Component schemas, keyed by name.
    pub types: BTreeMap<String, TypeDef>,
}

/// One operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Operation {
    /// The (corrected) operationId: the generated method's name.
    pub id: String,
    /// Keyed by parameter name.
    pub parameters: BTreeMap<String, Parameter>,
    /// The request body's type, if any.
    pub request_body: Option<Field>,
    /// Keyed by status (`200`, `4XX`, `default`): the body type, if any.
    pub responses: BTreeMap<String, Option<String>>,
}

/// One parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    /// `query`, `header`, `path` or `cookie`.
    pub location: String,
    /// The type, as [`type_name`] renders it.
    pub type_name: String,
    /// Whether the caller must send it.
    pub required: bool,
}

/// A named schema with properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeDef {
    /// The schema's own type (`object`, `string`, …).
    pub kind: String,
    /// Keyed by property name.
    pub fields: BTreeMap<String, Field>,
}

/// A property (or a request body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The type, as [`type_name`] renders it.
    pub type_name: String,
    /// Whether it is always present.
    pub required: bool,
}

impl Surface {
    /// Reads the surface of a corrected document.
    pub fn of(document: &Value) -> Self {
        let mut surface = Surface::default();
        for site in operations(document) {
            let operation = read_operation(site.get(document));
            surface.operations.insert(site.key(), operation);
        }
        let schemas = document
            .pointer("/components/schemas")
            .and_then(Value::as_object);
        for (name, schema) in schemas.into_iter().flatten() {
            surface.types.insert(name.clone(), read_type(schema));
        }
        surface
    }

    /// The `surface.txt` snapshot: the surface, then what each quirk fix and each 3.1 → 3.0
    /// translation did.
    pub fn render(&self, fixes: &[FixReport]) -> String {
        let mut out = String::new();
        for (key, operation) in &self.operations {
            let _ = writeln!(out, "operation {key} ({})", operation.id);
            for (name, p) in &operation.parameters {
                let _ = writeln!(
                    out,
                    "  parameter {} {name}: {}{}",
                    p.location,
                    p.type_name,
                    required(p.required)
                );
            }
            if let Some(body) = &operation.request_body {
                let _ = writeln!(
                    out,
                    "  request body: {}{}",
                    body.type_name,
                    required(body.required)
                );
            }
            for (status, body) in &operation.responses {
                let _ = writeln!(
                    out,
                    "  response {status}: {}",
                    body.as_deref().unwrap_or("(no body)")
                );
            }
        }
        for (name, def) in &self.types {
            let _ = writeln!(out, "type {name} ({})", def.kind);
            for (field, f) in &def.fields {
                let _ = writeln!(
                    out,
                    "  field {field}: {}{}",
                    f.type_name,
                    required(f.required)
                );
            }
        }
        for fix in fixes {
            let (what, nothing) = match fix.quirk.kind() {
                Kind::Quirk => ("quirk fix", "found nothing to fix"),
                Kind::Translation => ("3.1 translation", "nothing to translate"),
                Kind::Adaptation => ("adaptation", "nothing to adapt"),
            };
            let name = fix.quirk.name();
            if fix.applied() {
                let places: Vec<String> = fix.changed.iter().map(ToString::to_string).collect();
                let _ = writeln!(out, "{what} {name}: applied at {}", places.join(", "));
            } else {
                let _ = writeln!(out, "{what} {name}: {nothing}");
            }
        }
        out
    }
}

fn required(required: bool) -> &'static str {
    if required {
        " (required)"
    } else {
        " (optional)"
    }
}

fn read_operation(operation: &Value) -> Operation {
    let mut out = Operation {
        id: operation
            .get("operationId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        ..Default::default()
    };
    let parameters = operation.get("parameters").and_then(Value::as_array);
    for parameter in parameters.into_iter().flatten() {
        let name = parameter
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        out.parameters.insert(
            name.to_string(),
            Parameter {
                location: parameter
                    .get("in")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                type_name: parameter
                    .get("schema")
                    .map_or_else(|| "any".to_string(), type_name),
                required: parameter
                    .get("required")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            },
        );
    }
    if let Some(body) = operation.get("requestBody") {
        out.request_body = Some(Field {
            type_name: content_type_name(body.get("content")).unwrap_or_else(|| "any".into()),
            required: body
                .get("required")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        });
    }
    let responses = operation.get("responses").and_then(Value::as_object);
    for (status, response) in responses.into_iter().flatten() {
        out.responses
            .insert(status.clone(), content_type_name(response.get("content")));
    }
    out
}

/// `application/json AuthenticationResponse`, `*/* HTTPValidationError`, `*/*`, or `None` for no
/// content.
fn content_type_name(content: Option<&Value>) -> Option<String> {
    let (media, body) = content?.as_object()?.iter().next()?;
    Some(match body.get("schema") {
        Some(schema) => format!("{media} {}", type_name(schema)),
        None => media.clone(),
    })
}

fn read_type(schema: &Value) -> TypeDef {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let properties = schema.get("properties").and_then(Value::as_object);
    TypeDef {
        kind: schema
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("any")
            .to_string(),
        fields: properties
            .into_iter()
            .flatten()
            .map(|(name, property)| {
                let field = Field {
                    type_name: type_name(property),
                    required: required.contains(&name.as_str()),
                };
                (name.clone(), field)
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn type_names_are_short_and_comparable() {
        assert_eq!(
            type_name(&json!({ "$ref": "#/components/schemas/TokenSchema" })),
            "TokenSchema"
        );
        assert_eq!(
            type_name(&json!({ "type": "string", "format": "date-time" })),
            "string(date-time)"
        );
        assert_eq!(
            type_name(
                &json!({ "type": "array", "items": { "anyOf": [{ "type": "string" }, { "type": "integer" }] } })
            ),
            "array<string|integer>"
        );
        assert_eq!(
            type_name(&json!({ "type": "integer", "nullable": true })),
            "integer?"
        );
        assert_eq!(
            type_name(
                &json!({ "allOf": [{ "$ref": "#/components/schemas/T" }], "nullable": true })
            ),
            "T?"
        );
        assert_eq!(type_name(&json!({})), "any");
    }

    #[test]
    fn the_surface_lists_parameters_responses_and_fields() {
        let doc = json!({
            "paths": { "/t": { "post": {
                "operationId": "op",
                "parameters": [{ "name": "q", "in": "query", "required": true, "schema": { "type": "string" } }],
                "responses": { "200": { "content": { "application/json": { "schema": { "$ref": "#/components/schemas/R" } } } }, "401": { "description": "x" } }
            }}},
            "components": { "schemas": { "R": { "type": "object", "required": ["a"], "properties": { "a": { "type": "string" }, "b": { "type": "integer" } } } } }
        });
        assert_eq!(
            Surface::of(&doc).render(&[]),
            "operation POST /t (op)\n  parameter query q: string (required)\n  response 200: application/json R\n  response 401: (no body)\ntype R (object)\n  field a: string (required)\n  field b: integer (optional)\n"
        );
    }
}
