//! Finding the core crate from the user's crate: the `crate = path`
//! argument, else the `migrate` facade, else `migrate-core` itself.

use proc_macro_crate::{FoundCrate, crate_name};
use proc_macro2::{Span, TokenStream};
use quote::quote;

pub(crate) fn core_path(explicit: Option<&syn::Path>) -> TokenStream {
    if let Some(path) = explicit {
        return quote!(#path);
    }
    for (package, itself) in [("migrate", "migrate"), ("migrate-core", "migrate_core")] {
        match crate_name(package) {
            Ok(FoundCrate::Itself) => {
                let ident = syn::Ident::new(itself, Span::call_site());
                return quote!(::#ident);
            }
            Ok(FoundCrate::Name(name)) => {
                let ident = syn::Ident::new(&name, Span::call_site());
                return quote!(::#ident);
            }
            Err(_) => {}
        }
    }
    // Neither is a direct dependency (e.g. reached through another crate's
    // re-export without `crate = path`): name the facade, the usual case.
    quote!(::migrate)
}
