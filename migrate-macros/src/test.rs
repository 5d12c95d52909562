//! `#[migrate::test]`: parse the options and the test function, check
//! them (fixture files must exist), and expand to a `#[test]` that runs the
//! function on a database of its own.

use std::path::PathBuf;

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, FnArg, ItemFn, Lit, LitStr, Type};

use crate::ast::{Arg, Args};

const KEYS: &str = "`fixtures`, `version`, `migrator`, `crate`";

/// The options, checked.
struct Options {
    fixtures: Vec<(LitStr, String)>,
    version: Option<LitStr>,
    migrator: Option<syn::Path>,
    krate: Option<syn::Path>,
}

fn string(value: Option<&Expr>, key: &syn::Ident) -> syn::Result<LitStr> {
    match value {
        Some(Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        })) => Ok(s.clone()),
        Some(other) => Err(syn::Error::new(
            other.span(),
            format!("`{key}` takes a string literal"),
        )),
        None => Err(syn::Error::new(
            key.span(),
            format!("`{key}` needs a value: `{key} = \"…\"`"),
        )),
    }
}

fn path(value: Option<&Expr>, key: &syn::Ident) -> syn::Result<syn::Path> {
    match value {
        Some(Expr::Path(p)) => Ok(p.path.clone()),
        Some(other) => Err(syn::Error::new(
            other.span(),
            format!("`{key}` takes a path"),
        )),
        None => Err(syn::Error::new(
            key.span(),
            format!("`{key}` needs a value: `{key} = path`"),
        )),
    }
}

/// A fixture's absolute path, or an error on its literal.
fn fixture(lit: &LitStr) -> syn::Result<(LitStr, String)> {
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let full = PathBuf::from(&root).join(lit.value());
    if !full.is_file() {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "fixture file `{}` not found (looked for {}; paths are relative to the crate's Cargo.toml)",
                lit.value(),
                full.display()
            ),
        ));
    }
    Ok((lit.clone(), full.to_string_lossy().into_owned()))
}

fn options(args: Args) -> syn::Result<Options> {
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    let mut options = Options {
        fixtures: Vec::new(),
        version: None,
        migrator: None,
        krate: None,
    };
    for Arg { key, value } in args.0 {
        match key.to_string().as_str() {
            "fixtures" => match &value {
                Some(Expr::Array(list)) => {
                    for item in &list.elems {
                        match string(Some(item), &key).and_then(|lit| fixture(&lit)) {
                            Ok(f) => options.fixtures.push(f),
                            Err(e) => push(e),
                        }
                    }
                }
                _ => push(syn::Error::new(
                    value.as_ref().map_or(key.span(), Spanned::span),
                    "`fixtures` takes a list of SQL files: `fixtures = [\"tests/fixtures/users.sql\"]`",
                )),
            },
            "version" => match string(value.as_ref(), &key) {
                Ok(lit) => match semver::Version::parse(&lit.value()) {
                    Ok(_) => options.version = Some(lit),
                    Err(e) => push(syn::Error::new(
                        lit.span(),
                        format!("`{}` is not a semver version: {e}", lit.value()),
                    )),
                },
                Err(e) => push(e),
            },
            "migrator" => match path(value.as_ref(), &key) {
                Ok(p) => options.migrator = Some(p),
                Err(e) => push(e),
            },
            "crate" => match path(value.as_ref(), &key) {
                Ok(p) => options.krate = Some(p),
                Err(e) => push(e),
            },
            other => push(syn::Error::new(
                key.span(),
                format!("unknown option `{other}`; expected one of {KEYS}"),
            )),
        }
    }
    errors.map_or(Ok(options), Err)
}

/// The connection type of the test's one argument, `&mut C`.
fn connection(item: &ItemFn) -> syn::Result<Type> {
    if let Some(asyncness) = &item.sig.asyncness {
        return Err(syn::Error::new(
            asyncness.span(),
            "`#[migrate::test]` takes a synchronous function: async connections are not supported yet",
        ));
    }
    if !item.sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            item.sig.generics.span(),
            "a `#[migrate::test]` function cannot be generic: name its connection type",
        ));
    }
    let inputs: Vec<&FnArg> = item.sig.inputs.iter().collect();
    let [arg] = inputs.as_slice() else {
        return Err(syn::Error::new(
            if inputs.is_empty() {
                item.sig.ident.span()
            } else {
                item.sig.inputs.span()
            },
            "a `#[migrate::test]` function takes one argument, its connection: `conn: &mut diesel::PgConnection`",
        ));
    };
    match arg {
        FnArg::Typed(typed) => match &*typed.ty {
            Type::Reference(r) if r.mutability.is_some() => Ok((*r.elem).clone()),
            other => Err(syn::Error::new_spanned(
                other,
                "the connection is passed as `&mut`: e.g. `conn: &mut diesel::SqliteConnection`",
            )),
        },
        FnArg::Receiver(r) => Err(syn::Error::new(
            r.span(),
            "a `#[migrate::test]` function is a free function, not a method",
        )),
    }
}

pub(crate) fn expand(args: Args, item: ItemFn) -> syn::Result<TokenStream> {
    let (options, conn) = match (options(args), connection(&item)) {
        (Ok(o), Ok(c)) => (o, c),
        (Err(mut a), Err(b)) => {
            a.combine(b);
            return Err(a);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let krate = options
        .krate
        .map_or_else(|| quote!(::migrate), |p| quote!(#p));
    let ItemFn {
        attrs,
        vis,
        sig,
        block,
        ..
    } = &item;
    let name = &sig.ident;
    let fixtures = options.fixtures.iter().map(|(lit, full)| {
        quote_spanned! {lit.span()=>
            #krate::testing::Fixture { path: #lit, sql: ::core::include_str!(#full) }
        }
    });
    let version = match &options.version {
        Some(v) => quote!(::core::option::Option::Some(#v)),
        None => quote!(::core::option::Option::None),
    };
    let migrator = match &options.migrator {
        Some(p) => quote_spanned! {p.span()=>
            ::core::option::Option::Some(#p)
        },
        None => quote!(::core::option::Option::None),
    };
    let run = quote_spanned! {conn.span()=> #krate::testing::run::<#conn, _> };
    // Checked in every build, not only under `cargo test` (where `#[test]`
    // functions exist): a wrong connection type or migrator is reported
    // by `cargo check` too, on the user's token.
    let conn_check = quote_spanned! {conn.span()=>
        const _: fn() = || {
            fn provided<C: #krate::testing::TestConnection>() {}
            provided::<#conn>();
        };
    };
    let migrator_check = options.migrator.as_ref().map(|p| {
        quote_spanned! {p.span()=> const _: fn() -> #krate::Migrator = #p; }
    });
    Ok(quote! {
        #conn_check
        #migrator_check
        #(#attrs)*
        #[::core::prelude::v1::test]
        #vis fn #name() {
            #sig #block
            static SPEC: #krate::testing::TestSpec = #krate::testing::TestSpec {
                test: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#name)),
                fixtures: &[#(#fixtures),*],
                version: #version,
                migrator: #migrator,
            };
            #run(&SPEC, #name)
        }
    })
}
