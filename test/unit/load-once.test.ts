import { describe, expect, it } from "vitest";
import { loadOnce } from "../../src/load-once.js";

describe("loadOnce", () => {
  it("loads once, however often and however concurrently it is asked", async () => {
    let loads = 0;
    const twilio = loadOnce(() => Promise.resolve({ n: ++loads }));
    const first = await Promise.all([twilio(), twilio()]);
    const later = await twilio();
    expect(loads).toBe(1);
    expect(later).toBe(first[0]);
    expect(first[1]).toBe(first[0]);
  });

  it("tries again after a failed load, and then keeps what it got", async () => {
    let loads = 0;
    const lib = loadOnce(() =>
      ++loads === 1 ? Promise.reject(new Error("ENOENT")) : Promise.resolve("module"),
    );
    await expect(lib()).rejects.toThrow("ENOENT");
    expect(await lib()).toBe("module");
    expect(await lib()).toBe("module");
    expect(loads).toBe(2);
  });
});
