//! The start form and the server function it posts to. Both are driven by
//! the kinds' schemas ([`KindSchema`]): one fieldset per kind, one input per
//! field, each field read with [`FieldSchema::parse_form`]. Adding a kind
//! needs nothing here, only its texts (`kind-NAME`, `field-FIELD`) in
//! `app/locales/*.ftl`.

use std::collections::BTreeMap;

use jobstream_protocol::{FieldType, KindSchema};
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use serde::{Deserialize, Serialize};

use crate::i18n::Strings;

/// The kind started when a form names none, and the one the form selects
/// at first (if it is offered).
pub const DEFAULT_KIND: &str = "demo";

/// The form field naming the kind.
const KIND_FIELD: &str = "kind";

/// A field's error, in the visitor's language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMessage {
    /// The form field.
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
}

/// Starts a job of `kind` with the form's fields, then takes the visitor to
/// its page. Invalid fields come back as messages and nothing is created.
///
/// The fields are whatever the kind's schema names, so they are taken as
/// a map of the form's other fields (flattened: the form posts `steps=4`,
/// not `fields[steps]=4`). A form with no fields at all starts a
/// [`DEFAULT_KIND`] job with its defaults.
#[server(endpoint = "start_job")]
pub async fn start_job(
    kind: Option<String>,
    #[server(flatten)]
    #[server(default)]
    fields: BTreeMap<String, String>,
) -> Result<Vec<FieldMessage>, ServerFnError> {
    use crate::i18n::{tr, Locale};
    use crate::ssr::{error::form_problem, UserError};
    use jobstream_engine::{Engine, NewJob, PlanError, SubmitError};
    use jobstream_protocol::{routes, FieldProblem};

    fn message(e: &FieldProblem, locale: Locale) -> FieldMessage {
        FieldMessage {
            field: e.form_field().to_owned(),
            message: form_problem(&e.problem, locale),
        }
    }

    let visitor = crate::ssr::visitor().await?;
    let l = visitor.locale;
    let wrong_kind = || {
        vec![FieldMessage {
            field: KIND_FIELD.to_owned(),
            message: tr(l, "err-kind", &[]),
        }]
    };
    let engine = expect_context::<Engine>();
    let kind = kind.unwrap_or_else(|| DEFAULT_KIND.to_owned());
    // Only what the form offers: tools' kinds are for the JSON API.
    let Some(schema) = engine.registry().schema(&kind).filter(|s| s.in_form) else {
        return Ok(wrong_kind());
    };
    let mut params = serde_json::Map::new();
    let mut errors = Vec::new();
    for field in &schema.fields {
        let text = fields.get(&field.name).map_or("", String::as_str);
        match field.parse_form(text) {
            Ok(Some(value)) => {
                // A number, a text or a list of texts: always JSON.
                let value = serde_json::to_value(value).unwrap_or_default();
                params.insert(field.name.clone(), value);
            }
            Ok(None) => {} // left blank: the kind's default
            Err(e) => errors.push(message(&e, l)),
        }
    }
    if !errors.is_empty() {
        return Ok(errors);
    }
    let submitted = engine
        .submit(NewJob {
            owner: visitor.session,
            kind,
            params: params.into(),
            display_name: visitor.display_name,
            locale: l.tag().to_owned(),
            client: visitor.client,
        })
        .await;
    match submitted {
        Ok(job) => {
            leptos_axum::redirect(&routes::job_page(&job.id.to_string()));
            Ok(Vec::new())
        }
        // The kind's own checks (relations between fields) and the bounds.
        Err(SubmitError::Plan(PlanError::BadParams { field, problem, .. })) => {
            let field = field.unwrap_or_else(|| KIND_FIELD.to_owned());
            Ok(vec![message(&FieldProblem::new(field, problem), l)])
        }
        Err(SubmitError::Plan(PlanError::UnknownKind { .. })) => Ok(wrong_kind()),
        Err(e) => Err(UserError::from(e).into_server_error(l)),
    }
}

/// A kind as the start form shows it: made on the server from its schema,
/// so the browser gets only what the form needs (no schema decoding there).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormKind {
    /// The kind's name (the form's `kind` value).
    pub name: String,
    /// Its name for a person.
    pub label: String,
    /// Its fields, in order.
    pub fields: Vec<FormField>,
}

/// One input of the start form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormField {
    /// The form field's name (the param's JSON key).
    pub name: String,
    /// Its label.
    pub label: String,
    /// What the input holds at first: the default, else the example.
    pub initial: String,
    /// A textarea, one value a line.
    pub lines: bool,
    /// A whole number: a numeric keyboard.
    pub numeric: bool,
}

/// The start form's kinds, with their texts in the visitor's language.
pub fn form_kinds(strings: &Strings, kinds: &[KindSchema]) -> Vec<FormKind> {
    kinds
        .iter()
        .map(|k| FormKind {
            name: k.name.clone(),
            label: strings.t(&format!("kind-{}", k.name)),
            fields: k
                .fields
                .iter()
                .map(|f| FormField {
                    name: f.name.clone(),
                    label: strings.t(&format!("field-{}", f.name)),
                    initial: f.initial_form_value(),
                    lines: matches!(f.ty, FieldType::Lines { .. }),
                    numeric: matches!(f.ty, FieldType::Integer { .. }),
                })
                .collect(),
        })
        .collect()
}

/// The kind the form selects at first: [`DEFAULT_KIND`] if offered, else
/// the first.
fn initial_kind(kinds: &[FormKind]) -> String {
    kinds
        .iter()
        .find(|k| k.name == DEFAULT_KIND)
        .or(kinds.first())
        .map(|k| k.name.clone())
        .unwrap_or_default()
}

/// The start form. Only the chosen kind's fieldset is shown and enabled, so
/// only its fields are posted (with or without JavaScript).
#[component]
pub fn StartForm(strings: Strings, kinds: Vec<FormKind>) -> impl IntoView {
    // The last answer (field messages, or an error's text) and whether a
    // call is on its way.
    let answer = RwSignal::new(None::<Result<Vec<FieldMessage>, String>>);
    let pending = RwSignal::new(false);
    let initial = initial_kind(&kinds);
    let kind = RwSignal::new(initial.clone());
    let error_for = move |field: String| {
        Signal::derive(move || match answer.get() {
            Some(Ok(errors)) => errors
                .into_iter()
                .find(|e| e.field == field)
                .map(|e| e.message),
            _ => None,
        })
    };
    let general_error = move || match answer.get() {
        Some(Err(e)) => Some(e),
        _ => None,
    };
    // The chosen kind's field names, for reading the submitted form.
    let names: Vec<(String, Vec<String>)> = kinds
        .iter()
        .map(|k| {
            (
                k.name.clone(),
                k.fields.iter().map(|f| f.name.clone()).collect(),
            )
        })
        .collect();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        let form = crate::forms::Submitted::take(&ev);
        let chosen = form.get(KIND_FIELD).unwrap_or_else(|| kind.get_untracked());
        let mut fields: Vec<(String, String)> = names
            .iter()
            .filter(|(k, _)| *k == chosen)
            .flat_map(|(_, fields)| fields)
            .filter_map(|name| Some((name.clone(), form.get(name)?)))
            .collect();
        fields.insert(0, (KIND_FIELD.to_owned(), chosen));
        #[cfg(feature = "hydrate")]
        {
            pending.set(true);
            leptos::task::spawn_local(async move {
                let fields: Vec<(&str, &str)> = fields
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                // On success the server redirects to the job's page.
                let result = crate::forms::call(StartJob::PATH, &fields).await;
                answer.set(Some(result));
                pending.set(false);
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (fields, pending);
    };
    let options = kinds
        .iter()
        .map(|k| {
            let selected = k.name == initial;
            view! { <option value=k.name.clone() selected=selected>{k.label.clone()}</option> }
        })
        .collect_view();
    let fieldsets = kinds
        .into_iter()
        .map(|k| {
            let name = k.name.clone();
            let active = Memo::new(move |_| kind.with(|c| *c == name));
            let inputs = k
                .fields
                .into_iter()
                .map(|field| {
                    let error = error_for(field.name.clone());
                    // Errors of another kind's submission are not shown here.
                    let error = Signal::derive(move || error.get().filter(|_| active.get()));
                    field_input(&k.name, field, error)
                })
                .collect_view();
            view! {
                <fieldset class="params" disabled=move || !active.get() hidden=move || !active.get()>
                    {inputs}
                </fieldset>
            }
        })
        .collect_view();
    view! {
        <section class="card">
            <h2>{strings.t("start-heading")}</h2>
            <form method="post" action=StartJob::PATH novalidate on:submit=on_submit>
                <div class="field">
                    <label for=KIND_FIELD>{strings.t("field-kind")}</label>
                    <select id=KIND_FIELD name=KIND_FIELD
                        on:change=move |ev| kind.set(event_target_value(&ev))>
                        {options}
                    </select>
                    <p class="error field-error">{error_for(KIND_FIELD.to_owned())}</p>
                </div>
                {fieldsets}
                <button type="submit" disabled=move || pending.get()>{strings.t("button-start")}</button>
            </form>
            {move || general_error().map(|e| view! { <p class="error" role="alert">{e}</p> })}
        </section>
    }
}

/// One field of a kind: its label, its input (a textarea for lines, a
/// numeric keyboard for numbers), and the place for its error.
fn field_input(kind: &str, field: FormField, error: Signal<Option<String>>) -> impl IntoView {
    use leptos::either::Either;

    let id = format!("{kind}-{}", field.name);
    let error_id = format!("{id}-error");
    let invalid = move || error.with(Option::is_some).to_string();
    let input = if field.lines {
        Either::Left(view! {
            <textarea id=id.clone() name=field.name rows="3"
                aria-invalid=invalid aria-describedby=error_id.clone()>{field.initial}</textarea>
        })
    } else {
        Either::Right(view! {
            <input id=id.clone() name=field.name type="text" value=field.initial
                inputmode=field.numeric.then_some("numeric")
                aria-invalid=invalid aria-describedby=error_id.clone()/>
        })
    };
    view! {
        <div class="field">
            <label for=id>{field.label}</label>
            {input}
            <p class="error field-error" id=error_id>{move || error.get()}</p>
        </div>
    }
}
