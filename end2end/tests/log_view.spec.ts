import { test, expect, type Page, type Locator } from "@playwright/test";

// The job page as a log view: the newest lines server-rendered, older
// pages on demand, live lines followed, the whole output downloadable.
// The `log` kind writes `line N of TOTAL`, every 10th line green and every
// 25th bold red.

/** Opens a page and waits until the WebAssembly app has hydrated it. */
async function open(page: Page, path: string) {
  await page.goto(path);
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
}

/** Starts a job through the API with the page's session; returns its id. */
async function startJob(page: Page, kind: string, params: object): Promise<string> {
  const response = await page.request.post("/api/jobs", { data: { kind, params } });
  expect(response.status()).toBe(201);
  return (await response.json()).id;
}

/** Waits until job `id` has written its `total`th line. */
async function waitForLines(page: Page, id: string, total: number) {
  await expect
    .poll(
      async () => {
        const page_ = await (await page.request.get(`/api/jobs/${id}/lines?limit=1`)).json();
        return page_.lines.at(-1)?.n ?? 0;
      },
      { timeout: 30_000 },
    )
    .toBe(total);
}

function list(page: Page): Locator {
  return page.getByRole("list", { name: "Job output" });
}

function rows(page: Page): Locator {
  return list(page).getByRole("listitem");
}

async function firstN(page: Page): Promise<number> {
  return Number(await rows(page).first().getAttribute("data-n"));
}

/** Whether `row` is in view inside the list's scroll box. */
async function shownInList(row: Locator): Promise<boolean> {
  return row.evaluate((el) => {
    const r = el.getBoundingClientRect();
    const box = el.parentElement!.getBoundingClientRect();
    return r.height > 0 && r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
  });
}

/** Pixels between the end of the list's content and the end of its box. */
async function distanceFromEnd(page: Page): Promise<number> {
  return list(page).evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight);
}

test("a 30,000-line job shows its newest lines, pages back to line 1, and downloads whole", async ({ page }) => {
  const pages: string[] = [];
  page.on("request", (r) => {
    if (/\/api\/jobs\/[^/]+\/lines/.test(r.url())) pages.push(r.url());
  });
  await open(page, "/");
  const id = await startJob(page, "log", { lines: 30_000, rate: 0 });
  await waitForLines(page, id, 30_000);
  await open(page, `/jobs/${id}`);
  await expect(page.getByRole("status")).toHaveText("succeeded");

  // Server-rendered: the newest 500 lines, the last one in view.
  await expect(rows(page)).toHaveCount(500);
  await expect(rows(page).last()).toHaveText("line 30000 of 30000");
  await expect.poll(() => shownInList(rows(page).last())).toBe(true);
  expect(await firstN(page)).toBe(29_501);
  // They came with the page: hydration kept them, nothing was fetched.
  expect(pages.filter((u) => !u.includes("limit=1&") && !u.endsWith("limit=1"))).toHaveLength(0);
  // The rows travel once: in the HTML, not again in the hydration data.
  const html = await (await page.request.get(`/jobs/${id}`)).text();
  expect(html.split("line 29999 of 30000").length - 1).toBe(1);

  const earlier = page.getByRole("button", { name: "Load earlier" });
  const latest = page.getByRole("button", { name: "Jump to latest" });
  await expect(latest).toBeHidden();
  for (let clicks = 0; await earlier.isVisible(); clicks++) {
    expect(clicks).toBeLessThan(60);
    const before = await firstN(page);
    await earlier.click();
    await expect.poll(() => firstN(page)).toBeLessThan(before);
    // Never more than 5,000 rows in the page.
    expect(await rows(page).count()).toBeLessThanOrEqual(5_000);
  }
  await expect(rows(page).first()).toHaveText("line 1 of 30000");
  expect(await firstN(page)).toBe(1);
  await expect(page.getByText("This is the start of the output.")).toBeVisible();
  // Pages of 500, each before the first row shown.
  expect(pages.filter((u) => u.includes("before=")).length).toBe(59);

  // The rows no longer reach the newest line: "Jump to latest" brings it back.
  await expect(latest).toBeVisible();
  await latest.click();
  await expect(rows(page).last()).toHaveText("line 30000 of 30000");
  await expect.poll(() => shownInList(rows(page).last())).toBe(true);
  await expect(latest).toBeHidden();

  const download = page.getByRole("link", { name: "Download output" });
  await expect(download).toHaveAttribute("href", `/api/jobs/${id}/output`);
  await expect(download).toHaveAttribute("download", /.*/);
  const response = await page.request.get(`/api/jobs/${id}/output`);
  expect(response.status()).toBe(200);
  const lines = (await response.text()).split("\n").filter((l) => l !== "");
  expect(lines).toHaveLength(30_000);
  expect(lines[0]).toContain("line 1 of 30000");
  expect(lines[29_999]).toContain("line 30000 of 30000");
});

test("colours show as colours, in server-rendered and in live rows", async ({ page }) => {
  await open(page, "/");
  const id = await startJob(page, "log", { lines: 40, rate: 10 });
  await open(page, `/jobs/${id}`);

  // Live rows (the job writes ten a second).
  const check = async () => {
    const green = list(page).locator('li[data-n="10"] span');
    await expect(green).toHaveClass("fg-2");
    await expect(green).toHaveText("line 10 of 40");
    await expect(green).toHaveCSS("color", "rgb(26, 127, 55)");
    const red = list(page).locator('li[data-n="25"] span');
    await expect(red).toHaveClass("fg-1 bold");
    await expect(red).toHaveCSS("font-weight", "700");
    await expect(red).toHaveCSS("color", "rgb(192, 38, 45)");
    // A plain row has no span and the page's own colour.
    await expect(list(page).locator('li[data-n="11"] span')).toHaveCount(0);
    // No escape codes are left in the text.
    await expect(list(page).locator('li[data-n="10"]')).toHaveText("line 10 of 40");
  };
  await check();
  await expect(page.getByRole("status")).toHaveText("succeeded");
  // The facts: the params it was started with, and how long it ran.
  await expect(page.locator("dl.params")).toContainText("Lines");
  await expect(page.locator("dl.params")).toContainText("40");
  await expect(page.locator("dl.times")).toContainText(/Duration\s*\d+ s/);

  // The same rows rendered by the server.
  await page.reload();
  await check();
});

test("follow mode: scrolling up stops following, Jump to latest resumes it", async ({ page }) => {
  await open(page, "/");
  const id = await startJob(page, "log", { lines: 3_000, rate: 200 });
  await open(page, `/jobs/${id}`);
  const latest = page.getByRole("button", { name: "Jump to latest" });

  // Enough lines to scroll, and the view keeps to the end as they come.
  await expect.poll(() => rows(page).count()).toBeGreaterThan(200);
  await expect.poll(() => distanceFromEnd(page)).toBeLessThan(10);
  await expect(latest).toBeHidden();

  // Scroll up: following stops, the view stays where the reader put it.
  await list(page).hover();
  await page.mouse.wheel(0, -3_000);
  await expect(latest).toBeVisible();
  const top = await list(page).evaluate((el) => el.scrollTop);
  const count = await rows(page).count();
  await expect.poll(() => rows(page).count()).toBeGreaterThan(count + 50);
  expect(await list(page).evaluate((el) => el.scrollTop)).toBe(top);
  expect(await distanceFromEnd(page)).toBeGreaterThan(100);

  // Jump to latest: at the end again, and following.
  await latest.click();
  await expect(latest).toBeHidden();
  expect(await distanceFromEnd(page)).toBeLessThan(10);
  const last = Number(await rows(page).last().getAttribute("data-n"));
  await expect.poll(async () => Number(await rows(page).last().getAttribute("data-n"))).toBeGreaterThan(last + 50);
  expect(await distanceFromEnd(page)).toBeLessThan(10);
  await expect.poll(() => shownInList(rows(page).last())).toBe(true);
});

test("a job writing 10,000 lines a second is followed live to its end", async ({ page }) => {
  await open(page, "/");
  const id = await startJob(page, "log", { lines: 50_000, rate: 10_000 });
  await open(page, `/jobs/${id}`);

  // While it runs the page holds at most 5,000 rows.
  await expect.poll(async () => (await firstN(page)) > 1, { timeout: 20_000 }).toBe(true);
  expect(await rows(page).count()).toBeLessThanOrEqual(5_000);

  await expect(rows(page).last()).toHaveText("line 50000 of 50000", { timeout: 30_000 });
  await expect.poll(() => shownInList(rows(page).last())).toBe(true);
  expect(await rows(page).count()).toBeLessThanOrEqual(5_000);
  expect(await distanceFromEnd(page)).toBeLessThan(10);
  await expect(page.getByRole("button", { name: "Jump to latest" })).toBeHidden();
  // Live rows are numbered on from the server's count.
  await expect(rows(page).last()).toHaveAttribute("data-n", "50000");
  await expect(page.getByRole("status")).toHaveText("succeeded");
});

test("reached by client-side navigation, the page fetches its rows", async ({ page }) => {
  await open(page, "/");
  const id = await startJob(page, "log", { lines: 600, rate: 0 });
  await waitForLines(page, id, 600);
  // The job list links to it; the router renders the page in the browser.
  const link = page.getByRole("table", { name: "Your jobs" }).locator(`tr[data-job="${id}"] a`).first();
  await link.click();
  await expect(page).toHaveURL(new RegExp(`/jobs/${id}$`));
  await expect(rows(page)).toHaveCount(500);
  await expect(rows(page).last()).toHaveText("line 600 of 600");
  expect(await firstN(page)).toBe(101);
  await page.getByRole("button", { name: "Load earlier" }).click();
  await expect(rows(page)).toHaveCount(600);
  await expect(rows(page).first()).toHaveText("line 1 of 600");
  await expect(page.getByRole("button", { name: "Load earlier" })).toBeHidden();
});
