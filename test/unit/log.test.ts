import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/log.js";

describe("logs", () => {
  it("never show secrets, at any depth the gateway logs them", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "debug", destination: { write: (l: string) => void lines.push(l) } });
    log.info(
      { secret: "s1", password: "p1", token: "t1", adapter: { secret: "s2", twilio: { authToken: "t2" } } },
      "x",
    );
    log.child({ adapter: "sms" }).warn({ config: { password: "p2" } }, "y");
    const text = lines.join("");
    for (const secret of ["s1", "p1", "t1", "s2", "t2", "p2"]) expect(text).not.toContain(`"${secret}"`);
    expect(text).toContain("[redacted]");
  });

  it("keep message bodies out of info-level logs", () => {
    const lines: string[] = [];
    const log = createLogger({ level: "info", destination: { write: (l: string) => void lines.push(l) } });
    log.debug({ body: "private words" }, "outbound message");
    expect(lines.join("")).not.toContain("private words");
  });
});
