//! Stage 3: quote the validated script. Nothing here can fail.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::Fields;

use crate::krate::core_path;
use crate::sql::SqlFolder;
use crate::valid::Script;

pub(crate) fn expand(script: &Script) -> TokenStream {
    let item = &script.item;
    let ident = &item.ident;
    let core = core_path(script.krate.as_ref());
    let version = &script.version;
    let name = &script.name;
    let transaction = script.transaction;
    let (description, described) = match &script.description {
        Some(d) => (quote!(#d), true),
        None => (quote!(""), false),
    };
    let value = match &item.fields {
        Fields::Unit => quote!(#ident),
        Fields::Named(_) => quote!(#ident {}),
        Fields::Unnamed(_) => quote!(#ident()),
    };

    // The version was validated with the parser `compute` uses.
    let computed = migrate_core::__private::Precomputed::compute(&version.value(), None)
        .expect("a validated version");
    let (release, plain_release) = match computed.release() {
        Some(numbers) => (numbers, true),
        None => ([0; 3], false),
    };
    let digest = u128::from_le_bytes(computed.digest());
    let unique_macro = unique_version_macro(&script.parsed, version.span());
    // Spanned on the struct's name, so that a missing `impl MigrationScript`
    // is reported there.
    let entry = quote_spanned! {ident.span()=>
        #core::__private::Script::__registered::<#ident>(
            &#value,
            #version,
            #name,
            #description,
            #described,
            #transaction,
            ::core::file!(),
            ::core::line!(),
            [#(#release),*],
            #plain_release,
            #digest,
        )
    };

    quote! {
        #item

        #unique_macro

        const _: () = {
            #[#core::__private::linkme::distributed_slice(#core::__private::SCRIPTS)]
            #[linkme(crate = #core::__private::linkme)]
            static SCRIPT: #core::__private::Script = #entry;
        };
    }
}

/// One crate-root macro per version: a second script with the same version
/// (build metadata ignored) in the same crate, code or SQL, is error E0428,
/// pointing at both version literals. Its name is the message: "the name
/// `migration_version_1_0_1_is_used_by_two_scripts_ignoring_build_metadata`
/// is defined multiple times".
fn unique_version_macro(version: &semver::Version, span: Span) -> TokenStream {
    let unique = format_ident!(
        "migration_version_{}_is_used_by_two_scripts_ignoring_build_metadata",
        version_key(version),
        span = span
    );
    quote_spanned! {span=>
        #[doc(hidden)]
        #[macro_export]
        macro_rules! #unique { () => {} }
    }
}

/// Expands `embed_sql!`: one registry entry per SQL folder.
pub(crate) fn expand_sql(
    folders: &[SqlFolder],
    span: Span,
    krate: Option<&syn::Path>,
) -> TokenStream {
    let core = core_path(krate);
    let entries = folders.iter().enumerate().map(|(i, f)| {
        let ident = format_ident!("SQL_MIGRATION_{i}");
        let (version, name, up, checksum, transaction, display) =
            (&f.version, &f.name, &f.up_path, &f.checksum, f.transaction, &f.display);
        let precomputed = precomputed(&core, version, Some(checksum));
        let down = match &f.down_path {
            Some(path) => quote!(::core::option::Option::Some(::core::include_str!(#path))),
            None => quote!(::core::option::Option::None),
        };
        quote! {
            #[#core::__private::linkme::distributed_slice(#core::__private::SCRIPTS)]
            #[linkme(crate = #core::__private::linkme)]
            static #ident: #core::__private::Script = #core::__private::Script::__sql(
                #version, #name, ::core::include_str!(#up), #down, #checksum, #transaction, #display, 0,
                #precomputed,
            );
        }
    });
    let uniques = folders
        .iter()
        .map(|f| unique_version_macro(&f.parsed, span));
    quote! {
        const _: () = { #(#entries)* };
        #(#uniques)*
    }
}

/// What the registry would otherwise work out at every start-up, worked out
/// here by the core's own function, so that the two cannot differ.
fn precomputed(core: &TokenStream, version: &str, checksum: Option<&str>) -> TokenStream {
    let option = quote!(::core::option::Option);
    match migrate_core::__private::Precomputed::compute(version, checksum) {
        Some(p) => {
            let release = match p.release() {
                Some(numbers) => quote!(#option::Some([#(#numbers),*])),
                None => quote!(#option::None),
            };
            let digest = u128::from_le_bytes(p.digest());
            quote!(#option::Some(#core::__private::Precomputed::from_parts(#release, #digest)))
        }
        // Unreachable after validation; the registry would work it out.
        None => quote!(#option::None),
    }
}

/// An identifier-safe key of the version's precedence: build metadata is
/// dropped, and the pre-release is encoded injectively (`.` -> `_p`,
/// `-` -> `_h`, since semver allows neither `_` nor other punctuation).
fn version_key(v: &semver::Version) -> String {
    let mut key = format!("{}_{}_{}", v.major, v.minor, v.patch);
    if !v.pre.is_empty() {
        key.push_str("_h");
        for c in v.pre.as_str().chars() {
            match c {
                '.' => key.push_str("_p"),
                '-' => key.push_str("_h"),
                c => key.push(c),
            }
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::version_key;

    fn key(s: &str) -> String {
        version_key(&semver::Version::parse(s).unwrap())
    }

    #[test]
    fn build_metadata_does_not_change_the_key() {
        assert_eq!(key("1.0.1+build.5"), key("1.0.1"));
    }

    #[test]
    fn distinct_pre_releases_get_distinct_keys() {
        let keys = [
            "1.0.0",
            "1.0.0-a.b",
            "1.0.0-a-b",
            "1.0.0-ab",
            "1.0.0-a.hb",
            "1.0.0--a",
            "1.0.0-h",
        ];
        let set: std::collections::HashSet<String> = keys.iter().map(|k| key(k)).collect();
        assert_eq!(set.len(), keys.len(), "{set:?}");
    }
}
