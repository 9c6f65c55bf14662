//! The API surface of a corrected document: operations, parameters, response statuses and type
//! fields, in a stable order. Rendered as the committed `surface.txt` snapshot, and compared by
//! the change report ([`crate::diff`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::Value;

use genlogs_auth_codegen::quirks::generator::keyword;
use genlogs_auth_codegen::quirks::{FixReport, Kind, Quirk};
use genlogs_auth_codegen::walk::{operations, security_scheme_phrase, type_name};
use genlogs_auth_codegen::Normalized;

/// The validation keywords the change report compares (also where the pipeline moved them aside,
/// `x-genlogs-relaxed`).
pub const CONSTRAINTS: &[&str] = &[
    "minLength",
    "maxLength",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
];

/// Everything a client of the API depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Surface {
    /// Keyed by `METHOD /path`.
    pub operations: BTreeMap<String, Operation>,
    /// Component schemas, keyed by name.
    pub types: BTreeMap<String, TypeDef>,
    /// The `servers` URLs.
    pub servers: BTreeSet<String>,
    /// Members the pipeline dropped as meaningless to a client (`$.webhooks.tokenRevoked`).
    pub ignored: BTreeSet<String>,
}

/// One operation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Operation {
    /// The (corrected) operationId: the generated method's name.
    pub id: String,
    /// Upstream's own operationId, where the pipeline renamed it.
    pub upstream_id: Option<String>,
    /// Keyed by parameter name.
    pub parameters: BTreeMap<String, Parameter>,
    /// The request body's type, if any.
    pub request_body: Option<Field>,
    /// Keyed by status (`200`, `4XX`, `default`): the body type, if any.
    pub responses: BTreeMap<String, Option<String>>,
    /// Whether the operation is marked `deprecated`.
    pub deprecated: bool,
    /// The credentials it accepts, one alternative each (`apiKey header x-api-key`, schemes an
    /// alternative needs together joined by ` + `, `none`); empty when it declares none.
    pub security: BTreeSet<String>,
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
    /// What its schema says beyond the type.
    pub rules: Rules,
}

/// What a schema says beyond its type: listed values, validation keywords, deprecation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// Its `enum` values, rendered as JSON; empty when any value goes.
    pub values: Vec<String>,
    /// Its [`CONSTRAINTS`], keyed by keyword.
    pub constraints: BTreeMap<String, Value>,
    /// Whether it is marked `deprecated`.
    pub deprecated: bool,
}

impl Rules {
    fn of(schema: &Value) -> Self {
        let values = keyword(schema, "enum").and_then(Value::as_array);
        Rules {
            values: values
                .into_iter()
                .flatten()
                .map(ToString::to_string)
                .collect(),
            constraints: CONSTRAINTS
                .iter()
                .filter_map(|k| keyword(schema, k).map(|v| (k.to_string(), v.clone())))
                .collect(),
            deprecated: schema.get("deprecated").and_then(Value::as_bool) == Some(true),
        }
    }

    /// ` enum [..]`, ` maxLength 8`, ` deprecated`: what `surface.txt` appends to a line.
    fn render(&self) -> String {
        let mut out = String::new();
        if !self.values.is_empty() {
            let _ = write!(out, " enum [{}]", self.values.join(", "));
        }
        for (key, value) in &self.constraints {
            let _ = write!(out, " {key} {value}");
        }
        if self.deprecated {
            out.push_str(" deprecated");
        }
        out
    }
}

/// A named schema with properties.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypeDef {
    /// The schema's own type (`object`, `string`, …).
    pub kind: String,
    /// Keyed by property name.
    pub fields: BTreeMap<String, Field>,
    /// What the schema itself says beyond its type (an enum component's values).
    pub rules: Rules,
}

/// A property (or a request body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The type, as [`type_name`] renders it.
    pub type_name: String,
    /// Whether it is always present.
    pub required: bool,
    /// What its schema says beyond the type.
    pub rules: Rules,
}

impl Surface {
    /// Reads the surface of a corrected document.
    pub fn of(document: &Value) -> Self {
        let mut surface = Surface::default();
        for site in operations(document) {
            let operation = read_operation(document, site.get(document));
            surface.operations.insert(site.key(), operation);
        }
        let servers = document.get("servers").and_then(Value::as_array);
        surface.servers = servers
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("url").and_then(Value::as_str))
            .map(ToString::to_string)
            .collect();
        let schemas = document
            .pointer("/components/schemas")
            .and_then(Value::as_object);
        for (name, schema) in schemas.into_iter().flatten() {
            surface.types.insert(name.clone(), read_type(schema));
        }
        surface
    }

    /// The surface of a corrected document, with the members the pipeline dropped as
    /// meaningless to a client (the change report lists those too).
    pub fn of_normalized(normalized: &Normalized) -> Self {
        let mut surface = Self::of(&normalized.document);
        let dropped = normalized
            .fixes
            .iter()
            .filter(|fix| fix.quirk == Quirk::ClientIrrelevant31)
            .flat_map(|fix| fix.changed.iter().map(ToString::to_string));
        surface.ignored = dropped
            .filter(|path| {
                [
                    "$.webhooks",
                    "$.jsonSchemaDialect",
                    "$.components.pathItems",
                ]
                .iter()
                .any(|member| path.starts_with(member))
            })
            .collect();
        surface
    }

    /// The `surface.txt` snapshot: the surface, then what each quirk fix and each 3.1 → 3.0
    /// translation did.
    pub fn render(&self, fixes: &[FixReport]) -> String {
        let mut out = String::new();
        for server in &self.servers {
            let _ = writeln!(out, "server {server}");
        }
        for (key, operation) in &self.operations {
            let deprecated = if operation.deprecated {
                " deprecated"
            } else {
                ""
            };
            let _ = writeln!(out, "operation {key} ({}){deprecated}", operation.id);
            for alternative in &operation.security {
                let _ = writeln!(out, "  security {alternative}");
            }
            for (name, p) in &operation.parameters {
                let _ = writeln!(
                    out,
                    "  parameter {} {name}: {}{}{}",
                    p.location,
                    p.type_name,
                    required(p.required),
                    p.rules.render()
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
            let _ = writeln!(out, "type {name} ({}){}", def.kind, def.rules.render());
            for (field, f) in &def.fields {
                let _ = writeln!(
                    out,
                    "  field {field}: {}{}{}",
                    f.type_name,
                    required(f.required),
                    f.rules.render()
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

fn read_operation(document: &Value, operation: &Value) -> Operation {
    let mut out = Operation {
        id: operation
            .get("operationId")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        upstream_id: operation
            .get(genlogs_auth_codegen::quirks::operations::UPSTREAM_ID)
            .and_then(Value::as_str)
            .map(ToString::to_string),
        deprecated: operation.get("deprecated").and_then(Value::as_bool) == Some(true),
        security: read_security(document, operation),
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
                rules: {
                    let mut rules = parameter.get("schema").map(Rules::of).unwrap_or_default();
                    rules.deprecated |=
                        parameter.get("deprecated").and_then(Value::as_bool) == Some(true);
                    rules
                },
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
            rules: Rules::default(),
        });
    }
    let responses = operation.get("responses").and_then(Value::as_object);
    for (status, response) in responses.into_iter().flatten() {
        out.responses
            .insert(status.clone(), content_type_name(response.get("content")));
    }
    out
}

/// The operation's security requirement (its own, or the document's), one phrase per alternative.
fn read_security(document: &Value, operation: &Value) -> BTreeSet<String> {
    let requirements = operation
        .get("security")
        .or_else(|| document.get("security"))
        .and_then(Value::as_array);
    let schemes = document.pointer("/components/securitySchemes");
    requirements
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .map(|alternative| {
            let names: Vec<String> = alternative
                .keys()
                .map(|name| match schemes.and_then(|s| s.get(name)) {
                    Some(scheme) => security_scheme_phrase(scheme),
                    None => format!("undeclared {name}"),
                })
                .collect();
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(" + ")
            }
        })
        .collect()
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
                    rules: Rules::of(property),
                };
                (name.clone(), field)
            })
            .collect(),
        rules: Rules::of(schema),
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
