//! The job page's facts: when the job was submitted, started and finished,
//! how long it ran, and the params it was started with.

use leptos::prelude::*;

use crate::i18n::Strings;
use crate::jobs::format_time;

/// `850 ms`, `12 s`, `3 min 5 s`, `2 h 4 min`, in the page's language.
pub fn duration_text(strings: &Strings, ms: u64) -> String {
    let s = ms / 1000;
    let n = |v: u64| strings.locale.int(v);
    match s {
        0 => strings.fill("duration-ms", &[("ms", &n(ms))]),
        1..=59 => strings.fill("duration-s", &[("s", &n(s))]),
        60..=3599 => strings.fill("duration-min", &[("min", &n(s / 60)), ("s", &n(s % 60))]),
        _ => strings.fill(
            "duration-h",
            &[("h", &n(s / 3600)), ("min", &n(s % 3600 / 60))],
        ),
    }
}

/// A param's value as shown: text as it is, anything else as JSON, cut
/// at [`MAX_VALUE`] characters.
pub fn param_text(value: &serde_json::Value) -> String {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match text.char_indices().nth(MAX_VALUE) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Longest param value shown in full.
pub const MAX_VALUE: usize = 200;

/// The times. `started` and `finished` change while the page is open.
#[component]
pub fn JobTimes(
    strings: Strings,
    created_at: u64,
    started: RwSignal<Option<u64>>,
    finished: RwSignal<Option<u64>>,
) -> impl IntoView {
    let not_yet = strings.t("not-yet");
    let not_yet2 = not_yet.clone();
    let s = strings.clone();
    let duration = move || match (started.get(), finished.get()) {
        (Some(a), Some(b)) => duration_text(&s, b.saturating_sub(a)),
        (Some(_), None) => "…".to_owned(),
        _ => "–".to_owned(),
    };
    view! {
        <dl class="facts times">
            <dt>{strings.t("job-created")}</dt>
            <dd>{format_time(created_at)}</dd>
            <dt>{strings.t("job-started")}</dt>
            <dd>{move || started.get().map_or_else(|| not_yet.clone(), format_time)}</dd>
            <dt>{strings.t("job-finished")}</dt>
            <dd>{move || finished.get().map_or_else(|| not_yet2.clone(), format_time)}</dd>
            <dt>{strings.t("job-duration")}</dt>
            <dd>{duration}</dd>
        </dl>
    }
}

/// The params, name (its form label where there is one) and value.
#[component]
pub fn JobParams(strings: Strings, params: Vec<(String, String)>) -> impl IntoView {
    (!params.is_empty()).then(|| {
        let rows = params
            .into_iter()
            .map(|(name, value)| {
                let key = format!("field-{name}");
                let label = strings.t(&key);
                // A field without a text of its own shows its name.
                let label = if label == key { name } else { label };
                view! { <dt>{label}</dt><dd><code>{value}</code></dd> }
            })
            .collect_view();
        view! {
            <dl class="facts params" aria-label=strings.t("job-params")>{rows}</dl>
        }
    })
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;
    use crate::i18n::{strings, Locale};

    #[test]
    fn durations_read_well_in_each_language() {
        let en = strings(Locale::En);
        assert_eq!(duration_text(&en, 850), "850 ms");
        assert_eq!(duration_text(&en, 12_400), "12 s");
        assert_eq!(duration_text(&en, 65_000), "1 min 5 s");
        assert_eq!(duration_text(&en, 7_440_000), "2 h 4 min");
        let de = strings(Locale::De);
        assert_eq!(duration_text(&de, 65_000), "1 Min. 5 s");
        assert_eq!(duration_text(&de, 1_500), "1 s");
        let fr = strings(Locale::Fr);
        assert_eq!(duration_text(&fr, 7_440_000), "2 h 4 min");
    }

    #[test]
    fn params_show_text_as_text_and_the_rest_as_json() {
        assert_eq!(param_text(&serde_json::json!("a <b>")), "a <b>");
        assert_eq!(param_text(&serde_json::json!(1000)), "1000");
        assert_eq!(param_text(&serde_json::json!(["x", "y"])), r#"["x","y"]"#);
        let long = "é".repeat(MAX_VALUE + 5);
        let shown = param_text(&serde_json::json!(long));
        assert_eq!(shown.chars().count(), MAX_VALUE + 1);
        assert!(shown.ends_with('…'));
    }
}
