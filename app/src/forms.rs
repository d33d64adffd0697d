//! Forms that work with and without JavaScript, without `ActionForm`.
//!
//! Each form is a plain `<form method="post" action=SERVER_FN_URL>`, so
//! before hydration (or without JavaScript) the browser posts it and the
//! server function answers. Once hydrated, its `submit` handler stops that
//! post, reads the fields it needs from [`Submitted`] and dispatches the
//! server function's action with typed arguments. `ActionForm` would decode
//! the whole form generically (serde_qs: about 17 KB of the bundle).

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

/// A server function that redirects (`leptos_axum::redirect`) takes the
/// browser there: a full page load, as there is no client-side router.
pub fn follow_redirects() {
    #[cfg(feature = "hydrate")]
    {
        // Set once; a second call keeps the first hook, which is the same.
        let _ = leptos::server_fn::redirect::set_redirect_hook(|location: &str| {
            let _ = leptos::prelude::window().location().set_href(location);
        });
    }
}
