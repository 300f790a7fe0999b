/** The test bed's port chooser: ports no outgoing connection can take before the server binds them. */
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { ephemeralPorts, freePorts } from "./ports.js";

describe("freePorts", () => {
  it("chooses distinct ports below the range the kernel gives outgoing connections, each one bindable", async () => {
    const [low] = ephemeralPorts();
    const ports = await freePorts(20);
    expect(new Set(ports).size).toBe(20);
    for (const port of ports) {
      expect(port).toBeLessThan(low);
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ host: "127.0.0.1", port, exclusive: true }, resolve);
      });
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
