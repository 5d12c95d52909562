//! Stage 2: judge the arguments and the item. Every problem is reported on
//! the user's own token, and all of them at once.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Fields, Item, Lit, LitBool, LitStr};

use crate::ast::{Arg, Args};

const KEYS: &str = "`version`, `description`, `name`, `transaction`, `crate`";

/// A script whose attribute and item passed every check.
pub(crate) struct Script {
    pub(crate) item: syn::ItemStruct,
    pub(crate) version: LitStr,
    pub(crate) parsed: semver::Version,
    pub(crate) name: LitStr,
    pub(crate) description: Option<LitStr>,
    pub(crate) transaction: bool,
    pub(crate) krate: Option<syn::Path>,
}

/// Collects errors so that the user sees all of them in one build.
#[derive(Default)]
struct Errors(Option<syn::Error>);

impl Errors {
    fn push(&mut self, err: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(err),
            None => self.0 = Some(err),
        }
    }
}

pub(crate) fn validate(args: Args, item: proc_macro::TokenStream) -> syn::Result<Script> {
    let mut errors = Errors::default();
    let item = check_item(item, &mut errors);

    let (mut version, mut description, mut name, mut transaction, mut krate) =
        (None, None, None, None, None);
    // Set when a `version` key is written at all, even with a bad value, so
    // that "missing `version`" is only said when it is really missing.
    let mut version_key = false;
    for Arg { key, value } in args.0 {
        let key_name = key.to_string();
        let seen = match key_name.as_str() {
            "version" => std::mem::replace(&mut version_key, true),
            "description" => description.is_some(),
            "name" => name.is_some(),
            "transaction" => transaction.is_some(),
            "crate" => krate.is_some(),
            _ => {
                errors.push(syn::Error::new(
                    key.span(),
                    format!("unknown key `{key_name}`; expected one of {KEYS}"),
                ));
                continue;
            }
        };
        if seen {
            errors.push(syn::Error::new(
                key.span(),
                format!("duplicate key `{key_name}`"),
            ));
            continue;
        }
        let Some(value) = value else {
            let example = match key_name.as_str() {
                "transaction" => "transaction = false".to_owned(),
                "crate" => "crate = ::migrate".to_owned(),
                other => format!("{other} = \"...\""),
            };
            errors.push(syn::Error::new(key.span(), format!("expected `{example}`")));
            continue;
        };
        match key_name.as_str() {
            "version" => {
                version = string(&value, "version", &mut errors).and_then(|lit| {
                    match semver::Version::parse(&lit.value()) {
                        Ok(parsed) => Some((lit, parsed)),
                        Err(e) => {
                            errors.push(syn::Error::new(
                                lit.span(),
                                format!(
                                    "invalid version `{}`: expected strict semver MAJOR.MINOR.PATCH, e.g. `1.0.1` ({e})",
                                    lit.value()
                                ),
                            ));
                            None
                        }
                    }
                })
            }
            "description" => description = string(&value, "description", &mut errors),
            "name" => {
                name = string(&value, "name", &mut errors).filter(|lit| {
                    let empty = lit.value().trim().is_empty();
                    if empty {
                        errors.push(syn::Error::new(lit.span(), "`name` must not be empty"));
                    }
                    !empty
                })
            }
            "transaction" => transaction = boolean(&value, &mut errors),
            _ => krate = path(&value, &mut errors),
        }
    }

    if !version_key {
        errors.push(syn::Error::new(
            Span::call_site(),
            "missing `version = \"...\"`, e.g. #[migration_script(version = \"1.0.1\")]",
        ));
    }

    match (errors.0, item, version) {
        (None, Some(item), Some((version, parsed))) => Ok(Script {
            name: name.unwrap_or_else(|| LitStr::new(&item.ident.to_string(), item.ident.span())),
            item,
            version,
            parsed,
            description,
            transaction: transaction.is_none_or(|b: LitBool| b.value),
            krate,
        }),
        (Some(err), ..) => Err(err),
        // Unreachable: every `None` above pushed an error.
        _ => Err(syn::Error::new(
            Span::call_site(),
            "invalid #[migration_script]",
        )),
    }
}

fn check_item(item: proc_macro::TokenStream, errors: &mut Errors) -> Option<syn::ItemStruct> {
    const HINT: &str =
        "#[migration_script] goes on a unit struct, e.g. `pub struct AddUserFullName;`";
    let item = match syn::parse::<Item>(item) {
        Ok(Item::Struct(s)) => s,
        Ok(Item::Enum(e)) => {
            errors.push(syn::Error::new(
                e.enum_token.span,
                format!("expected a struct, found an enum; {HINT}"),
            ));
            return None;
        }
        Ok(Item::Fn(f)) => {
            errors.push(syn::Error::new(
                f.sig.fn_token.span,
                format!("expected a struct, found a function; {HINT}"),
            ));
            return None;
        }
        Ok(other) => {
            errors.push(syn::Error::new_spanned(
                other,
                format!("expected a struct; {HINT}"),
            ));
            return None;
        }
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    let mut ok = true;
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.push(syn::Error::new_spanned(
            &item.generics,
            "a migration script cannot be generic: the registry needs one value of one type",
        ));
        ok = false;
    }
    let has_fields = match &item.fields {
        Fields::Named(f) => !f.named.is_empty(),
        Fields::Unnamed(f) => !f.unnamed.is_empty(),
        Fields::Unit => false,
    };
    if has_fields && ok {
        errors.push(syn::Error::new_spanned(
            &item.fields,
            format!("a migration script cannot have fields: the registry holds one static value of it; {HINT}"),
        ));
        ok = false;
    }
    ok.then_some(item)
}

fn string(value: &Expr, key: &str, errors: &mut Errors) -> Option<LitStr> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.clone()),
        other => {
            errors.push(syn::Error::new(
                other.span(),
                format!("expected a string literal: `{key} = \"...\"`"),
            ));
            None
        }
    }
}

fn boolean(value: &Expr, errors: &mut Errors) -> Option<LitBool> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Bool(b), ..
        }) => Some(b.clone()),
        other => {
            errors.push(syn::Error::new(
                other.span(),
                "expected `true` or `false`: `transaction = false`",
            ));
            None
        }
    }
}

fn path(value: &Expr, errors: &mut Errors) -> Option<syn::Path> {
    match value {
        Expr::Path(p) if p.qself.is_none() => Some(p.path.clone()),
        other => {
            errors.push(syn::Error::new(
                other.span(),
                "expected a path: `crate = ::migrate`",
            ));
            None
        }
    }
}
