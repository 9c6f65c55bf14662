//! The quirk-fix pass: one function per defect of GenLogs' published OpenAPI document, and one
//! per OpenAPI 3.1 construct that has an exact 3.0 form.
//!
//! `openapi.json` is kept exactly as upstream wrote it; every correction happens here, in code,
//! so that review can always diff upstream against what the crate is generated from. Each fix
//! returns the places it changed. A quirk fix that changes nothing means upstream corrected the
//! quirk (build.rs then prints a cargo warning so that the fix can be retired); a translation
//! that changes nothing only means the document does not use that construct.
//!
//! The fixes live by concern: [`version`] (3.1 → 3.0), [`schemas`] (the shapes of types) and
//! [`operations`] (calls, parameters, statuses, docs). All of them reach the document through
//! [`crate::walk`].

pub mod generator;
pub mod operations;
pub mod schemas;
pub mod version;

use serde_json::{json, Map, Value};

use crate::{JsonPath, SpecError};

/// Whether finding nothing to fix is news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A defect of upstream's document: finding nothing means upstream corrected it.
    Quirk,
    /// A 3.1 construct rewritten in its 3.0 form: finding nothing is the usual case.
    Translation,
    /// Valid OpenAPI rewritten into a form progenitor and typify generate compiling, tolerant
    /// code from: finding nothing is the usual case.
    Adaptation,
}

/// Declares [`Quirk`] from a list of fix functions, so that each variant's [`Quirk::name`] is
/// its function's name by construction (`stringify!`) and [`Quirk::apply`] calls that function.
macro_rules! fixes {
    ($( $(#[$doc:meta])* $variant:ident => $module:ident::$function:ident, $kind:ident; )*) => {
        /// One known defect of the upstream document, or one 3.1 → 3.0 translation.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Quirk {
            $( $(#[$doc])* $variant, )*
        }

        impl Quirk {
            /// Every fix, in the order the pass runs them.
            pub const ALL: &'static [Quirk] = &[$(Quirk::$variant),*];

            /// The fix's function name, as the reports and warnings print it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Quirk::$variant => stringify!($function),)*
                }
            }

            /// Whether it fixes a defect or translates a 3.1 construct.
            pub fn kind(self) -> Kind {
                match self {
                    $(Quirk::$variant => Kind::$kind,)*
                }
            }

            /// Runs this fix; returns the places it changed (empty: nothing to fix).
            pub fn apply(self, doc: &mut Value) -> Result<Vec<JsonPath>, SpecError> {
                match self {
                    $(Quirk::$variant => $module::$function(doc),)*
                }
            }
        }
    };
}

fixes! {
    /// `type: [X, "null"]` (3.1) → `type: X, nullable: true`.
    TypeArrays => version::translate_type_arrays, Translation;
    /// `anyOf`/`oneOf` of a schema and `{type: "null"}` (FastAPI's `Optional`) → `nullable`.
    NullUnions => version::translate_null_unions, Translation;
    /// `const` (3.1) → a one-value `enum`.
    Const => version::translate_const, Translation;
    /// Schema `examples: [..]` (3.1) → `example`.
    Examples => version::translate_examples, Translation;
    /// Numeric `exclusiveMinimum`/`exclusiveMaximum` (3.1) → the 3.0 boolean form.
    ExclusiveBounds => version::translate_exclusive_bounds, Translation;
    /// Keywords beside a `$ref` (3.1 applies them, 3.0 ignores them) → beside `allOf: [$ref]`.
    RefSiblings => version::translate_ref_siblings, Translation;
    /// 3.1 members that mean nothing to a client (`webhooks`, …) → dropped, reported.
    ClientIrrelevant31 => version::drop_client_irrelevant_31, Translation;
    /// a. `openapi: 3.1.0`, while progenitor 0.15 reads only 3.0.x.
    OpenApi31 => version::downgrade_openapi_31, Quirk;
    /// `allOf` composing objects (inheritance) → the one object they describe.
    AllOfObjects => generator::flatten_all_of, Adaptation;
    /// b. Object fields declared `type: object` with `items: {$ref}`.
    ItemsOnObject => schemas::inline_items_on_object, Quirk;
    /// c. `RefreshTokenSchema` duplicates `AccessTokenSchema`, title included.
    DuplicateTokenSchema => schemas::merge_duplicate_schemas, Quirk;
    /// d. `expires` typed as a bare string.
    ExpiresAsString => schemas::type_expires_as_datetime, Quirk;
    /// The token strings are not marked as credentials.
    TokensNotSecret => schemas::mark_tokens_secret, Quirk;
    /// e. `accept` declared as a required per-call header.
    AcceptParameter => operations::drop_accept_parameter, Quirk;
    /// f. `x-api-key` declared as a per-call header.
    ApiKeyParameter => operations::api_key_as_security_scheme, Quirk;
    /// g. `operationId: refresh_token_get` on a POST.
    MisnamedOperation => operations::rename_operations, Quirk;
    /// h. Only 200 and 422 declared.
    UndeclaredErrors => operations::declare_error_statuses, Quirk;
    /// i. Error semantics documented wrongly (401 copied from create-token).
    MisleadingDocs => operations::document_operations, Quirk;
    /// Nullable parameter schemas, string constraints on parameters, cookie parameters.
    Parameters => generator::fit_parameters, Adaptation;
    /// String formats and patterns that need a crate the library does not depend on.
    ForeignStrings => generator::strings_without_dependencies, Adaptation;
    /// JSON bodies under a media type other than `application/json`.
    JsonMediaTypes => generator::json_media_types, Adaptation;
    /// Closed enums and closed objects in response schemas.
    ClosedResponses => generator::open_response_schemas, Adaptation;
}

/// What one fix did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixReport {
    /// Which fix.
    pub quirk: Quirk,
    /// The places it changed; empty when it found nothing to fix.
    pub changed: Vec<JsonPath>,
}

impl FixReport {
    /// Whether the fix found its quirk.
    pub fn applied(&self) -> bool {
        !self.changed.is_empty()
    }
}

/// Runs every fix in order.
pub fn apply_all(doc: &mut Value) -> Result<Vec<FixReport>, SpecError> {
    if !doc.is_object() {
        return Err(SpecError::new(
            JsonPath::root(),
            "the document must be a JSON object",
        ));
    }
    Quirk::ALL
        .iter()
        .map(|&quirk| {
            Ok(FixReport {
                quirk,
                changed: quirk.apply(doc)?,
            })
        })
        .collect()
}

/// `object[key]` as an object, created (or replaced, if it is something else) when needed.
fn object_entry<'a>(object: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = object.entry(key).or_insert_with(|| json!({}));
    if !entry.is_object() {
        *entry = json!({});
    }
    entry.as_object_mut().expect("just made an object")
}

/// What the fix modules' tests share.
#[cfg(test)]
mod testing {
    use serde_json::Value;

    use crate::{JsonPath, SpecError};

    /// The places a fix reports, as JSONPath text.
    pub(crate) fn rendered(paths: &[JsonPath]) -> Vec<String> {
        paths.iter().map(ToString::to_string).collect()
    }

    /// Runs `fix` on `doc`: it must report exactly the places `changed`, and a second run must
    /// find nothing more to fix.
    pub(crate) fn assert_fixes(
        fix: fn(&mut Value) -> Result<Vec<JsonPath>, SpecError>,
        doc: &mut Value,
        changed: &[&str],
    ) {
        assert_eq!(rendered(&fix(doc).unwrap()), changed);
        assert!(fix(doc).unwrap().is_empty(), "a second run fixes nothing");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sources of the fixes, to check that each reported name is a real function there.
    const SOURCES: [&str; 4] = [
        include_str!("generator.rs"),
        include_str!("version.rs"),
        include_str!("schemas.rs"),
        include_str!("operations.rs"),
    ];

    #[test]
    fn each_fix_is_named_after_its_own_public_function() {
        for quirk in Quirk::ALL {
            let signature = format!(
                "pub fn {}(doc: &mut Value) -> Result<Vec<JsonPath>, SpecError>",
                quirk.name()
            );
            let found = SOURCES.iter().filter(|s| s.contains(&signature)).count();
            assert_eq!(found, 1, "no single `{signature}` in src/quirks/");
        }
        let mut names: Vec<_> = Quirk::ALL.iter().map(|q| q.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Quirk::ALL.len(), "names are unique");
    }

    #[test]
    fn translations_run_before_the_version_is_downgraded() {
        let downgrade = Quirk::ALL.iter().position(|q| *q == Quirk::OpenApi31);
        let last_translation = Quirk::ALL
            .iter()
            .rposition(|q| q.kind() == Kind::Translation);
        assert!(last_translation < downgrade);
    }

    #[test]
    fn a_document_that_is_not_an_object_is_refused() {
        let error = apply_all(&mut json!([])).unwrap_err();
        assert_eq!(error.path.to_string(), "$");
    }
}
