import { defineConfig } from "@playwright/test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// A fresh folder for the test servers' databases on every run (workers
// inherit it through the environment).
process.env.E2E_DATA ??= mkdtempSync(join(tmpdir(), "jobstream-e2e-"));

// cargo-leptos puts content hashes in the bundle's file names when
// Cargo.toml's leptos metadata says `hash-files = true` (and writes them to
// hash.txt next to the server binary); the server must then be told so, as
// `cargo leptos serve` would tell it.
const hashFiles =
  process.env.LEPTOS_HASH_FILES ??
  String(/^\s*hash-files\s*=\s*true/m.test(readFileSync(join(__dirname, "..", "Cargo.toml"), "utf8")));

// The server under test: the debug build made by `cargo leptos build`,
// started here on its own port so a dev server on 3000 does not interfere.
const port = Number(process.env.E2E_PORT ?? 3100);
const baseURL = `http://127.0.0.1:${port}`;

export default defineConfig({
  testDir: "./tests",
  timeout: 60_000,
  expect: { timeout: 15_000 },
  fullyParallel: false,
  workers: 1, // two cores: the server and one browser
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: [["list"]],
  use: {
    baseURL,
    trace: "retain-on-failure",
    launchOptions: {
      // Debian's Chromium; Playwright never downloads a browser here.
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    },
  },
  projects: [{ name: "chromium", use: { browserName: "chromium" } }],
  webServer: [
    server(port, {}),
    // A second server whose streams live only 2 s, so tests can watch the
    // page resume after the server ends a stream mid-job.
    server(port + 1, { JOBSTREAM_STREAM_LIFETIME_SECS: "2" }),
  ],
});

function server(port: number, env: Record<string, string>) {
  return {
    command: process.env.E2E_SERVER ?? "target/debug/jobstream",
    cwd: "..",
    url: `http://127.0.0.1:${port}/`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: "pipe" as const,
    stderr: "pipe" as const,
    env: {
      LEPTOS_SITE_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: "target/site",
      LEPTOS_HASH_FILES: hashFiles,
      JOBSTREAM_DATABASE_URL: `sqlite://${process.env.E2E_DATA}/server-${port}.db`,
      RUST_LOG: "warn",
      ...env,
    },
  };
}
