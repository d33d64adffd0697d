//! The browser entry point. The page is rendered on the server; only its
//! islands (`#[island]` components of the `app` crate) are hydrated, each
//! by its own exported function that Leptos' island script calls.

// Nothing here names the app's items: the islands are exported by the
// `app` crate itself. This links it in.
extern crate app;

/// Called by the generated JS once the WebAssembly module is loaded.
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    // Panic messages in the console in debug builds; a release bundle
    // (`panic = "abort"`) leaves the formatting machinery out.
    #[cfg(debug_assertions)]
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
}
