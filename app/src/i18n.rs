//! Languages: English, German and French.
//!
//! The texts are Fluent files (`app/locales/*.ftl`), formatted on the server
//! with `fluent-bundle` (plural rules per locale included). The browser
//! never loads Fluent: the page carries [`Strings`], every text without
//! variables already formatted for the visitor's locale, and hydration
//! reads them from there. Texts with variables (job messages, form errors)
//! are formatted on the server only. Numbers are formatted by
//! [`Locale::int`] and [`Locale::percent`], small enough to run on both
//! sides.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// A language of the UI and of job messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Locale {
    /// English, the default.
    #[default]
    En,
    /// German.
    De,
    /// French.
    Fr,
}

impl Locale {
    /// Every locale, in the switcher's order.
    pub const ALL: [Locale; 3] = [Locale::En, Locale::De, Locale::Fr];

    /// Its BCP 47 tag.
    pub fn tag(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::De => "de",
            Locale::Fr => "fr",
        }
    }

    /// Its name in itself, for the switcher.
    pub fn name(self) -> &'static str {
        match self {
            Locale::En => "English",
            Locale::De => "Deutsch",
            Locale::Fr => "Français",
        }
    }

    /// The locale of a language tag (`de`, `de-AT`, `FR-ca`, ...), if we have it.
    pub fn from_tag(tag: &str) -> Option<Locale> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        Locale::ALL.into_iter().find(|l| l.tag() == primary)
    }

    /// The best locale for an `Accept-Language` header: the supported tag
    /// with the highest `q` (the first among equals), else English.
    pub fn negotiate(accept_language: &str) -> Locale {
        let mut best: Option<(f32, Locale)> = None;
        for item in accept_language.split(',').take(32) {
            let mut parts = item.split(';');
            let Some(locale) = parts.next().and_then(Locale::from_tag) else {
                continue;
            };
            let q = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())
                .filter(|q| (0.0..=1.0).contains(q))
                .unwrap_or(0.0);
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, locale));
            }
        }
        best.map_or(Locale::En, |(_, l)| l)
    }

    /// A whole number with this locale's digit grouping:
    /// `1,234,567`, `1.234.567`, `1 234 567` (narrow no-break spaces).
    pub fn int(self, n: u64) -> String {
        let sep = match self {
            Locale::En => ",",
            Locale::De => ".",
            Locale::Fr => "\u{202f}",
        };
        let digits = n.to_string();
        let mut out = String::with_capacity(digits.len() * 2);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(sep);
            }
            out.push(c);
        }
        out
    }

    /// A fraction (0 to 1) as a whole percentage: `42%`, `42 %`, `42 %`.
    pub fn percent(self, fraction: f64) -> String {
        let n = (fraction.clamp(0.0, 1.0) * 100.0).floor() as u64;
        match self {
            Locale::En => format!("{n}%"),
            Locale::De => format!("{n}\u{a0}%"),
            Locale::Fr => format!("{n}\u{202f}%"),
        }
    }
}

/// The texts without variables of one locale, sent with the page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Strings {
    /// The locale they are in.
    pub locale: Locale,
    texts: HashMap<String, String>,
}

impl Strings {
    /// The text `key`; the key itself if it is missing (a bug, but visible
    /// rather than fatal).
    pub fn t(&self, key: &str) -> String {
        self.texts
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_owned())
    }

    /// The text `key` with its variables filled in. Only for texts whose
    /// variables are plain (no plural selection): they are sent with their
    /// variables as `{$name}`, so the browser can fill in values that change
    /// after the page was rendered.
    pub fn fill(&self, key: &str, args: &[(&str, &str)]) -> String {
        args.iter().fold(self.t(key), |text, (name, value)| {
            text.replace(&format!("{{${name}}}"), value)
        })
    }
}

#[cfg(feature = "ssr")]
pub use server::{strings, tr, Arg};

#[cfg(feature = "ssr")]
mod server {
    use std::collections::HashMap;
    use std::sync::OnceLock;

    use fluent_bundle::concurrent::FluentBundle;
    use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

    use super::{Locale, Strings};

    /// A variable of a message.
    pub enum Arg<'a> {
        /// Text, shown as it is.
        Text(&'a str),
        /// A number: selects the plural form. Pass the formatted number
        /// (see [`Locale::int`]) as text in another variable to show it.
        Number(f64),
    }

    fn source(locale: Locale) -> &'static str {
        match locale {
            Locale::En => include_str!("../locales/en.ftl"),
            Locale::De => include_str!("../locales/de.ftl"),
            Locale::Fr => include_str!("../locales/fr.ftl"),
        }
    }

    fn bundles() -> &'static HashMap<Locale, FluentBundle<FluentResource>> {
        static BUNDLES: OnceLock<HashMap<Locale, FluentBundle<FluentResource>>> = OnceLock::new();
        BUNDLES.get_or_init(|| {
            Locale::ALL
                .into_iter()
                .map(|locale| {
                    // The files are part of the binary and checked by tests,
                    // so a syntax error cannot reach a running server.
                    let resource = FluentResource::try_new(source(locale).to_owned())
                        .unwrap_or_else(|(_, errors)| {
                            panic!("locales/{}.ftl: {errors:?}", locale.tag())
                        });
                    let tag = locale.tag().parse().expect("a valid language tag");
                    let mut bundle = FluentBundle::new_concurrent(vec![tag]);
                    // No Unicode isolation marks around variables: the texts
                    // go into HTML and SSE, where they would only get in the way.
                    bundle.set_use_isolating(false);
                    bundle
                        .add_resource(resource)
                        .expect("message ids are unique");
                    (locale, bundle)
                })
                .collect()
        })
    }

    /// Message `id` in `locale` with its variables. Falls back to English,
    /// then to the id itself. A message that could not be formatted fully
    /// (a variable not given, say) is logged as a warning.
    pub fn tr(locale: Locale, id: &str, args: &[(&str, Arg<'_>)]) -> String {
        let (text, errors) = format(locale, id, args);
        if !errors.is_empty() {
            tracing_error(id, &errors);
        }
        text
    }

    /// [`tr`] without the logging: the text and what went wrong making it.
    fn format(
        locale: Locale,
        id: &str,
        args: &[(&str, Arg<'_>)],
    ) -> (String, Vec<fluent_bundle::FluentError>) {
        let mut fluent_args = FluentArgs::new();
        for (name, value) in args {
            let value = match value {
                Arg::Text(t) => FluentValue::from(*t),
                Arg::Number(n) => FluentValue::from(*n),
            };
            fluent_args.set(*name, value);
        }
        for locale in [locale, Locale::En] {
            let bundle = &bundles()[&locale];
            if let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) {
                let mut errors = Vec::new();
                let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
                return (text.into_owned(), errors);
            }
        }
        (id.to_owned(), Vec::new())
    }

    fn tracing_error(id: &str, errors: &[fluent_bundle::FluentError]) {
        tracing::warn!(message = id, ?errors, "a text could not be formatted");
    }

    /// Every message of `locale` that has no variables, formatted, and every
    /// message whose variables are plain, as a template for
    /// [`Strings::fill`]. Messages that select on a variable (plurals) are
    /// left out: only the server can format them.
    pub fn strings(locale: Locale) -> Strings {
        static CACHE: OnceLock<HashMap<Locale, Strings>> = OnceLock::new();
        CACHE.get_or_init(|| {
            Locale::ALL
                .into_iter()
                .map(|locale| {
                    let (strings, errors) = make_strings(locale);
                    for (id, errors) in &errors {
                        tracing_error(id, errors);
                    }
                    (locale, strings)
                })
                .collect()
        })[&locale]
            .clone()
    }

    /// The [`Strings`] of `locale`, and the messages that could not be
    /// formatted fully with what went wrong (none: a test says so).
    #[allow(clippy::type_complexity)]
    pub(super) fn make_strings(
        locale: Locale,
    ) -> (Strings, Vec<(String, Vec<fluent_bundle::FluentError>)>) {
        let resource =
            FluentResource::try_new(source(locale).to_owned()).unwrap_or_else(|(r, _)| r);
        let mut texts = HashMap::new();
        let mut failed = Vec::new();
        for entry in resource.entries() {
            if let fluent_syntax::ast::Entry::Message(m) = entry {
                // Formatting a message without the values of its variables
                // gives resolver errors (`Reference(Variable ..)`), so each
                // variable gets its placeholder as its value.
                let Some(names) = plain_variables(m) else {
                    continue;
                };
                let placeholders: Vec<String> = names.iter().map(|n| format!("{{${n}}}")).collect();
                let args: Vec<_> = names
                    .iter()
                    .zip(&placeholders)
                    .map(|(n, p)| (*n, Arg::Text(p)))
                    .collect();
                let (text, errors) = format(locale, m.id.name, &args);
                if !errors.is_empty() {
                    failed.push((m.id.name.to_owned(), errors));
                }
                texts.insert(m.id.name.to_owned(), text);
            }
        }
        (Strings { locale, texts }, failed)
    }

    /// The variables of `m` if each is used as it is (`{ $name }`); `None`
    /// if it selects on one, calls a function or refers to another message.
    fn plain_variables<'a>(m: &fluent_syntax::ast::Message<&'a str>) -> Option<Vec<&'a str>> {
        use fluent_syntax::ast::{Expression, InlineExpression, PatternElement};
        let mut names = Vec::new();
        for element in &m.value.as_ref()?.elements {
            match element {
                PatternElement::TextElement { .. } => {}
                PatternElement::Placeable {
                    expression: Expression::Inline(InlineExpression::StringLiteral { .. }),
                } => {}
                PatternElement::Placeable {
                    expression: Expression::Inline(InlineExpression::VariableReference { id }),
                } => names.push(id.name),
                PatternElement::Placeable { .. } => return None,
            }
        }
        Some(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_takes_the_best_supported_language() {
        assert_eq!(Locale::negotiate("de-DE,de;q=0.9,en;q=0.8"), Locale::De);
        assert_eq!(Locale::negotiate("ja, fr-CA;q=0.5, en;q=0.4"), Locale::Fr);
        assert_eq!(Locale::negotiate("en;q=0.2, de;q=0.7"), Locale::De);
        assert_eq!(Locale::negotiate("ja"), Locale::En);
        assert_eq!(Locale::negotiate(""), Locale::En);
        assert_eq!(Locale::negotiate("de;q=0, fr;q=x"), Locale::En);
    }

    #[test]
    fn numbers_follow_the_locale() {
        assert_eq!(Locale::En.int(50_847_534), "50,847,534");
        assert_eq!(Locale::De.int(50_847_534), "50.847.534");
        assert_eq!(Locale::Fr.int(1_000), "1\u{202f}000");
        assert_eq!(Locale::En.int(999), "999");
        assert_eq!(Locale::En.percent(0.425), "42%");
        assert_eq!(Locale::De.percent(1.0), "100\u{a0}%");
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn every_locale_has_every_message_and_plurals_differ() {
        let ids = |l: Locale| {
            let mut keys: Vec<_> = fluent_syntax::parser::parse(server_source(l))
                .unwrap()
                .body
                .into_iter()
                .filter_map(|e| match e {
                    fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                    _ => None,
                })
                .collect();
            keys.sort();
            keys
        };
        assert_eq!(ids(Locale::En), ids(Locale::De));
        assert_eq!(ids(Locale::En), ids(Locale::Fr));
        let found = |l: Locale, n: u64| {
            tr(
                l,
                "primes-found",
                &[
                    ("count", Arg::Number(n as f64)),
                    ("countText", Arg::Text(&l.int(n))),
                    ("limit", Arg::Text(&l.int(1_000_000))),
                ],
            )
        };
        assert_eq!(found(Locale::En, 1), "Found one prime up to 1,000,000.");
        assert_eq!(
            found(Locale::En, 78_498),
            "Found 78,498 primes up to 1,000,000."
        );
        assert_eq!(
            found(Locale::De, 78_498),
            "78.498 Primzahlen bis 1.000.000 gefunden."
        );
        // French counts 0 and 1 as singular.
        assert_eq!(
            found(Locale::Fr, 0),
            "0 nombre premier trouvé jusqu’à 1\u{202f}000\u{202f}000."
        );
        assert!(strings(Locale::De).t("button-cancel") == "Abbrechen");
        let en = strings(Locale::En);
        // Plurals are formatted on the server only.
        assert!(en.t("primes-found").starts_with("primes-found"));
        assert_eq!(
            en.fill("err-range", &[("min", "1"), ("max", "9")]),
            "Must be a whole number from 1 to 9."
        );
    }

    /// The server makes every locale's texts once, at its first page; that
    /// must log nothing (it once logged a resolver error for each message
    /// with variables).
    #[cfg(feature = "ssr")]
    #[test]
    fn texts_are_made_without_resolver_errors() {
        for locale in Locale::ALL {
            let (strings, errors) = server::make_strings(locale);
            let ids: Vec<_> = errors
                .iter()
                .map(|(id, e)| format!("{id}: {e:?}"))
                .collect();
            assert!(ids.is_empty(), "{}: {ids:?}", locale.tag());
            // Texts with variables are there, as templates.
            assert!(strings.t("err-range").contains("{$min}"));
        }
    }

    #[cfg(feature = "ssr")]
    fn server_source(l: Locale) -> &'static str {
        match l {
            Locale::En => include_str!("../locales/en.ftl"),
            Locale::De => include_str!("../locales/de.ftl"),
            Locale::Fr => include_str!("../locales/fr.ftl"),
        }
    }
}
