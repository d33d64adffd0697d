import { test, expect, type Page } from "@playwright/test";

const STREAM = /\/api\/jobs\/[^/]+\/events/;
// The second test server (see playwright.config.ts): streams live 2 s.
const SHORT_LIVED = `http://127.0.0.1:${Number(process.env.E2E_PORT ?? 3100) + 1}`;

async function hydrated(page: Page) {
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
}

function output(page: Page) {
  return page.getByRole("list", { name: "Job output" }).getByRole("listitem");
}

test("a stream the server cuts mid-job resumes, and every message shows exactly once, in order", async ({ page }) => {
  const streamRequests: string[] = [];
  page.on("request", (r) => {
    if (STREAM.test(r.url())) streamRequests.push(r.url());
  });
  await page.goto(`${SHORT_LIVED}/`);
  await hydrated(page);
  const created = await page.request.post(`${SHORT_LIVED}/api/jobs`, {
    data: { kind: "demo", params: { steps: 8, interval_ms: 600 } },
  });
  expect(created.status()).toBe(201);
  await page.goto(`${SHORT_LIVED}${(await created.json()).url}`);
  await hydrated(page);

  await expect(page.getByRole("status")).toHaveText("succeeded", { timeout: 20_000 });
  await expect(output(page)).toHaveText([1, 2, 3, 4, 5, 6, 7, 8].map((i) => `finish ${i}: ...(guest)`));
  // The job ran about 4.2 s and each stream lived 2 s: the browser had to
  // reconnect (with Last-Event-ID) at least once.
  expect(streamRequests.length).toBeGreaterThanOrEqual(2);
});

test("the same job open in two pages shows the same output", async ({ context }) => {
  const first = await context.newPage();
  await first.goto("/");
  await hydrated(first);
  const created = await first.request.post("/api/jobs", {
    data: { kind: "echo", params: { messages: ["one", "two\nlines", "three", "four"], interval_ms: 400 } },
  });
  const url = (await created.json()).url;
  await first.goto(url);
  await hydrated(first);
  const second = await context.newPage();
  await second.goto(url);
  await hydrated(second);

  const expected = ["one", "two\nlines", "three", "four"];
  for (const page of [first, second]) {
    await expect(page.getByRole("status")).toHaveText("succeeded");
    await expect(output(page)).toHaveText(expected);
  }
});
