//! Stage 1: the attribute's arguments as written, without judging them.

use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Token};

/// One `key = value` (or a bare `key`) of the attribute.
pub(crate) struct Arg {
    /// The key, kept as written (`crate` is accepted even though it is a
    /// keyword).
    pub(crate) key: syn::Ident,
    /// The value after `=`, if any.
    pub(crate) value: Option<Expr>,
}

/// The attribute's arguments: a comma-separated list.
pub(crate) struct Args(pub(crate) Vec<Arg>);

impl Parse for Arg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let key = input.call(syn::ext::IdentExt::parse_any)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(Arg { key, value })
    }
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        Ok(Args(
            Punctuated::<Arg, Token![,]>::parse_terminated(input)?
                .into_iter()
                .collect(),
        ))
    }
}
