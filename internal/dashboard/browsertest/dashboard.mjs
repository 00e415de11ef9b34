// The dashboard in a real browser: playwright-core driving Debian's
// chromium. internal/server's TestDashboardBrowser starts a real server,
// agent and releases, then runs this script with:
//   RUNWAY_BASE       the server's URL
//   RUNWAY_LOGIN      a one-time login link of admin (runway dashboard)
//   RUNWAY_RO_TOKEN   an API token of a read_only user
//   RUNWAY_HALT       a release in progress, to halt
//   RUNWAY_SHOTS      where screenshots go (docs/screenshots)
//   RUNWAY_UPDATE     "1": write the screenshots and their layouts anew
//   CHROMIUM          the browser (default /usr/bin/chromium)
// It prints one line per step and exits non-zero on the first failure; it
// never prints the login link or a token.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import assert from "node:assert/strict";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const base = env("RUNWAY_BASE");
const shots = env("RUNWAY_SHOTS");
const update = process.env.RUNWAY_UPDATE === "1";
const step = (s) => console.log(`step: ${s}`);

// Playwright gives the browser a fresh user data dir of its own, and
// --headless (headless: true).
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const failures = [];
let current = null; // the page in use, for a failure's report
try {
  await run();
} catch (e) {
  failures.push(e);
  if (current) {
    console.error(`at ${current.url().replace(/code=rwy_[0-9a-f]+/, "code=…")}:`);
    console.error((await current.textContent("body").catch(() => "")).replace(/\s+/g, " ").slice(0, 2000));
  }
} finally {
  await browser.close();
}
if (failures.length) {
  console.error(String(failures[0].stack || failures[0]).replaceAll(/rwy_[0-9a-f]+/g, "rwy_…"));
  process.exit(1);
}
console.log("ok");

// layout is what a loose comparison of a page keeps: the viewport-relative
// boxes of its landmarks (header, headings, tables, forms, buttons),
// rounded, in document order. Text, times and ids do not matter.
async function layout(page) {
  return page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll("header, h1, h2, table, form, button, .bar, .timeline, .card")) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      out.push({ tag: el.tagName.toLowerCase() + (el.className ? "." + String(el.className).split(" ")[0] : ""), x: Math.round(r.x), y: Math.round(r.y), w: Math.round(r.width), h: Math.round(r.height) });
    }
    return out;
  });
}

// shoot saves the page's screenshot and compares its layout with the one
// committed beside it: the same landmarks in the same order, each where it
// was within a tolerance (rows added by other data move things a little).
async function shoot(page, name) {
  const png = path.join(shots, `${name}.png`);
  const lay = path.join(shots, `${name}.layout.json`);
  const got = await layout(page);
  await page.screenshot({ path: update ? png : path.join(os.tmpdir(), `runway-${name}-${process.pid}.png`), fullPage: false });
  if (update || !fs.existsSync(lay)) {
    fs.writeFileSync(lay, JSON.stringify(got, null, 1) + "\n");
    step(`screenshot ${name} written`);
    return;
  }
  const want = JSON.parse(fs.readFileSync(lay, "utf8"));
  const tags = (l) => l.map((e) => e.tag).join(" ");
  // The same kinds of landmark, in order, allowing rows of data to differ
  // in number: compare the distinct sequence.
  const squash = (l) => tags(l).split(" ").filter((t, i, a) => t !== a[i - 1]).join(" ");
  assert.equal(squash(got), squash(want), `${name}: the page's landmarks changed (RUNWAY_UPDATE=1 to accept)`);
  // The k-th landmark of a kind is compared with the k-th of that kind.
  const nth = (l) => { const seen = {}; return l.map((e) => ({ ...e, k: `${e.tag}#${(seen[e.tag] = (seen[e.tag] || 0) + 1)}` })); };
  const gotN = nth(got);
  for (const w of nth(want)) {
    const g = gotN.find((e) => e.k === w.k);
    if (!g) continue;
    const tol = 40;
    assert.ok(Math.abs(g.x - w.x) <= tol && Math.abs(g.w - w.w) <= Math.max(tol, w.w * 0.25),
      `${name}: ${w.k} moved from x=${w.x} w=${w.w} to x=${g.x} w=${g.w} (RUNWAY_UPDATE=1 to accept)`);
  }
  step(`screenshot ${name} matches its layout`);
}

async function run() {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  current = page;
  page.setDefaultTimeout(60000);

  step("log in with the one-time link");
  await page.goto(env("RUNWAY_LOGIN"));
  await page.click("#login-continue");
  await page.waitForURL(`${base}/ui/`);
  assert.match(await page.textContent("#whoami"), /^admin \(global_admin\)/);
  const cookies = await ctx.cookies();
  const sc = cookies.find((c) => c.name === "runway_session");
  assert.ok(sc && sc.httpOnly && sc.sameSite === "Strict" && sc.path === "/ui/", "the session cookie is HttpOnly, SameSite=Strict, Path=/ui/");
  assert.equal(await page.evaluate(() => document.cookie), "", "the page's script cannot read the session cookie");
  await shoot(page, "projects");

  step("the environment: services with traffic split, health and figures");
  await page.click("text=dev");
  await page.waitForSelector("table.services");
  assert.ok(await page.locator("table.services a", { hasText: "hello" }).count() === 1);
  await shoot(page, "environment");

  step("a rollback, watched live to Success");
  await page.click("table.services a >> text=hello");
  await page.waitForSelector("table.releases");
  await shoot(page, "service");
  const rows = page.locator("table.releases tbody tr");
  const n = await rows.count();
  // The oldest Success release: roll back to it.
  await rows.nth(n - 1).locator("button[data-action=rollback]").click();
  await page.waitForSelector("#question");
  assert.match(await page.textContent("#question"), /^Roll back hello in dev of e2e to release /);
  await page.click("#confirm");
  await page.waitForURL(/\/ui\/r\/[0-9A-Z]{26}$/);
  // Live: the timeline grows on this page (no navigation), then the page
  // reloads into the final state.
  let navigations = 0;
  page.on("framenavigated", (f) => { if (f === page.mainFrame()) navigations++; });
  const before = await page.locator(".timeline li").count();
  const state0 = await page.textContent("#release-state");
  if (state0 !== "Success") {
    await page.waitForFunction((b) => document.querySelectorAll(".timeline li").length > b || document.querySelector("#release-state").textContent === "Success", before);
    assert.equal(navigations, 0, "the timeline changed without reloading the page");
  }
  // The page as reloaded after "done": no live stream any more.
  await page.waitForSelector("#timeline:not([data-live])");
  assert.equal(await page.textContent("#release-state"), "Success");
  await shoot(page, "release");

  step("halt a release in progress: it ends FailureClean, live");
  await page.goto(`${base}/ui/r/${env("RUNWAY_HALT")}`);
  await page.waitForSelector("#halt-form");
  assert.notEqual(await page.textContent("#release-state"), "FailureClean");
  await page.fill("#halt-form input[name=reason]", "halted in the browser test");
  await page.click("#halt-form button");
  await page.click("#confirm");
  await page.waitForURL(`${base}/ui/r/${env("RUNWAY_HALT")}`);
  await page.waitForFunction(() => document.querySelector("#release-state")?.textContent === "FailureClean", null, { timeout: 90000 });
  await page.waitForSelector("#timeline:not([data-live])");
  assert.match(await page.textContent(".state"), /Halted/);

  step("maintenance on, then off");
  await page.goto(`${base}/ui/p/e2e/e/dev/s/hello/`);
  await page.fill("#maintenance-form input[name=message]", "back soon");
  await page.click("button[data-action=maintenance-on]");
  await page.click("#confirm");
  await page.waitForSelector("#maintenance");
  assert.match(await page.textContent("#maintenance"), /back soon/);
  await page.click("button[data-action=maintenance-off]");
  await page.click("#confirm");
  await page.waitForSelector("#maintenance-form");

  step("logs, followed and filtered");
  await page.goto(`${base}/ui/p/e2e/e/dev/s/hello/logs?follow=1`);
  await page.waitForSelector("table.logs.live");
  await shoot(page, "logs");
  await page.goto(`${base}/ui/p/e2e/e/dev/s/hello/logs?filter=no-such-line-anywhere`);
  assert.match(await page.textContent("#no-lines"), /No line matches/);

  step("alarms, secrets and the audit log");
  await page.goto(`${base}/ui/p/e2e/e/dev/alarms`);
  await page.waitForSelector("table.alarms");
  await page.goto(`${base}/ui/p/e2e/e/dev/secrets`);
  await page.waitForSelector("table.secrets");
  await page.goto(`${base}/ui/audit`);
  await page.waitForSelector("table.audit");
  assert.ok((await page.textContent("table.audit")).includes("release.rollback"), "the dashboard's rollback is in the audit log");
  await shoot(page, "audit");

  step("read_only: no action buttons, and the server refuses a direct POST");
  const ro = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const rp = await ro.newPage();
  current = rp;
  await rp.goto(`${base}/ui/login`);
  await rp.fill("input[name=token]", env("RUNWAY_RO_TOKEN"));
  await rp.click("#token-form button");
  await rp.waitForURL(`${base}/ui/`);
  await rp.goto(`${base}/ui/p/e2e/e/dev/s/hello/`);
  await rp.waitForSelector("table.releases");
  assert.equal(await rp.locator("button[data-action]").count(), 0, "read_only sees no action button (rollback, halt, maintenance)");
  const csrf = await rp.getAttribute("input[name=csrf]", "value");
  const res = await rp.request.post(`${base}/ui/actions/rollback`, {
    headers: { Origin: base },
    form: { csrf, project: "e2e", environment: "dev", service: "hello", confirm: "yes" },
  });
  assert.equal(res.status(), 403, "the server refuses read_only's rollback");
  assert.match(await res.text(), /forbidden: release\.rollback/);
  await ro.close();

  step("JavaScript off: the pages still read");
  const nojs = await browser.newContext({ javaScriptEnabled: false });
  const np = await nojs.newPage();
  current = np;
  await np.goto(`${base}/ui/login`);
  await np.fill("input[name=token]", env("RUNWAY_RO_TOKEN"));
  await np.click("#token-form button");
  await np.waitForURL(`${base}/ui/`);
  await np.goto(`${base}/ui/p/e2e/e/dev/s/hello/`);
  assert.ok(await np.locator("table.releases tbody tr").count() > 0);
  await nojs.close();
  await ctx.close();
}
