// Time to the first message, measured in Debian's Chromium (a benchmark,
// not a test). Run against a running server started with JOBSTREAM_BENCH=1
// (the `bench` kind stamps each message with its emit time):
//
//   node end2end/bench/first_message.mjs --url http://127.0.0.1:PORT [--runs 5]
//
// start: the home page opened, then "Start job" clicked as soon as the page
//   has hydrated; the times from navigation start to hydration, and from
//   the click to the job's first output row in the DOM (the click posts
//   the form, a `demo` job of one step; the browser follows the redirect
//   to the job page, whose first row is server-rendered or arrives live).
//   Cold: a fresh browser context (the bundle downloaded); warm: the same
//   context again (the bundle cached). Medians of --runs.
// emit: a hydrated job page and a `bench` job that starts when its stream
//   is read; for each message, the time from its emit on the server (the
//   stamp in its text) to its row being added to the list (a
//   MutationObserver in the page, same machine clock). Median and largest.
//
// Every figure is printed as one JSON line.

import { chromium } from "@playwright/test";

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, a, i, all) => {
    if (a.startsWith("--")) pairs.push([a.slice(2), all[i + 1]]);
    return pairs;
  }, []),
);
const url = args.url ?? "http://127.0.0.1:3000";
const runs = Number(args.runs ?? 5);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"],
});
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Opens `/`, clicks "Start job" once hydrated; times in ms. */
async function startOnce(page) {
  const nav = Date.now();
  await page.goto(`${url}/`);
  await page.locator('main[data-hydrated="true"]').waitFor();
  const hydrated = Date.now() - nav;
  // One step, no pause: the job ends with its first message and never
  // holds a worker that a later run would queue behind.
  await page.locator("#demo-steps").fill("1");
  await page.locator("#demo-interval_ms").fill("0");
  const click = Date.now();
  await page.getByRole("button", { name: "Start job" }).click();
  await page.getByRole("list", { name: "Job output" }).getByRole("listitem").first().waitFor();
  return { hydrated_ms: hydrated, click_to_first_row_ms: Date.now() - click };
}

for (const mode of ["cold", "warm"]) {
  const hydrated = [];
  const first = [];
  for (let i = 0; i < runs; i++) {
    const context = await browser.newContext();
    const page = await context.newPage();
    if (mode === "warm") await startOnce(page); // fills the cache
    const r = await startOnce(page);
    hydrated.push(r.hydrated_ms);
    first.push(r.click_to_first_row_ms);
    await context.close();
  }
  console.log(JSON.stringify({ bench: "start", mode, runs, hydrated_ms: median(hydrated), click_to_first_row_ms: median(first), click_to_first_row_max_ms: Math.max(...first) }));
}

{
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${url}/`);
  const events = 20;
  const r = await context.request.post(`${url}/api/jobs`, {
    data: { kind: "bench", params: { events, size: 64, rate: 10, readers: 1, wait_ms: 30000 } },
  });
  if (r.status() !== 201) throw new Error(`POST /api/jobs: ${r.status()} ${await r.text()} (JOBSTREAM_BENCH=1?)`);
  const { url: jobUrl } = await r.json();
  await page.goto(`${url}${jobUrl}`);
  await page.locator('main[data-hydrated="true"]').waitFor();
  const delays = await page.evaluate(
    (events) =>
      new Promise((resolve) => {
        const list = document.querySelector("ul.output");
        const delays = [];
        const seen = () => {
          for (const li of list.querySelectorAll("li:not([data-timed])")) {
            li.setAttribute("data-timed", "");
            const nanos = Number(li.textContent.split(" ")[1]);
            delays.push(Date.now() - nanos / 1e6);
          }
          if (delays.length >= events) resolve(delays);
        };
        new MutationObserver(seen).observe(list, { childList: true });
        seen();
      }),
    events,
  );
  // Rows the server rendered into the page were not "added live".
  const live = delays.filter((d) => d < 10_000);
  console.log(JSON.stringify({ bench: "emit", events: live.length, median_ms: Math.round(median(live) * 10) / 10, max_ms: Math.round(Math.max(...live) * 10) / 10 }));
  await context.close();
}

await browser.close();
