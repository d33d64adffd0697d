import { test, expect, type Page } from "@playwright/test";

const STREAM = /\/api\/jobs\/[^/]+\/events/;

/** Opens a page and waits until the WebAssembly app has hydrated it. */
async function open(page: Page, path: string) {
  const response = await page.goto(path);
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
  return response;
}

function output(page: Page) {
  return page.getByRole("list", { name: "Job output" }).getByRole("listitem");
}

/** Starts a job through the API with the page's session; returns its URL. */
async function startJob(page: Page, kind: string, params: object): Promise<string> {
  const response = await page.request.post("/api/jobs", { data: { kind, params } });
  expect(response.status()).toBe(201);
  return (await response.json()).url;
}

test("the demo job streams its four messages, succeeds and the stream stays closed", async ({ page }) => {
  const streamRequests: string[] = [];
  page.on("request", (r) => {
    if (STREAM.test(r.url())) streamRequests.push(r.url());
  });

  await open(page, "/");
  await page.getByRole("button", { name: "Start job" }).click();
  await expect(page).toHaveURL(/\/jobs\/[A-Za-z0-9_-]{22}$/);

  // Messages arrive while the job runs, one a second.
  await expect(page.getByRole("status")).toHaveText("running");
  await expect(output(page).first()).toHaveText("finish 1: ...(guest)");
  await expect(output(page)).toHaveText([
    "finish 1: ...(guest)",
    "finish 2: ...(guest)",
    "finish 3: ...(guest)",
    "finish 4: ...(guest)",
  ]);
  await expect(page.getByRole("status")).toHaveText("succeeded");

  // On the sentinel the page closed its EventSource: a browser that had
  // not would reconnect after about three seconds.
  const requestsAtEnd = streamRequests.length;
  expect(requestsAtEnd).toBe(1);
  await page.waitForTimeout(4_500);
  expect(streamRequests).toHaveLength(requestsAtEnd);
  await expect(output(page)).toHaveCount(4);
});

test("reloading mid-job keeps what was shown and the rest still arrives, once", async ({ page }) => {
  await open(page, "/");
  const url = await startJob(page, "demo", { steps: 6, interval_ms: 700 });
  await open(page, url);
  // At least two shown (a loaded machine may show more before the reload).
  await expect(output(page).nth(1)).toBeVisible();

  await page.reload();
  // Server-rendered: the earlier messages are there before any script runs.
  const firstTwo = ["finish 1: ...(guest)", "finish 2: ...(guest)"];
  await expect(output(page).nth(0)).toHaveText(firstTwo[0]);
  await expect(output(page).nth(1)).toHaveText(firstTwo[1]);
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");

  await expect(page.getByRole("status")).toHaveText("succeeded");
  await expect(output(page)).toHaveText([1, 2, 3, 4, 5, 6].map((i) => `finish ${i}: ...(guest)`));
});

test("messages are shown as text, lines kept, and a message equal to the sentinel does not end the stream", async ({ page }) => {
  await open(page, "/");
  const messages = ["<img src=x onerror=\"window.pwned=1\">", "two\nlines", "__CLOSE_SSE__", "last"];
  const url = await startJob(page, "echo", { messages, interval_ms: 300 });
  await open(page, url);
  await expect(page.getByRole("status")).toHaveText("succeeded");
  await expect(output(page)).toHaveText(messages);
  expect(await page.evaluate(() => (window as any).pwned)).toBeUndefined();
  await expect(page.locator("ul.output img")).toHaveCount(0);
});

test("a display name set on the home page is used by new jobs", async ({ page }) => {
  await open(page, "/");
  await page.getByLabel("Display name").fill("Ada <Lovelace>");
  await page.getByRole("button", { name: "Save name" }).click();
  await expect(page.getByText("Saved. New jobs will call you Ada <Lovelace>.")).toBeVisible();
  await page.getByRole("button", { name: "Start job" }).click();
  await expect(output(page).first()).toHaveText("finish 1: ...(Ada <Lovelace>)");
});

test("another session gets 404 for the job and its stream", async ({ page, browser }) => {
  await open(page, "/");
  const url = await startJob(page, "echo", { messages: ["private"] });
  const id = url.split("/").pop();

  const other = await browser.newContext();
  const stranger = await other.newPage();
  const response = await stranger.goto(url);
  expect(response?.status()).toBe(404);
  await expect(stranger.getByRole("heading", { name: "Not found" })).toBeVisible();
  await expect(stranger.getByText("private")).toHaveCount(0);
  const stream = await stranger.request.get(`/api/jobs/${id}/events`);
  expect(stream.status()).toBe(404);
  await other.close();

  // The owner still sees it.
  expect((await page.goto(url))?.status()).toBe(200);
});
