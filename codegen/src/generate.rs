//! The progenitor end of the pipeline: reads the corrected document as OpenAPI 3.0, checks the
//! shapes progenitor 0.15 would panic on, generates, and formats with prettyplease. Every failure
//! names a JSON path.

use serde_json::Value;

use crate::walk::{bodies, operations, parameter_sites};
use crate::{JsonPath, SpecError};

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
            format!("progenitor cannot generate this document ({why}); extend the quirk pass in codegen/src/quirks/"),
        )
    })?
    .map_err(|e| {
        SpecError::new(
            JsonPath::root(),
            format!("progenitor rejected the document: {e}; extend the quirk pass in codegen/src/quirks/"),
        )
    })?;
    let mut file = syn::parse2::<syn::File>(tokens).map_err(|e| {
        SpecError::new(
            JsonPath::root(),
            format!("progenitor produced code that does not parse: {e}"),
        )
    })?;
    add_required_only_call(&mut file, REQUIRED_ONLY.0, REQUIRED_ONLY.1);
    Ok(prettyplease::unparse(&file))
}

/// The generated method the hand-written layer calls, and the name of the call it uses instead.
pub const REQUIRED_ONLY: (&str, &str) = ("refresh_tokens", "refresh_tokens_required");

/// Adds `Client::<shim>`: the generated `method` called with its required arguments only and
/// `None` for every optional one (progenitor's positional methods take them all, in an order
/// of its own), so an optional parameter upstream adds never changes what the hand-written layer
/// calls. Nothing is added when there is no such method (the contract reports that first).
fn add_required_only_call(file: &mut syn::File, method: &str, shim: &str) {
    let signature = file.items.iter().find_map(|item| match item {
        syn::Item::Impl(block) if block.trait_.is_none() && is_client(&block.self_ty) => {
            block.items.iter().find_map(|item| match item {
                syn::ImplItem::Fn(f) if f.sig.ident == method => Some(f.sig.clone()),
                _ => None,
            })
        }
        _ => None,
    });
    let Some(mut signature) = signature else {
        return;
    };
    let mut arguments: Vec<syn::Expr> = Vec::new();
    let inputs = std::mem::take(&mut signature.inputs);
    for input in inputs {
        match &input {
            syn::FnArg::Typed(typed) if is_option(&typed.ty) => {
                arguments.push(syn::parse_quote!(None));
            }
            syn::FnArg::Typed(typed) => {
                let pattern = &typed.pat;
                arguments.push(syn::parse_quote!(#pattern));
                signature.inputs.push(input);
            }
            syn::FnArg::Receiver(_) => signature.inputs.push(input),
        }
    }
    let called = syn::Ident::new(method, proc_macro2::Span::call_site());
    signature.ident = syn::Ident::new(shim, proc_macro2::Span::call_site());
    let doc = format!(
        " `{method}` with its required arguments only (`None` for every optional one): what the \
         hand-written layer calls, so that an optional parameter upstream adds never breaks it."
    );
    file.items.push(syn::parse_quote! {
        impl Client {
            #[doc = #doc]
            pub #signature {
                self.#called(#(#arguments),*).await
            }
        }
    });
}

fn is_client(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Path(path) if path.path.is_ident("Client"))
}

fn is_option(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Path(path)
        if path.path.segments.last().is_some_and(|segment| segment.ident == "Option"))
}

/// progenitor's typed httpmock extensions (`MockServerExt`) for the corrected document, formatted
/// with prettyplease; `crate_path` is where the generated client's `types` live.
pub fn generate_httpmock(document: &Value, crate_path: &str) -> Result<String, SpecError> {
    let spec = to_openapi(document)?;
    check_generator_limits(document)?;
    let tokens = progenitor::Generator::new(&generation_settings())
        .httpmock(&spec, crate_path)
        .map_err(|e| {
            SpecError::new(
                JsonPath::root(),
                format!("progenitor could not generate the httpmock module: {e}"),
            )
        })?;
    let file = syn::parse2::<syn::File>(tokens).map_err(|e| {
        SpecError::new(
            JsonPath::root(),
            format!("progenitor's httpmock module does not parse: {e}"),
        )
    })?;
    Ok(prettyplease::unparse(&file))
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
            "crate::secret::SecretToken",
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
    fn check<T: serde::de::DeserializeOwned>(path: &JsonPath, value: &Value) -> Option<SpecError> {
        let error = serde_path_to_error::deserialize::<_, T>(value).err()?;
        Some(SpecError::new(
            path.join(&JsonPath::from_serde_path(error.path())),
            format!("not a valid OpenAPI 3.0 document here: {}", error.inner()),
        ))
    }
    for site in operations(document) {
        let operation = site.get(document);
        let parameters = operation.get("parameters").and_then(Value::as_array);
        for (i, parameter) in parameters.into_iter().flatten().enumerate() {
            let at = site.path.key("parameters").index(i);
            if let found @ Some(_) = check::<ReferenceOr<Parameter>>(&at, parameter) {
                return found;
            }
        }
        for (at, name) in bodies(&site, operation) {
            let value = at.get(document)?;
            let found = if name == "requestBody" {
                check::<ReferenceOr<RequestBody>>(&at, value)
            } else {
                check::<ReferenceOr<Response>>(&at, value)
            };
            if found.is_some() {
                return found;
            }
        }
        if let found @ Some(_) = check::<Operation>(&site.path, operation) {
            return found;
        }
    }
    let schemas = JsonPath::root().key("components").key("schemas");
    let members = schemas.get(document).and_then(Value::as_object);
    for (name, schema) in members.into_iter().flatten() {
        if let found @ Some(_) = check::<ReferenceOr<Schema>>(&schemas.key(name), schema) {
            return found;
        }
    }
    None
}

/// Shapes progenitor 0.15 panics on (`todo!`, assertions) rather than reporting: found first, by
/// path.
fn check_generator_limits(document: &Value) -> Result<(), SpecError> {
    for at in parameter_sites(document) {
        check_scalar_parameter(document, &at)?;
    }
    for site in operations(document) {
        let operation = site.get(document);
        check_one_body_kind(&site.path.key("responses"), operation)?;
        for (at, _) in bodies(&site, operation) {
            let content = at.key("content");
            let media_types = content.get(document).and_then(Value::as_object);
            for (media_type, media) in media_types.into_iter().flatten() {
                if media_type.starts_with("application/json") && media.get("schema").is_none() {
                    return Err(SpecError::new(
                        content.key(media_type),
                        "a JSON body without a schema, which progenitor cannot type; extend the quirk pass in codegen/src/quirks/ to give it one",
                    ));
                }
            }
        }
    }
    Ok(())
}

/// progenitor sends a header or path parameter with `value.to_string()`: an array or object
/// there would be a rustc error in generated code, so it is refused by path first.
fn check_scalar_parameter(document: &Value, at: &JsonPath) -> Result<(), SpecError> {
    let Some(parameter) = at.get(document) else {
        return Ok(());
    };
    let place = parameter.get("in").and_then(Value::as_str).unwrap_or("");
    if !matches!(place, "header" | "path") {
        return Ok(());
    }
    let mut schema = parameter.get("schema");
    for _ in 0..16 {
        let target = schema
            .and_then(|s| s.get("$ref").or_else(|| s.pointer("/allOf/0/$ref")))
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/components/schemas/"));
        match target {
            Some(name) => schema = document.pointer(&format!("/components/schemas/{name}")),
            None => break,
        }
    }
    let kind = schema.and_then(|s| s.get("type")).and_then(Value::as_str);
    let structured = matches!(kind, Some("array" | "object"))
        || schema.is_some_and(|s| s.get("properties").is_some());
    if structured {
        return Err(SpecError::new(
            at.key("schema"),
            format!("a {place} parameter of type {}, which progenitor can only send as text (`to_string`); extend fit_parameters in codegen/src/quirks/generator.rs", kind.unwrap_or("object")),
        ));
    }
    Ok(())
}

/// progenitor asserts (`response_types.len() <= 1`) when the success responses, or the error
/// responses, of one operation have bodies of different kinds; `default` counts as both.
fn check_one_body_kind(at: &JsonPath, operation: &Value) -> Result<(), SpecError> {
    let responses = operation.get("responses").and_then(Value::as_object);
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
                format!("{which} responses with bodies of different kinds ({}), which progenitor cannot generate; extend declare_error_statuses in codegen/src/quirks/operations.rs", kinds.into_iter().collect::<Vec<_>>().join("; ")),
            ));
        }
    }
    Ok(())
}
