/**
 * An IRC server that takes the connection and then never says a word: the user's join fails with
 * remote-server-timeout after the configured connect timeout, saying so, and the gateway goes on serving.
 */
import { createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slotDomain } from "../slots.js";
import { errorOf, TestUser, xml } from "../support/client.js";
import { sharedBed, startIrcGateway, takeSlot, type TestGateway } from "../support/gateway.js";

const MUC = "http://jabber.org/protocol/muc";

describe("a stalled IRC server", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  const sockets: Socket[] = [];
  let server: Server;
  let gw: TestGateway;
  let user: TestUser;
  let domain: string;

  beforeAll(async () => {
    server = createServer((socket) => {
      sockets.push(socket); // accepted, read, never answered
      socket.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    const slot = await takeSlot(bed);
    domain = slotDomain(slot, "irc");
    gw = await startIrcGateway(bed, slot, {
      servers: { allow: ["silent.localhost"] },
      tls: false,
      addresses: { "silent.localhost": { host: "127.0.0.1", port } },
      connectTimeoutSeconds: 2,
    });
    user = await TestUser.login(peer, `stall-${slot}`);
  });

  afterAll(async () => {
    await user?.stop();
    await gw?.stop();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
  });

  it("fails the join with remote-server-timeout, says why, and keeps answering", async () => {
    const room = `#quiet%silent.localhost@${domain}`;
    await user.send(xml("presence", { to: `${room}/me` }, xml("x", { xmlns: MUC })));
    const error = await user.waitFor(
      (el) => el.name === "presence" && el.attrs.type === "error" && el.attrs.from?.startsWith(room) === true,
      20_000,
    );
    expect(errorOf(error).condition).toBe("remote-server-timeout");
    expect(errorOf(error).text).toContain("did not answer");
    expect(sockets.length).toBeGreaterThan(0);
    const pong = await user.iq("get", domain, xml("ping", { xmlns: "urn:xmpp:ping" }));
    expect(pong.attrs.type).toBe("result");
  });
});
