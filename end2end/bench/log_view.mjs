// The log view under big outputs, measured in Debian's Chromium (a
// benchmark, not a test: it prints figures and fails only when the page
// never gets there). Run by scripts/bench-log against a running server.
//
//   node end2end/bench/log_view.mjs --url http://127.0.0.1:PORT \
//     [--sizes 1000,10000,100000] [--rates 1000,5000,10000,20000] \
//     [--seconds 5] [--loads 3] [--json FILE]
//
// load: for a finished `log` job of each size, the job page's HTML size
//   (plain HTTP: uncompressed, and as sent with brotli) and, in the
//   browser, the time from navigation to the first paint, to the last line
//   in view in the output's box, and to hydration (`main[data-hydrated]`).
//   Cold: a fresh browser context (nothing cached); warm: the median of
//   `--loads` reloads after it (the bundle cached, as for a returning
//   visitor).
// follow: a live `log` job at each rate for `--seconds`, the page opened as
//   it starts. A script in the page notes, every frame, the newest row's
//   line number with the time; against the job's start and end times (the
//   same machine's clock) that gives how far behind the page was at the
//   job's end (lines), how long after the end the last line showed, and
//   the largest lag during the run (seconds behind the job's schedule).
//
// eventsource: the same live jobs read by a bare EventSource whose handler
//   only counts, for the browser's own ceiling on this machine.
//
// Every figure is printed as one JSON line, and appended to --json FILE.
// `--table FILE` prints the runs recorded in FILE (these, and
// `jobstream-bench catchup`'s) as Markdown tables and does nothing else.

import { chromium } from "@playwright/test";
import { appendFileSync, readFileSync } from "node:fs";
import http from "node:http";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => {
    if (a.startsWith("--")) pairs.push([a.slice(2), all[i + 1]]);
    return pairs;
  }, []),
);
const url = args.url ?? "http://127.0.0.1:3000";
const list = (v, d) => (v ?? d).split(",").filter(Boolean).map(Number);
const sizes = list(args.sizes, "1000,10000,100000");
const rates = list(args.rates, "1000,5000,10000,20000");
const seconds = Number(args.seconds ?? 5);
const loads = Number(args.loads ?? 3);

if (args.table) {
  table(args.table);
  process.exit(0);
}

const browser = await chromium.launch({
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
});

function record(value) {
  const line = JSON.stringify(value);
  console.log(line);
  if (args.json) appendFileSync(args.json, line + "\n");
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Starts a `log` job in the context's session; returns its id. */
async function startLog(context, lines, rate) {
  const r = await context.request.post(`${url}/api/jobs`, {
    data: { kind: "log", params: { lines, rate } },
  });
  if (r.status() !== 201) throw new Error(`POST /api/jobs: ${r.status()} ${await r.text()}`);
  return (await r.json()).id;
}

/** The job's summary (state, times) from GET /api/jobs. */
async function summary(context, id) {
  const r = await context.request.get(`${url}/api/jobs?limit=500`);
  return (await r.json()).jobs.find((j) => j.id === id);
}

async function waitEnded(context, id, timeoutMs = 600_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await summary(context, id);
    if (s && s.finished_at) return s;
    if (Date.now() > end) throw new Error(`job ${id} did not end`);
    await sleep(100);
  }
}

/** Bytes of GET `path` as sent, with `encoding` accepted, in the session. */
async function sizeOf(context, path, encoding) {
  const cookie = (await context.cookies(url)).map((c) => `${c.name}=${c.value}`).join("; ");
  return new Promise((resolve, reject) => {
    http
      .get(`${url}${path}`, { headers: { cookie, "accept-encoding": encoding } }, (res) => {
        let n = 0;
        res.on("data", (chunk) => (n += chunk.length));
        res.on("end", () => resolve(n));
      })
      .on("error", reject);
  });
}

// Runs in the page from its start: every frame, note when the line
// `window.__want` is first in view in the output's box, when the app has
// hydrated, and each change of the newest row's number (with the time).
const watcher = () => {
  const w = window;
  w.__frames = [];
  const tick = () => {
    // Milliseconds since navigation (load times), and the wall clock, as
    // the server's job times are (following).
    const now = performance.now();
    const wall = Date.now();
    const box = document.querySelector('ul[aria-label="Job output"]');
    const last = box?.lastElementChild;
    if (last) {
      const n = Number(last.dataset.n);
      const prev = w.__frames.at(-1);
      if (!prev || prev[1] !== n) w.__frames.push([wall, n]);
      if (w.__shown === undefined && n === w.__want) {
        const r = last.getBoundingClientRect();
        const b = box.getBoundingClientRect();
        if (r.height > 0 && r.top >= b.top - 1 && r.bottom <= b.bottom + 1) w.__shown = now;
      }
    }
    if (w.__hydrated === undefined && document.querySelector('main[data-hydrated="true"]')) {
      w.__hydrated = now;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
};

/** One load of a finished job's page: milliseconds from navigation start. */
async function loadOnce(page, id, total) {
  await page.goto(`${url}/jobs/${id}`, { waitUntil: "commit" });
  await page.evaluate((n) => (window.__want = n), total);
  await page.waitForFunction(() => window.__shown && window.__hydrated, null, {
    timeout: 120_000,
    polling: 50,
  });
  return page.evaluate(() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const fcp = performance.getEntriesByName("first-contentful-paint")[0];
    return {
      html_ms: nav.responseEnd,
      fcp_ms: fcp ? fcp.startTime : null,
      last_line_ms: window.__shown,
      hydrated_ms: window.__hydrated,
      rows: document.querySelectorAll('ul[aria-label="Job output"] li').length,
    };
  });
}

async function measureLoad(lines) {
  const context = await browser.newContext();
  await context.request.get(`${url}/`); // the session
  const id = await startLog(context, lines, 0);
  await waitEnded(context, id);
  const path = `/jobs/${id}`;
  const html = await sizeOf(context, path, "identity");
  const html_br = await sizeOf(context, path, "br");
  const html_gzip = await sizeOf(context, path, "gzip");
  // `__want` is set after `commit`; the init script just watches, so the
  // row is found whenever it shows.
  await context.addInitScript(watcher);
  const page = await context.newPage();
  const cold = await loadOnce(page, id, lines);
  const warm = [];
  for (let i = 0; i < loads; i++) warm.push(await loadOnce(page, id, lines));
  const pick = (k) => Math.round(median(warm.map((w) => w[k])));
  record({
    scenario: "log-load", lines, html_bytes: html, html_br_bytes: html_br,
    html_gzip_bytes: html_gzip, rows: cold.rows,
    cold_html_ms: Math.round(cold.html_ms), cold_fcp_ms: Math.round(cold.fcp_ms),
    cold_last_line_ms: Math.round(cold.last_line_ms), cold_hydrated_ms: Math.round(cold.hydrated_ms),
    warm_html_ms: pick("html_ms"), warm_fcp_ms: pick("fcp_ms"),
    warm_last_line_ms: pick("last_line_ms"), warm_hydrated_ms: pick("hydrated_ms"), loads,
  });
  await context.close();
}

async function measureFollow(rate) {
  const lines = rate * seconds;
  const context = await browser.newContext();
  await context.addInitScript(watcher);
  const page = await context.newPage();
  await page.goto(`${url}/`); // the session, and the bundle in the cache
  await page.waitForSelector('main[data-hydrated="true"]');
  // With one worker (JOBSTREAM_WORKERS=1), a slow job in front keeps the
  // measured one queued until its page has hydrated, so the page follows
  // it from its first line; cancelling the blocker lets it start.
  const blocker = await startLog(context, 1000, 1);
  const id = await startLog(context, lines, rate);
  const queued = (await summary(context, id)).state === "queued";
  await page.goto(`${url}/jobs/${id}`, { waitUntil: "commit" });
  await page.evaluate((n) => (window.__want = n), lines);
  await page.waitForSelector('main[data-hydrated="true"]');
  await context.request.post(`${url}/api/jobs/${blocker}/cancel`);
  const job = await waitEnded(context, id);
  // The page has 30 s after the job's end to show its last line.
  await page
    .waitForFunction((n) => window.__frames.at(-1)?.[1] === n, lines, {
      timeout: 30_000,
      polling: 100,
    })
    .catch(() => {});
  const frames = await page.evaluate(() => window.__frames);
  const rows = await page.evaluate(
    () => document.querySelectorAll('ul[aria-label="Job output"] li').length,
  );
  const started = job.started_at;
  const ended = job.finished_at;
  // Newest row at the job's end, and when the last line first showed.
  const atEnd = frames.filter(([t]) => t <= ended).at(-1)?.[1] ?? 0;
  const done = frames.find(([, n]) => n === lines);
  // Lag: how many seconds the newest row is behind the line the job was
  // due to have said by then (its schedule: `rate` per second from its
  // start). Frames are noted when the row changes, so the row before each
  // change was shown until just before it: that one is measured.
  let lag = 0;
  for (let i = 0; i < frames.length; i++) {
    const t = frames[i][0];
    // Before the first row, a page opened before the start showed none.
    const shown = i > 0 ? frames[i - 1][1] : queued ? 0 : null;
    if (t < started || shown === null) continue;
    const due = Math.min(lines, Math.floor(((t - started) * rate) / 1000) + 1);
    lag = Math.max(lag, (due - shown) / rate);
  }
  record({
    scenario: "log-follow", rate, lines,
    job_s: (ended - started) / 1000,
    job_lines_per_s: Math.round((lines * 1000) / (ended - started)),
    behind_at_end_lines: lines - atEnd,
    behind_at_end_s: (lines - atEnd) / rate,
    last_line_after_end_ms: done ? Math.round(done[0] - ended) : null,
    max_lag_s: Math.round(lag * 1000) / 1000,
    frames: frames.length, rows_at_end: rows, opened_before_start: queued,
    kept_up: !!done && done[0] - ended <= 1000 && lag <= 1,
  });
  await context.close();
}

/** The same job read by a bare EventSource in a page (a handler that only
 * counts): how fast Chromium itself hands events to a page here, the
 * ceiling for any page. */
async function measureEventSource(rate) {
  const lines = rate * seconds;
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${url}/`);
  const id = await startLog(context, lines, rate);
  const last = await page.evaluate(
    ([id, lines, seconds]) =>
      new Promise((resolve) => {
        let n = 0;
        const es = new EventSource(`/api/jobs/${id}/events`);
        es.onmessage = (e) => {
          if (e.data !== "__CLOSE_SSE__" && ++n === lines) {
            es.close();
            resolve(Date.now());
          }
        };
        setTimeout(() => resolve(null), (seconds + 60) * 1000);
      }),
    [id, lines, seconds],
  );
  const job = await waitEnded(context, id);
  record({
    scenario: "log-follow-eventsource", rate, lines,
    job_lines_per_s: Math.round((lines * 1000) / (job.finished_at - job.started_at)),
    last_line_after_end_ms: last === null ? null : Math.max(0, last - job.finished_at),
  });
  await context.close();
}

try {
  for (const n of sizes) await measureLoad(n);
  for (const r of rates) await measureFollow(r);
  for (const r of rates) await measureEventSource(r);
} finally {
  await browser.close();
}

/** The recorded runs of `file` as Markdown tables, one per scenario. */
function table(file) {
  const runs = readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  const mib = (x) => x.toFixed(1);
  const kib = (x) => (x / 1024).toFixed(1);
  const rows = (scenario, head, cells) => {
    const these = runs.filter((r) => r.scenario === scenario);
    if (these.length === 0) return;
    console.log(`| ${head.join(" | ")} |`);
    console.log(`|${head.map(() => "---:").join("|")}|`);
    for (const r of these) console.log(`| ${cells(r).join(" | ")} |`);
    console.log();
  };
  rows(
    "log-load",
    ["lines", "HTML (KiB)", "brotli (KiB)", "rows", "cold: HTML / last line / hydrated (ms)",
      "warm: HTML / last line / hydrated (ms)"],
    (r) => [r.lines.toLocaleString("en"), kib(r.html_bytes), kib(r.html_br_bytes), r.rows,
      `${r.cold_html_ms} / ${r.cold_last_line_ms} / ${r.cold_hydrated_ms}`,
      `${r.warm_html_ms} / ${r.warm_last_line_ms} / ${r.warm_hydrated_ms}`],
  );
  rows(
    "log-follow",
    ["lines/s", "lines", "job's own rate", "behind at the end (lines)",
      "last line shown after the end (ms)", "largest lag (s)", "within 1 s"],
    (r) => [r.rate.toLocaleString("en"), r.lines.toLocaleString("en"),
      r.job_lines_per_s.toLocaleString("en"), r.behind_at_end_lines.toLocaleString("en"),
      r.last_line_after_end_ms ?? "never", r.max_lag_s.toFixed(2), r.kept_up ? "yes" : "no"],
  );
  rows(
    "log-follow-eventsource",
    ["lines/s", "lines", "bare EventSource: last line after the end (ms)"],
    (r) => [r.rate.toLocaleString("en"), r.lines.toLocaleString("en"), r.last_line_after_end_ms ?? "never"],
  );
  rows(
    "catchup",
    ["via", "lines", "readers", "job text (MiB)", "job in the db (MiB)", "RSS before (MiB)",
      "peak RSS during (MiB)", "RSS after (MiB)", "per reader (KiB)", "time (s)", "lines/s",
      "wrong lines"],
    (r) => [r.via, r.lines.toLocaleString("en"), r.readers, mib(r.job_text_mib), mib(r.db_mib),
      mib(r.rss_before_mib), mib(r.peak_rss_during_mib), mib(r.rss_after_mib),
      r.growth_per_reader_kib.toFixed(0), r.elapsed_s.toFixed(1),
      Math.round(r.lines_per_s).toLocaleString("en"), r.wrong_lines],
  );
}
