//! The `#[memoize]` attribute of the `cache` crate; use it as `#[cache::memoize(...)]`.
//! See the `cache` crate's `memoize` documentation; the runtime lives in `cache::memo`.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, FnArg, ItemFn, Lit, MetaNameValue, Pat, ReturnType, Token, Type};

/// Memoizes an async function in a `Cache`: see `cache::memoize`.
#[proc_macro_attribute]
pub fn memoize(attributes: TokenStream, item: TokenStream) -> TokenStream {
    match expand(attributes.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}

struct Settings {
    store: Expr,
    ttl: TokenStream2,
    version: u32,
    cache_errors: bool,
}

fn settings(attributes: TokenStream2) -> syn::Result<Settings> {
    let pairs = Punctuated::<MetaNameValue, Token![,]>::parse_terminated.parse2(attributes)?;
    let mut store = None;
    let mut ttl = quote!(::cache::Ttl::Default);
    let mut version = 1;
    let mut cache_errors = false;
    for pair in pairs {
        let name = pair.path.get_ident().map(ToString::to_string).unwrap_or_default();
        match name.as_str() {
            "store" => store = Some(pair.value),
            "ttl" => {
                let text = string(&pair.value, "ttl = \"60s\"")?;
                let lifetime = humantime::parse_duration(&text).map_err(|error| {
                    syn::Error::new(
                        pair.value.span(),
                        format!("ttl: expected a duration such as 30s or 1h30m: {error}"),
                    )
                })?;
                if lifetime.is_zero() {
                    return Err(syn::Error::new(pair.value.span(), "ttl: a zero lifetime would store nothing"));
                }
                let nanos = u64::try_from(lifetime.as_nanos()).map_err(|_| {
                    syn::Error::new(pair.value.span(), "ttl: too long; leave it out for the store's default")
                })?;
                ttl = quote!(::cache::Ttl::After(::core::time::Duration::from_nanos(#nanos)));
            }
            "version" => match &pair.value {
                Expr::Lit(ExprLit { lit: Lit::Int(int), .. }) => version = int.base10_parse()?,
                other => return Err(syn::Error::new(other.span(), "version: expected an integer, as in version = 2")),
            },
            "cache_errors" => match &pair.value {
                Expr::Lit(ExprLit { lit: Lit::Bool(flag), .. }) => cache_errors = flag.value,
                other => return Err(syn::Error::new(other.span(), "cache_errors: expected true or false")),
            },
            _ => {
                return Err(syn::Error::new(
                    pair.path.span(),
                    "unknown setting; #[memoize] takes store = <expr>, ttl = \"60s\", version = 1, cache_errors = false",
                ));
            }
        }
    }
    let store = store.ok_or_else(|| {
        syn::Error::new(Span::call_site(), "#[memoize] needs store = <an expression that dereferences to a Cache>")
    })?;
    Ok(Settings { store, ttl, version, cache_errors })
}

fn string(value: &Expr, example: &str) -> syn::Result<String> {
    match value {
        Expr::Lit(ExprLit { lit: Lit::Str(text), .. }) => Ok(text.value()),
        other => Err(syn::Error::new(other.span(), format!("expected a string, as in {example}"))),
    }
}

/// Whether `output` is spelled as a `Result` (`Result<T, E>`, `io::Result<T>`, ...).
fn returns_result(output: &ReturnType) -> bool {
    match output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(path) => path.path.segments.last().is_some_and(|segment| segment.ident == "Result"),
            _ => false,
        },
        ReturnType::Default => false,
    }
}

fn expand(attributes: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let settings = settings(attributes)?;
    let function: ItemFn = syn::parse2(item)?;
    let ItemFn { attrs, vis, sig, block } = &function;
    if sig.asyncness.is_none() {
        return Err(syn::Error::new(sig.fn_token.span(), "#[memoize] works on async functions"));
    }
    let mut arguments = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => {
                return Err(syn::Error::new(
                    receiver.span(),
                    "#[memoize] does not take methods with self: memoize a free function the method calls",
                ));
            }
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(ident) if ident.by_ref.is_none() && ident.subpat.is_none() => {
                    arguments.push(ident.ident.clone())
                }
                other => {
                    return Err(syn::Error::new(
                        other.span(),
                        "#[memoize] needs a plain name for each argument, to put it in the key",
                    ));
                }
            },
        }
    }
    let name = sig.ident.to_string();
    let Settings { store, ttl, version, cache_errors } = settings;
    let call = match (returns_result(&sig.output), cache_errors) {
        (true, false) => quote!(::cache::memo::call_result),
        (true, true) => quote!(::cache::memo::call_result_caching_errors),
        (false, false) => quote!(::cache::memo::call_plain),
        (false, true) => {
            return Err(syn::Error::new(sig.output.span(), "cache_errors = true needs a function returning a Result"));
        }
    };
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            let __memo_key = ::cache::memo::key(
                ::core::concat!(::core::module_path!(), "::", #name),
                #version,
                &(#(&#arguments,)*),
            );
            #call(&*(#store), __memo_key, #ttl, move || async move #block).await
        }
    })
}
