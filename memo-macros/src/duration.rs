//! `interval` and `initial_delay` values: seconds as a number, or a duration string.

use crate::duration_text::parse_text;
use quote::ToTokens;
use syn::{Expr, ExprLit, Lit, UnOp};

const NANOS_PER_SECOND: f64 = 1e9;

/// A duration in nanoseconds, parsed from the attribute value, or an error on the value.
pub(crate) fn parse(key: &str, value: &Expr) -> syn::Result<u64> {
    match value {
        // syn reads `-5` in an attribute as one negative literal.
        Expr::Lit(ExprLit {
            lit: Lit::Int(_) | Lit::Float(_),
            ..
        }) if value.to_token_stream().to_string().starts_with('-') => Err(negative(key, value)),
        Expr::Lit(ExprLit { lit: Lit::Int(int), .. }) => {
            let seconds: u64 = int.base10_parse()?;
            seconds
                .checked_mul(1_000_000_000)
                .ok_or_else(|| syn::Error::new(int.span(), format!("`{key}` is too large")))
                .and_then(|nanos| positive(key, nanos, value))
        }
        Expr::Lit(ExprLit {
            lit: Lit::Float(float), ..
        }) => {
            let seconds: f64 = float.base10_parse()?;
            seconds_to_nanos(key, seconds, value)
        }
        Expr::Lit(ExprLit {
            lit: Lit::Str(text), ..
        }) => {
            let nanos = parse_text(&text.value()).map_err(|reason| {
                syn::Error::new(
                    text.span(),
                    format!("invalid duration {:?} for `{key}`: {reason}; write e.g. `\"250ms\"`, `\"10s\"`, `\"1m\"`, `\"1h30m\"` or a number of seconds", text.value()),
                )
            })?;
            positive(key, nanos, value)
        }
        Expr::Unary(unary) if matches!(unary.op, UnOp::Neg(_)) => Err(negative(key, value)),
        Expr::Path(path) => Err(syn::Error::new_spanned(
            value,
            format!(
                "`{key}` must be a literal: the macro reads it while compiling and cannot evaluate `{}`; write e.g. `{key} = 10` or `{key} = \"250ms\"`",
                path.to_token_stream().to_string().replace(' ', "")
            ),
        )),
        _ => Err(syn::Error::new_spanned(
            value,
            format!(
                "expected a number of seconds or a duration string for `{key}`, e.g. `{key} = 10` or `{key} = \"250ms\"`"
            ),
        )),
    }
}

fn negative(key: &str, value: &Expr) -> syn::Error {
    syn::Error::new_spanned(
        value,
        format!("`{key}` must not be negative: write a number of seconds such as `{key} = 5`"),
    )
}

fn positive(key: &str, nanos: u64, value: &Expr) -> syn::Result<u64> {
    if nanos == 0 && key == "interval" {
        return Err(syn::Error::new_spanned(
            value,
            "`interval` must be greater than zero: a timer cannot run back to back; write e.g. `interval = 1` or `interval = \"250ms\"`",
        ));
    }
    Ok(nanos)
}

fn seconds_to_nanos(key: &str, seconds: f64, value: &Expr) -> syn::Result<u64> {
    let nanos = seconds * NANOS_PER_SECOND;
    if !nanos.is_finite() || nanos >= u64::MAX as f64 {
        return Err(syn::Error::new_spanned(value, format!("`{key}` is too large")));
    }
    positive(key, nanos.round() as u64, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::parse_quote;

    #[test]
    fn numbers_are_seconds() {
        assert_eq!(parse("interval", &parse_quote!(10)).unwrap(), 10_000_000_000);
        assert_eq!(parse("interval", &parse_quote!(0.25)).unwrap(), 250_000_000);
        assert_eq!(parse("initial_delay", &parse_quote!(0)).unwrap(), 0);
    }

    #[test]
    fn strings_have_units() {
        assert_eq!(parse("interval", &parse_quote!("250ms")).unwrap(), 250_000_000);
        assert_eq!(parse("interval", &parse_quote!("10s")).unwrap(), 10_000_000_000);
        assert_eq!(parse("interval", &parse_quote!("1m")).unwrap(), 60_000_000_000);
        assert_eq!(parse("interval", &parse_quote!("1h30m")).unwrap(), 5_400_000_000_000);
        assert_eq!(parse("interval", &parse_quote!("1.5s")).unwrap(), 1_500_000_000);
    }

    #[test]
    fn bad_values_are_errors_that_say_why() {
        let message = |expr: Expr| parse("interval", &expr).unwrap_err().to_string();
        assert!(message(parse_quote!(0)).contains("greater than zero"));
        assert!(message(parse_quote!(-5)).contains("must not be negative"));
        // As syn reads it inside an attribute: one negative literal.
        let meta: syn::MetaNameValue = syn::parse_quote!(interval = -5);
        assert!(message(meta.value).contains("must not be negative"));
        let meta: syn::MetaNameValue = syn::parse_quote!(interval = -0.5);
        assert!(message(meta.value).contains("must not be negative"));
        assert!(message(parse_quote!("5 parsecs")).contains("unknown unit `parsecs`"));
        assert!(message(parse_quote!("")).contains("empty"));
        assert!(message(parse_quote!("10")).contains("no unit"));
        assert!(message(parse_quote!(f64::NAN)).contains("cannot evaluate `f64::NAN`"));
        assert!(message(parse_quote!(true)).contains("expected a number of seconds"));
        assert!(message(parse_quote!(1e300)).contains("too large"));
    }
}
