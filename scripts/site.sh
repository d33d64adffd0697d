# Sourced by scripts/run and scripts/cluster: builds the site and gives the
# server binary the LEPTOS_* settings `cargo leptos serve` would give it.
# (`cargo leptos serve` itself would rebuild the site after the bundle's
# compressed copies were written.)
# shellcheck shell=bash

# The build profile ARGS ask for: `release` with --release, else `debug`.
site_profile() {
  local arg
  for arg in "$@"; do
    if [ "$arg" = --release ]; then
      echo release
      return
    fi
  done
  echo debug
}

# Builds the server and the bundle with cargo-leptos (ARGS passed on), then
# writes the bundle's .br and .gz copies (scripts/compress-site; brotli's
# best for release, a quick pass otherwise).
build_site() {
  cargo leptos build "$@"
  if [ "$(site_profile "$@")" = release ]; then
    scripts/compress-site
  else
    scripts/compress-site --fast
  fi
}

# Exports the settings of [[workspace.metadata.leptos]] (Cargo.toml) for a
# server of PROFILE; those already set win.
site_env() {
  export LEPTOS_OUTPUT_NAME="${LEPTOS_OUTPUT_NAME:-jobstream}"
  export LEPTOS_SITE_ROOT="${LEPTOS_SITE_ROOT:-target/site}"
  export LEPTOS_SITE_PKG_DIR="${LEPTOS_SITE_PKG_DIR:-pkg}"
  export LEPTOS_SITE_ADDR="${LEPTOS_SITE_ADDR:-127.0.0.1:3000}"
  if [ "$1" = release ]; then
    export LEPTOS_ENV="${LEPTOS_ENV:-PROD}"
  fi
  # With `hash-files = true` there, cargo-leptos puts the content hash in
  # the bundle's file names and writes them to hash.txt next to the binary;
  # the server then reads them and lets browsers keep those files for a
  # year.
  if grep -Eq '^[[:space:]]*hash-files[[:space:]]*=[[:space:]]*true' Cargo.toml; then
    export LEPTOS_HASH_FILES="${LEPTOS_HASH_FILES:-true}"
  fi
}
