import { test, expect, type Page } from "@playwright/test";

const JOB_STREAM = /\/api\/jobs\/[^/]+\/events/;
const FEED = /\/api\/events$/;

/** Opens a page and waits until the WebAssembly app has hydrated it. */
async function open(page: Page, path: string) {
  await page.goto(path);
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
}

async function startJob(page: Page, kind: string, params: object): Promise<string> {
  const response = await page.request.post("/api/jobs", { data: { kind, params } });
  expect(response.status()).toBe(201);
  return (await response.json()).id;
}

function row(page: Page, id: string) {
  return page.getByRole("table", { name: "Your jobs" }).locator(`tr[data-job="${id}"]`);
}

test("the job list updates live for two running jobs over one stream connection", async ({ page }) => {
  const feeds: string[] = [];
  const jobStreams: string[] = [];
  page.on("request", (r) => {
    if (FEED.test(r.url())) feeds.push(r.url());
    if (JOB_STREAM.test(r.url())) jobStreams.push(r.url());
  });
  await open(page, "/");
  const a = await startJob(page, "demo", { steps: 4, interval_ms: 700 });
  const b = await startJob(page, "demo", { steps: 4, interval_ms: 700 });

  // Both appear without a reload, run, move, and finish.
  for (const id of [a, b]) {
    await expect(row(page, id).locator("td.state")).toHaveText("running");
  }
  for (const id of [a, b]) {
    await expect(row(page, id).locator("td.progress")).toHaveText("50%");
  }
  for (const id of [a, b]) {
    await expect(row(page, id).locator("td.state")).toHaveText("succeeded");
    await expect(row(page, id).locator("td.progress")).toHaveText("100%");
  }
  // Newest first.
  await expect(page.locator("tbody tr").first()).toHaveAttribute("data-job", b);
  expect(feeds).toHaveLength(1);
  expect(jobStreams).toHaveLength(0);

  // Server-rendered: after a reload the list is there before any script.
  await page.reload();
  await expect(row(page, a).locator("td.state")).toHaveText("succeeded");
});

test("cancel on the job page stops a running job", async ({ page }) => {
  await open(page, "/");
  const id = await startJob(page, "demo", { steps: 100, interval_ms: 400 });
  await open(page, `/jobs/${id}`);
  await expect(page.getByRole("status")).toHaveText("running");
  await page.getByRole("button", { name: "Cancel" }).click();
  await expect(page.getByRole("status")).toHaveText("cancelled");
  await expect(page.getByRole("button", { name: "Cancel" })).toBeHidden();
  const count = await page.getByRole("list", { name: "Job output" }).getByRole("listitem").count();
  expect(count).toBeLessThan(100);
});

test("a queued job can be cancelled from the list", async ({ page }) => {
  await open(page, "/");
  // Four workers: fill them, then queue one more.
  for (let i = 0; i < 4; i++) await startJob(page, "demo", { steps: 20, interval_ms: 500 });
  const queued = await startJob(page, "demo", { steps: 1 });
  await expect(row(page, queued).locator("td.state")).toHaveText("queued");
  await row(page, queued).getByRole("button", { name: "Cancel demo" }).click();
  await expect(row(page, queued).locator("td.state")).toHaveText("cancelled");
  // Tidy up: stop the four, so later tests have the workers.
  for (const r of await page.locator("tbody tr").all()) {
    const cancel = r.getByRole("button", { name: "Cancel demo" });
    if (await cancel.count()) await cancel.click();
  }
  await expect(page.getByRole("button", { name: "Cancel demo" })).toHaveCount(0);
});

test("the progress bar moves", async ({ page }) => {
  await open(page, "/");
  const id = await startJob(page, "demo", { steps: 5, interval_ms: 700 });
  await open(page, `/jobs/${id}`);
  const bar = page.getByRole("progressbar", { name: "Progress" });
  await expect(bar).toHaveAttribute("aria-valuenow", "40");
  await expect(bar).toHaveAttribute("aria-valuenow", "80");
  await expect(bar).toHaveAttribute("aria-valuenow", "100");
  await expect(page.getByRole("status")).toHaveText("succeeded");
});

test("switching to German gives a German UI and German messages for a new job", async ({ page }) => {
  await open(page, "/");
  await page.getByLabel("Language").selectOption("de");
  await page.getByRole("button", { name: "Switch language" }).click();
  await expect(page.getByRole("heading", { name: "Job starten" })).toBeVisible();
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
  await page.getByRole("textbox", { name: "Schritte", exact: true }).fill("2");
  await page.getByRole("textbox", { name: "Pause zwischen Schritten (ms)", exact: true }).fill("300");
  await page.getByRole("button", { name: "Job starten" }).click();
  await expect(page).toHaveURL(/\/jobs\/[A-Za-z0-9_-]{22}$/);
  const output = page.getByRole("list", { name: "Job output" }).getByRole("listitem");
  await expect(output).toHaveText(["fertig 1: ...(guest)", "fertig 2: ...(guest)"]);
  await expect(page.getByRole("status")).toHaveText("erfolgreich");

  // And back to English, which the other tests expect of this browser.
  await page.getByLabel("Sprache").selectOption("en");
  await page.getByRole("button", { name: "Sprache wechseln" }).click();
  await expect(page.getByRole("status")).toHaveText("succeeded");
});

test("invalid input shows an error at each field and starts nothing", async ({ page }) => {
  await open(page, "/");
  const rowsBefore = await page.locator("tbody tr").count();
  await page.getByRole("textbox", { name: "Steps", exact: true }).fill("0");
  await page.getByRole("button", { name: "Start job" }).click();
  await expect(page.locator("#demo-steps-error")).toHaveText("Must be a whole number from 1 to 1000.");
  await expect(page.getByRole("textbox", { name: "Steps", exact: true })).toHaveAttribute("aria-invalid", "true");
  await expect(page).toHaveURL(/\/$/);

  await page.getByLabel("Kind").selectOption("primes");
  await page.getByRole("textbox", { name: "Limit", exact: true }).fill("a lot");
  await page.getByRole("button", { name: "Start job" }).click();
  await expect(page.locator("#primes-limit-error")).toHaveText("Must be a whole number.");
  await page.getByRole("textbox", { name: "Limit", exact: true }).fill("2000000000");
  await page.getByRole("button", { name: "Start job" }).click();
  await expect(page.locator("#primes-limit-error")).toHaveText("Must be a whole number from 2 to 1000000000.");
  await expect(page.locator("tbody tr")).toHaveCount(rowsBefore);

  // Fixed, it starts and shows the count.
  await page.getByRole("textbox", { name: "Limit", exact: true }).fill("100000");
  await page.getByRole("button", { name: "Start job" }).click();
  await expect(page).toHaveURL(/\/jobs\//);
  await expect(page.getByRole("list", { name: "Job output" }).getByRole("listitem")).toHaveText([
    "Found 9,592 primes up to 100,000.",
  ]);
});
