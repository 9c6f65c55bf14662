//! The spec pipeline: `openapi.json` → quirk fixes → progenitor → formatted Rust.
//!
//! This module is not part of the library. `build.rs` compiles it with `#[path]`, and so do the
//! tests and the `spec-diff` example, so the code that the crate ships, the committed snapshots
//! and the change report all come from one pipeline.

#![allow(dead_code)] // each includer uses a different part of the pipeline

pub mod diff;
pub mod json_path;
pub mod quirks;
pub mod surface;

use std::fmt;
use std::path::Path;

use serde_json::Value;

pub use json_path::JsonPath;
pub use quirks::FixReport;

/// A spec document the pipeline cannot turn into code: says where and what.
#[derive(Debug)]
pub struct SpecError {
    /// Where in the document the problem is, as a JSONPath (`$.paths['/token/refresh'].post`).
    pub path: JsonPath,
    /// What is wrong there, and what to do about it.
    pub message: String,
}

impl SpecError {
    pub fn new(path: JsonPath, message: impl Into<String>) -> Self {
        Self {
            path,
            message: message.into(),
        }
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "openapi.json at {}: {}", self.path, self.message)
    }
}

impl std::error::Error for SpecError {}

/// The document after the quirk pass, with what each fix did.
#[derive(Debug, Clone)]
pub struct Normalized {
    /// The corrected document, as JSON (key order kept from upstream).
    pub document: Value,
    /// One report per fix, in the order they ran.
    pub fixes: Vec<FixReport>,
}

impl Normalized {
    /// The corrected document, pretty-printed: the committed `normalized.json` snapshot.
    pub fn to_pretty_json(&self) -> String {
        let mut text =
            serde_json::to_string_pretty(&self.document).expect("a Value always serializes");
        text.push('\n');
        text
    }
}

/// Parses the upstream text and runs every quirk fix on it.
pub fn normalize(text: &str) -> Result<Normalized, SpecError> {
    let mut document: Value = serde_json::from_str(text).map_err(|e| {
        SpecError::new(
            JsonPath::root(),
            format!(
                "not valid JSON (line {}, column {}): {e}",
                e.line(),
                e.column()
            ),
        )
    })?;
    let fixes = quirks::apply_all(&mut document)?;
    Ok(Normalized { document, fixes })
}

/// The three committed snapshots of one spec: what review reads when the spec changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshots {
    /// The generated Rust code, as prettyplease formats it (`codegen.rs`).
    pub code: String,
    /// The corrected document, pretty-printed in upstream's key order (`normalized.json`).
    pub normalized: String,
    /// Operations, parameters, statuses, fields and quirk-fix outcomes (`surface.txt`).
    pub surface: String,
}

/// Runs the whole pipeline on a spec's text.
pub fn snapshots(text: &str) -> Result<Snapshots, SpecError> {
    let normalized = normalize(text)?;
    Ok(Snapshots {
        code: generate(&normalized.document)?,
        surface: surface::Surface::of(&normalized.document).render(&normalized.fixes),
        normalized: normalized.to_pretty_json(),
    })
}

/// The change report between two specs' texts, each corrected by the quirk pass first.
pub fn change_report(old: &str, new: &str) -> Result<Vec<diff::Change>, SpecError> {
    let surface = |text: &str| normalize(text).map(|n| surface::Surface::of(&n.document));
    Ok(diff::compare(&surface(old)?, &surface(new)?))
}

/// Reads the corrected document as OpenAPI 3.0, naming the JSON path of anything it cannot read.
pub fn to_openapi(document: &Value) -> Result<openapiv3::OpenAPI, SpecError> {
    serde_path_to_error::deserialize(document).map_err(|e| {
        // openapiv3 reads paths and schemas through untagged enums, which lose the path of the
        // failure; read the parts one by one to find the deepest one that fails.
        locate_openapi_error(document).unwrap_or_else(|| {
            SpecError::new(
                JsonPath::from_serde_path(e.path()),
                format!("not a valid OpenAPI 3.0 document here: {}", e.inner()),
            )
        })
    })
}

fn locate_openapi_error(document: &Value) -> Option<SpecError> {
    use openapiv3::{Operation, Parameter, ReferenceOr, RequestBody, Response, Schema};
    fn check<T: serde::de::DeserializeOwned>(path: JsonPath, value: &Value) -> Option<SpecError> {
        let error = serde_path_to_error::deserialize::<_, T>(value).err()?;
        Some(SpecError::new(
            path.join(&JsonPath::from_serde_path(error.path())),
            format!("not a valid OpenAPI 3.0 document here: {}", error.inner()),
        ))
    }
    let root = JsonPath::root();
    let paths = document.get("paths").and_then(Value::as_object);
    for (route, item) in paths.into_iter().flatten() {
        let item_path = root.key("paths").key(route);
        for (method, operation) in item.as_object().into_iter().flatten() {
            let at = item_path.key(method);
            let parameters = operation.get("parameters").and_then(Value::as_array);
            for (i, parameter) in parameters.into_iter().flatten().enumerate() {
                let found =
                    check::<ReferenceOr<Parameter>>(at.key("parameters").index(i), parameter);
                if found.is_some() {
                    return found;
                }
            }
            if let Some(body) = operation.get("requestBody") {
                if let found @ Some(_) =
                    check::<ReferenceOr<RequestBody>>(at.key("requestBody"), body)
                {
                    return found;
                }
            }
            let responses = operation.get("responses").and_then(Value::as_object);
            for (status, response) in responses.into_iter().flatten() {
                let found =
                    check::<ReferenceOr<Response>>(at.key("responses").key(status), response);
                if found.is_some() {
                    return found;
                }
            }
            if let found @ Some(_) = check::<Operation>(at.clone(), operation) {
                return found;
            }
        }
    }
    let schemas = document
        .pointer("/components/schemas")
        .and_then(Value::as_object);
    for (name, schema) in schemas.into_iter().flatten() {
        let at = root.key("components").key("schemas").key(name);
        if let found @ Some(_) = check::<ReferenceOr<Schema>>(at, schema) {
            return found;
        }
    }
    None
}

/// The progenitor settings the crate is generated with, in one place so that build.rs, the
/// snapshot test and the change report agree.
pub fn generation_settings() -> progenitor::GenerationSettings {
    let mut settings = progenitor::GenerationSettings::default();
    settings
        // Positional methods keep no copy of their arguments, so no builder's derived `Debug`
        // can print the refresh token.
        .with_interface(progenitor::InterfaceStyle::Positional)
        // The hand-written hooks (api key, timeout, body cap) are required, not optional.
        .with_hooks(progenitor::HooksMode::Expected)
        .with_inner_type(quote_path("crate::transport::Transport"))
        .with_conversion(
            string_schema("date-time"),
            "crate::expiry::Expiry",
            std::iter::empty(),
        )
        .with_conversion(
            string_schema("password"),
            "crate::secret::Token",
            std::iter::empty(),
        );
    settings
}

fn string_schema(format: &str) -> schemars::schema::SchemaObject {
    schemars::schema::SchemaObject {
        instance_type: Some(schemars::schema::InstanceType::String.into()),
        format: Some(format.to_string()),
        ..Default::default()
    }
}

fn quote_path(path: &str) -> proc_macro2::TokenStream {
    path.parse().expect("a Rust path is a token stream")
}

/// Shapes progenitor 0.15 panics on (`todo!`) rather than reporting: found first, by path.
fn check_generator_limits(document: &Value) -> Result<(), SpecError> {
    let paths = document.get("paths").and_then(Value::as_object);
    for (route, item) in paths.into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            let at = JsonPath::root().key("paths").key(route).key(method);
            let responses = operation.get("responses").and_then(Value::as_object);
            let bodies = responses
                .into_iter()
                .flatten()
                .map(|(status, response)| (at.key("responses").key(status), response))
                .chain(
                    operation
                        .get("requestBody")
                        .map(|body| (at.key("requestBody"), body)),
                );
            check_one_body_kind(&at.key("responses"), responses)?;
            for (at, body) in bodies {
                let content = body.get("content").and_then(Value::as_object);
                for (media_type, media) in content.into_iter().flatten() {
                    if media_type.starts_with("application/json") && media.get("schema").is_none() {
                        return Err(SpecError::new(
                            at.key("content").key(media_type),
                            "a JSON body without a schema, which progenitor cannot type; extend the quirk pass in src/codegen/quirks.rs to give it one",
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// progenitor asserts (`response_types.len() <= 1`) when the success responses, or the error
/// responses, of one operation have bodies of different kinds; `default` counts as both.
fn check_one_body_kind(
    at: &JsonPath,
    responses: Option<&serde_json::Map<String, Value>>,
) -> Result<(), SpecError> {
    let kind = |response: &Value| match response.get("content").and_then(Value::as_object) {
        Some(content) if !content.is_empty() => content
            .iter()
            .find(|(media, _)| media.starts_with("application/json"))
            .map_or_else(
                || "raw".to_string(),
                |(_, media)| format!("typed {}", media.get("schema").unwrap_or(&Value::Null)),
            ),
        _ => "none".to_string(),
    };
    for success in [true, false] {
        let mut kinds = std::collections::BTreeSet::new();
        for (status, response) in responses.into_iter().flatten() {
            let is_success = status.starts_with('2');
            if status == "default" || is_success == success {
                kinds.insert(kind(response));
            }
        }
        if kinds.len() > 1 {
            let which = if success { "success" } else { "error" };
            return Err(SpecError::new(
                at.clone(),
                format!("{which} responses with bodies of different kinds ({}), which progenitor cannot generate; extend declare_error_statuses in src/codegen/quirks.rs", kinds.into_iter().collect::<Vec<_>>().join("; ")),
            ));
        }
    }
    Ok(())
}

/// What build.rs does, as a function the tests can call: reads `openapi.json` under
/// `manifest_dir`, writes `codegen.rs` under `out_dir`, and returns the cargo warnings to print
/// (one per quirk fix that found nothing to fix).
pub fn build(manifest_dir: &Path, out_dir: &Path) -> Result<Vec<String>, String> {
    let spec_path = manifest_dir.join("openapi.json");
    let text = std::fs::read_to_string(&spec_path)
        .map_err(|e| format!("cannot read {}: {e}", spec_path.display()))?;
    let normalized = normalize(&text).map_err(|e| e.to_string())?;
    let code = generate(&normalized.document).map_err(|e| e.to_string())?;
    let out_path = out_dir.join("codegen.rs");
    std::fs::write(&out_path, code)
        .map_err(|e| format!("cannot write {}: {e}", out_path.display()))?;
    Ok(normalized
        .fixes
        .iter()
        .filter(|fix| !fix.applied())
        .map(|fix| {
            format!(
                "quirk fix `{}` found nothing to fix in openapi.json: upstream may have corrected \
                 it; check the spec diff and retire the fix",
                fix.quirk.name()
            )
        })
        .collect())
}

/// Runs progenitor on the corrected document and formats the result with prettyplease.
pub fn generate(document: &Value) -> Result<String, SpecError> {
    let spec = to_openapi(document)?;
    check_generator_limits(document)?;
    let mut generator = progenitor::Generator::new(&generation_settings());
    // progenitor asserts (panics) on some shapes it does not support; turn that into an error too.
    let tokens = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        generator.generate_tokens(&spec)
    }))
    .map_err(|panic| {
        let why = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("unknown panic");
        SpecError::new(
            JsonPath::root().key("paths"),
            format!("progenitor cannot generate this document ({why}); extend the quirk pass in src/codegen/quirks.rs"),
        )
    })?
    .map_err(|e| {
        SpecError::new(
            JsonPath::root(),
            format!("progenitor rejected the document: {e}; extend the quirk pass in src/codegen/quirks.rs"),
        )
    })?;
    let file = syn::parse2::<syn::File>(tokens).map_err(|e| {
        SpecError::new(
            JsonPath::root(),
            format!("progenitor produced code that does not parse: {e}"),
        )
    })?;
    Ok(prettyplease::unparse(&file))
}
