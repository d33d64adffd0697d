import { test, expect, type Page } from "@playwright/test";
import { readFileSync } from "node:fs";

// Two nodes on one PostgreSQL behind nginx (round-robin), started by
// scripts/test with scripts/cluster; E2E_CLUSTER_URL is nginx's address,
// E2E_CLUSTER_LOG its access log (which names the node that served each
// request). Each request may be served by either node: the page, the job
// list's stream, the job's stream, the start and the cancel.
const cluster = process.env.E2E_CLUSTER_URL;
const accessLog = process.env.E2E_CLUSTER_LOG ?? "";
if (!cluster && process.env.CI) {
  throw new Error("E2E_CLUSTER_URL is not set: CI runs the cluster tests (scripts/test starts it)");
}
test.skip(!cluster, "no cluster: set E2E_CLUSTER_URL (scripts/test does)");
test.use({ baseURL: cluster });

/** Opens a page and waits until the WebAssembly app has hydrated it. */
async function open(page: Page, path: string) {
  await page.goto(path);
  await expect(page.locator("main")).toHaveAttribute("data-hydrated", "true");
}

function output(page: Page) {
  return page.getByRole("list", { name: "Job output" }).getByRole("listitem");
}

function row(page: Page, id: string) {
  return page.getByRole("table", { name: "Your jobs" }).locator(`tr[data-job="${id}"]`);
}

/** The nodes that served the requests for the job `id` (its page, its
 * stream, its cancel), from nginx's access log. */
function servedBy(id: string): Set<string> {
  const nodes = new Set<string>();
  for (const line of readFileSync(accessLog, "utf8").split("\n")) {
    const node = / node=(\S+)/.exec(line);
    if (line.includes(id) && node) nodes.add(node[1]);
  }
  return nodes;
}

async function startJob(page: Page, params: object): Promise<string> {
  const response = await page.request.post("/api/jobs", { data: { kind: "demo", params } });
  expect(response.status()).toBe(201);
  return (await response.json()).id;
}

test("the job list and the job page work whichever node serves each request", async ({ page }) => {
  await open(page, "/");
  const id = await startJob(page, { steps: 6, interval_ms: 400 });
  // The list's stream is on one node; the job runs on either.
  await expect(row(page, id).locator("td.state")).toHaveText("running");
  await expect(row(page, id).locator("td.state")).toHaveText("succeeded");
  await expect(row(page, id).locator("td.progress")).toHaveText("100%");

  // The job page, loaded again and again: every load may be the other
  // node; each shows the whole output, once.
  for (let i = 0; i < 4; i++) {
    await open(page, `/jobs/${id}`);
    await expect(page.getByRole("status")).toHaveText("succeeded");
    await expect(output(page)).toHaveCount(6);
    await expect(output(page).last()).toHaveText("finish 6: ...(guest)");
  }
  const nodes = servedBy(id);
  expect(nodes.size, `served by ${[...nodes].join(", ")}`).toBe(2);
});

test("a job streams live and is cancelled through whichever node", async ({ page }) => {
  await open(page, "/");
  const id = await startJob(page, { steps: 100, interval_ms: 300 });
  await open(page, `/jobs/${id}`);
  await expect(page.getByRole("status")).toHaveText("running");
  await expect(output(page).nth(2)).toBeVisible();
  await page.getByRole("button", { name: "Cancel" }).click();
  await expect(page.getByRole("status")).toHaveText("cancelled");
  const shown = await output(page).count();
  expect(shown).toBeLessThan(100);
  // Each line once, in order.
  const texts = await output(page).allTextContents();
  expect(texts).toEqual(texts.map((_, i) => `finish ${i + 1}: ...(guest)`));

  await open(page, "/");
  await expect(row(page, id).locator("td.state")).toHaveText("cancelled");
  await open(page, `/jobs/${id}`);
  await expect(page.getByRole("status")).toHaveText("cancelled");
  const nodes = servedBy(id);
  expect(nodes.size, `served by ${[...nodes].join(", ")}`).toBe(2);
});
