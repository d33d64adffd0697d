//! Forms that work with and without JavaScript, without `ActionForm` and
//! without the server functions' generic client.
//!
//! Each form is a plain `<form method="post" action=SERVER_FN_URL>`, so
//! before hydration (or without JavaScript) the browser posts it and the
//! server function answers. Once hydrated, its `submit` handler stops that
//! post, reads the fields it needs from [`Submitted`] and posts them itself
//! with [`call`]: the same request a form makes, asking for JSON, and the
//! answer read as the server function's output type. `ActionForm` would
//! decode the whole form generically (serde_qs, about 17 KB of the bundle)
//! and `ServerAction` brings the server functions' client with its codecs
//! (about 40 KB); this is one small function.

use leptos::ev::SubmitEvent;

/// The fields of a submitted form.
pub struct Submitted {
    #[cfg(feature = "hydrate")]
    data: Option<web_sys::FormData>,
}

impl Submitted {
    /// Stops the browser's own post of the form `ev` submits and takes its
    /// fields.
    pub fn take(ev: &SubmitEvent) -> Self {
        ev.prevent_default();
        #[cfg(feature = "hydrate")]
        {
            use leptos::wasm_bindgen::JsCast;
            let data = ev
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlFormElement>().ok())
                .and_then(|form| web_sys::FormData::new_with_form(&form).ok());
            Submitted { data }
        }
        // Events are handled in the browser only.
        #[cfg(not(feature = "hydrate"))]
        Submitted {}
    }

    /// The field `name`'s value; `None` if the form has no such field or
    /// it is disabled.
    pub fn get(&self, name: &str) -> Option<String> {
        #[cfg(feature = "hydrate")]
        return self.data.as_ref()?.get(name).as_string();
        #[cfg(not(feature = "hydrate"))]
        {
            let _ = name;
            None
        }
    }
}

/// Calls the server function at `path` with `fields`, as its form would
/// post them, and reads its answer as `T` (the server function's output,
/// JSON). A server function that redirects (`leptos_axum::redirect`) takes
/// the browser there, a full page load, and the call then never returns.
///
/// `Err` is the text to show: a server function's own error message
/// (`ServerFnError::ServerError`, sent as `ServerError|TEXT` with an error
/// status), else what went wrong.
#[cfg(feature = "hydrate")]
pub async fn call<T: serde::de::DeserializeOwned>(
    path: &str,
    fields: &[(&str, &str)],
) -> Result<T, String> {
    use leptos::server_fn::redirect::REDIRECT_HEADER;

    let body = web_sys::UrlSearchParams::new().map_err(|_| UNREACHABLE.to_owned())?;
    for (name, value) in fields {
        body.append(name, value);
    }
    let response = gloo_net::http::Request::post(path)
        // Not text/html: the server then answers with data, not a redirect
        // back to the page as it does for a plain form.
        .header("Accept", "application/json")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(String::from(body.to_string()))
        .map_err(|_| UNREACHABLE.to_owned())?
        .send()
        .await
        .map_err(|_| UNREACHABLE.to_owned())?;
    if response.headers().get(REDIRECT_HEADER).is_some() {
        if let Some(location) = response.headers().get("location") {
            let _ = leptos::prelude::window().location().set_href(&location);
            // The page goes away; nothing is shown meanwhile.
            std::future::pending::<()>().await;
        }
    }
    if !response.ok() {
        let text = response.text().await.unwrap_or_default();
        return Err(match text.split_once('|') {
            Some(("ServerError", message)) => message.to_owned(),
            _ => text,
        });
    }
    response
        .json::<T>()
        .await
        .map_err(|_| UNREACHABLE.to_owned())
}

/// What a call says when the server cannot be reached or answers nonsense.
#[cfg(feature = "hydrate")]
const UNREACHABLE: &str = "The server could not be reached; try again.";
