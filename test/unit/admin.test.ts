/** The admin page's pure parts: the token check and its limits, sessions, posted values, recent errors. */
import { describe, expect, it } from "vitest";
import {
  AdminAuth,
  LOGIN_FAILURES_ALLOWED,
  LOGIN_WINDOW_MS,
  MAX_SESSIONS,
  SESSION_TTL_MS,
  cookieValue,
} from "../../src/http/admin-auth.js";
import { formValues } from "../../src/http/admin.js";
import { esc } from "../../src/http/admin-html.js";
import { RECENT_ERRORS_KEPT, RecentErrors } from "../../src/http/recent-errors.js";
import type { Form } from "../../src/adapter.js";
import { adapterSchemas } from "../../src/compose.js";
import { ConfigError, MIN_ADMIN_TOKEN_CHARS, parseConfig } from "../../src/config/load.js";

describe("admin token and sessions", () => {
  it("accepts only the exact token", () => {
    const auth = new AdminAuth("correct-horse-battery");
    expect(auth.checkToken("correct-horse-battery")).toBe(true);
    for (const wrong of ["", "correct-horse-batter", "correct-horse-battery ", "CORRECT-HORSE-BATTERY"])
      expect(auth.checkToken(wrong)).toBe(false);
  });

  it("blocks an address after the allowed failures until the window ends, others unaffected", () => {
    let now = 1_000_000;
    const auth = new AdminAuth("t".repeat(20), () => now);
    for (let i = 0; i < LOGIN_FAILURES_ALLOWED - 1; i++) auth.recordFailure("192.0.2.1");
    expect(auth.isBlocked("192.0.2.1")).toBe(false);
    auth.recordFailure("192.0.2.1");
    expect(auth.isBlocked("192.0.2.1")).toBe(true);
    expect(auth.isBlocked("192.0.2.2")).toBe(false);
    now += LOGIN_WINDOW_MS;
    expect(auth.isBlocked("192.0.2.1")).toBe(false);
  });

  it("ends sessions after their lifetime and keeps at most MAX_SESSIONS", () => {
    let now = 0;
    const auth = new AdminAuth("t".repeat(20), () => now);
    const first = auth.createSession();
    expect(auth.session(first.id)?.csrf).toBe(first.session.csrf);
    expect(auth.session("made-up")).toBeUndefined();
    now = SESSION_TTL_MS;
    expect(auth.session(first.id)).toBeUndefined();
    const ids = Array.from({ length: MAX_SESSIONS + 1 }, () => auth.createSession().id);
    expect(auth.session(ids[0])).toBeUndefined();
    expect(auth.session(ids.at(-1))).toBeDefined();
    auth.endSession(ids.at(-1));
    expect(auth.session(ids.at(-1))).toBeUndefined();
  });

  it("reads the session cookie among others", () => {
    expect(cookieValue("a=1; xgw_admin=abc; b=2", "xgw_admin")).toBe("abc");
    expect(cookieValue("xgw_admin_x=1", "xgw_admin")).toBeUndefined();
    expect(cookieValue(undefined, "xgw_admin")).toBeUndefined();
  });
});

describe("posted form values", () => {
  const form: Form = {
    fields: [
      { var: "jid", type: "jid-single", required: true },
      { var: "notify", type: "boolean" },
      { var: "lines", type: "text-multi" },
    ],
  };

  it("maps HTML fields onto the command's form", () => {
    expect(formValues(form, { csrf: "x", jid: "a@b", lines: "one\r\ntwo\n\n" })).toEqual({
      jid: "a@b",
      lines: ["one", "two"],
      notify: "false",
    });
    expect(formValues(form, { jid: "a@b", notify: "true" })).toMatchObject({ notify: "true" });
  });

  it.each([
    [{ other: "1" }, /no field "other"/],
    [{ jid: "x".repeat(1025) }, /longer than/],
    [{ jid: ["a@b", "c@d"] }, /takes one value/],
    [{ jid: { nested: true } }, /must be text/],
  ])("refuses %j", (body, why) => {
    expect(() => formValues(form, body as Record<string, unknown>)).toThrow(why);
  });
});

describe("recent errors", () => {
  it("keeps warnings and errors with known fields only, newest first, bounded", () => {
    const recent = new RecentErrors(3);
    recent.record(30, { adapter: "sms" }, "info is not kept");
    recent.record(
      40,
      { adapter: "sms", body: "secret text", authToken: "tok", err: new Error("boom") },
      "one",
    );
    recent.record(50, { domain: "sms.example.org" }, "two");
    recent.record(40, {}, "three");
    recent.record(60, {}, "four");
    const list = recent.list();
    expect(list.map((e) => e.message)).toEqual(["four", "three", "two"]);
    expect(list.map((e) => e.level)).toEqual(["fatal", "warn", "error"]);
    expect(JSON.stringify(new RecentErrors().list())).toBe("[]");
    const kept = new RecentErrors();
    kept.record(40, { adapter: "sms", body: "secret text", authToken: "tok", err: new Error("boom") }, "x");
    expect(kept.list()[0]?.fields).toEqual({ adapter: "sms", err: "boom" });
    expect(RECENT_ERRORS_KEPT).toBeGreaterThan(0);
  });
});

describe("HTML escaping", () => {
  it("escapes markup and quotes", () => {
    expect(esc(`<script>"x"&'y'</script>`)).toBe(
      "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;",
    );
  });
});

describe("admin page configuration", () => {
  const raw = {
    xmpp: { serverDomains: ["localhost"] },
    http: { admin: { tokenEnv: "GW_ADMIN" } },
    adapters: { echo: { domain: "echo.localhost", secretEnv: "GW_ECHO" } },
  };
  const load = (env: Record<string, string>) => parseConfig("t.json", raw, adapterSchemas, env);

  it("reads the token from the named variable, and refuses a missing or short one", () => {
    expect(load({ GW_ECHO: "s", GW_ADMIN: "a".repeat(MIN_ADMIN_TOKEN_CHARS) }).adminToken).toBe(
      "a".repeat(MIN_ADMIN_TOKEN_CHARS),
    );
    expect(() => load({ GW_ECHO: "s" })).toThrow(ConfigError);
    try {
      load({ GW_ECHO: "s", GW_ADMIN: "short" });
    } catch (err) {
      expect((err as ConfigError).problems).toEqual([expect.stringContaining("http.admin.tokenEnv")]);
    }
    expect.assertions(3);
  });
});
