/** echo-message: a room message is reflected once all its lines came back, a one-line one with its archive id. */
import { describe, expect, it } from "vitest";
import { Echoes } from "./echoes.js";

function pending(lines: number) {
  const reflected: (Promise<string | undefined> | undefined)[] = [];
  return {
    reflected,
    echo: {
      channel: "#Chat",
      lines,
      reflect: (a?: Promise<string | undefined>) => void reflected.push(a),
      refuse: () => undefined,
    },
  };
}

describe("echoes", () => {
  it("reflects a one-line message with the archive id of its echo", async () => {
    const echoes = new Echoes();
    const one = pending(1);
    echoes.await(one.echo);
    echoes.echoed("#chat", Promise.resolve("1-0"));
    expect(one.reflected).toHaveLength(1);
    expect(await one.reflected[0]).toBe("1-0");
  });

  it("reflects a message of several lines once all came back, without one archive id", () => {
    const echoes = new Echoes();
    const two = pending(2);
    echoes.await(two.echo);
    echoes.echoed("#chat", Promise.resolve("1-0"));
    expect(two.reflected).toEqual([]);
    echoes.echoed("#chat", Promise.resolve("1-1"));
    expect(two.reflected).toEqual([undefined]);
  });
});
