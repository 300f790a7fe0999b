/**
 * The admin page in a real browser (Debian's chromium, driven by playwright-core): a wrong token sees
 * nothing, the right one sees the live state, and an action run from the page changes what the page shows.
 */
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureDebianPackages } from "../bed/apt.js";
import { registration, TestUser } from "../support/client.js";
import { sharedBed, startTestGateway, takeSlot, type TestGateway } from "../support/gateway.js";

const CHROMIUM = "/usr/bin/chromium";
const ADMIN_TOKEN = "browser-admin-token-0123456789";
/** Installing chromium from Debian on a fresh machine takes a while. */
const INSTALL_TIMEOUT_MS = 600_000;

describe("admin page in a browser", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let gw: TestGateway;
  let browser: Browser;
  let base: string;
  let domain: string;
  const users: TestUser[] = [];

  beforeAll(async () => {
    await ensureDebianPackages([{ bin: CHROMIUM, pkg: "chromium" }]);
    const slot = await takeSlot(bed);
    gw = await startTestGateway({
      peer,
      redisUrl: bed.redis!.url,
      slot,
      admins: [`boss-browser-${slot}@${peer.host}`],
      http: { admin: { tokenEnv: "TEST_ADMIN_TOKEN" } },
      env: { TEST_ADMIN_TOKEN: ADMIN_TOKEN },
    });
    domain = gw.domain;
    base = `http://127.0.0.1:${gw.gateway.http!.privatePort}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        ...(process.getuid?.() === 0 ? ["--no-sandbox"] : []),
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        "--no-first-run",
        "--metrics-recording-only",
      ],
    });
  }, INSTALL_TIMEOUT_MS);

  afterAll(async () => {
    await browser?.close();
    await Promise.all(users.map((u) => u.stop()));
    await gw?.stop();
  });

  async function freshPage(): Promise<Page> {
    const context = await browser.newContext();
    return context.newPage();
  }

  async function logIn(page: Page, token: string) {
    await page.goto(`${base}/admin`);
    await page.getByLabel("Admin token").fill(token);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForLoadState();
  }

  const echoRow = (page: Page) => page.locator('tr[data-adapter="echo"]');

  it("shows a wrong token nothing but the login form", async () => {
    const page = await freshPage();
    const first = await page.goto(`${base}/admin`);
    expect(first?.status()).toBe(401);
    await logIn(page, "not-the-token");
    await expect.poll(() => page.getByRole("alert").textContent()).toContain("Wrong token");
    const html = await page.content();
    expect(html).not.toContain(domain);
    expect(await page.locator("#adapters").count()).toBe(0);
    const api = await page.goto(`${base}/admin/api/status`);
    expect(api?.status()).toBe(401);
    await page.context().close();
  });

  it("logs in, shows the live state, and removes a user's registration from the page", async () => {
    const page = await freshPage();
    await logIn(page, ADMIN_TOKEN);
    await expect.poll(() => page.locator("#readiness").textContent()).toBe("Ready");
    await expect.poll(() => echoRow(page).locator("[data-stream]").textContent()).toBe("online");
    expect(await echoRow(page).locator("[data-users]").textContent()).toBe("0");

    // A user registers over XMPP: the page shows it on the next load.
    const dave = await TestUser.login(peer, `dave-browser-${domain.split(".")[0]}`);
    users.push(dave);
    expect((await dave.iq("set", domain, registration({ nick: "dave" }))).attrs.type).toBe("result");
    await page.reload();
    expect(await echoRow(page).locator("[data-users]").textContent()).toBe("1");

    // The action: the core's "remove a user's registration" command, as a form.
    await page.getByRole("link", { name: "Remove a user's registration" }).click();
    await page.getByLabel("User (bare JID)").fill(dave.bare);
    await page.getByRole("button", { name: "Run" }).click();
    await expect
      .poll(() => page.getByRole("status").textContent())
      .toContain(`${dave.bare} is no longer registered`);
    expect(await gw.gateway.services.get("echo")!.ctx.registrations.get(dave.bare)).toBeNull();
    // XEP-0100 §4.3: the user is told the gateway is gone.
    await dave.waitFor((el) => el.name === "presence" && el.attrs.type === "unsubscribe");

    await page.getByRole("link", { name: "← Status" }).click();
    expect(await echoRow(page).locator("[data-users]").textContent()).toBe("0");

    // Another action: a test message from the gateway reaches the user.
    await page.getByRole("link", { name: "Send a test message" }).click();
    await page.getByLabel("To (JID)").fill(dave.bare);
    await page.getByLabel("Text").fill("hello from the admin page");
    await page.getByRole("button", { name: "Run" }).click();
    await expect.poll(() => page.getByRole("status").textContent()).toContain("is queued");
    const message = await dave.waitFor((el) => el.getChildText("body") === "hello from the admin page");
    expect(message.attrs.from).toBe(domain);

    // Logged out, the page shows nothing again.
    await page.getByRole("link", { name: "← Status" }).click();
    await page.getByRole("button", { name: "Log out" }).click();
    await page.waitForLoadState();
    expect(await page.locator("#adapters").count()).toBe(0);
    expect(await page.content()).not.toContain(domain);
    await page.context().close();
  });
});
