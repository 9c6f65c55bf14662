//! The builders' plain setters, written once.

/// Builder setters that only store their argument: each line
/// `with_x(x: T) => field.path = expression;` (with its doc comment) is
/// `pub fn with_x(mut self, x: T) -> Self`, setting `self.field.path` to the expression. Setters
/// that do more (validate, clamp with a fallback, set two fields) are written out.
macro_rules! setters {
    ($(
        $(#[$attr:meta])*
        $name:ident($param:ident: $ty:ty) => $($field:ident).+ = $value:expr;
    )*) => {$(
        $(#[$attr])*
        pub fn $name(mut self, $param: $ty) -> Self {
            self.$($field).+ = $value;
            self
        }
    )*};
}
pub(crate) use setters;
