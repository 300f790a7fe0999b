/**
 * Per-server IRC settings and a redial that finds the user's nick taken, as users see them. Three server
 * names lead to the bed's ngircd: the bed's own name (the default charset, latin-1), cyr.localhost (its own
 * fallback charset, windows-1251, and its own port: a relay the test can cut), so one channel is seen
 * through both and the same bytes read differently.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slotDomain } from "../slots.js";
import { TestUser, type Element, statusCodes } from "../support/client.js";
import { sharedBed, startIrcGateway, takeSlot, type TestGateway } from "../support/gateway.js";
import { RawIrc } from "../support/raw-irc.js";

const MUC_USER = "http://jabber.org/protocol/muc#user";
const CYR = "cyr.localhost";

/** A TCP relay to the IRC server that the test can cut (closing every relayed connection) and restore. */
class Relay {
  private readonly sockets = new Set<Socket>();
  private up = true;
  connections = 0;

  private constructor(private readonly server: Server) {}

  static async start(target: number): Promise<Relay> {
    const server = createServer();
    const relay = new Relay(server);
    server.on("connection", (inbound) => {
      inbound.on("error", () => undefined);
      if (!relay.up) {
        inbound.destroy();
        return;
      }
      relay.connections++;
      const outbound = createConnection({ host: "127.0.0.1", port: target });
      outbound.on("error", () => inbound.destroy());
      inbound.on("close", () => outbound.destroy());
      outbound.on("close", () => inbound.destroy());
      inbound.pipe(outbound).pipe(inbound);
      relay.sockets.add(inbound).add(outbound);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return relay;
  }

  get port(): number {
    const address = this.server.address();
    if (address === null || typeof address === "string") throw new Error("relay not listening");
    return address.port;
  }

  /** Closes every relayed connection and refuses new ones until restore(). */
  cut(): void {
    this.up = false;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  restore(): void {
    this.up = true;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

describe("IRC per-server settings and redials", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  const ircd = bed.irc!;
  let gw: TestGateway;
  let relay: Relay;
  let slot: number;
  let domain: string;
  let channel: string;
  let bob: RawIrc;
  let lat: TestUser;
  let cyr: TestUser;

  beforeAll(async () => {
    slot = await takeSlot(bed);
    domain = slotDomain(slot, "irc");
    channel = `#servers${slot}`;
    relay = await Relay.start(ircd.port);
    gw = await startIrcGateway(bed, slot, {
      servers: { allow: [ircd.serverName, CYR] },
      tls: false,
      addresses: {
        [ircd.serverName]: { host: "127.0.0.1", port: ircd.port },
        // Its own port (the relay) and its own charset for lines that are not UTF-8.
        [CYR]: { host: "127.0.0.1", port: relay.port, fallbackCharset: "windows-1251" },
      },
      fallbackCharset: "iso-8859-1",
      graceSeconds: 1,
      lineDelayMs: 0,
      reconnectMaxSeconds: 1,
      reconnectNoticeSeconds: 1,
    });
    bob = await RawIrc.connect(ircd.port, `Bob${slot}`);
    await bob.join(channel);
    lat = await TestUser.login(peer, `lat-irc-${slot}`);
    cyr = await TestUser.login(peer, `cyr-irc-${slot}`);
  });

  afterAll(async () => {
    bob?.close();
    await lat?.stop();
    await cyr?.stop();
    await gw?.stop();
    await relay?.stop();
  });

  const join = async (user: TestUser, server: string, nick: string): Promise<string> => {
    const room = `${channel}%${server}@${domain}`;
    await user.joinRoom(`${room}/${nick}`);
    return room;
  };

  it("connects to a server on its own port and reads lines that are not UTF-8 in that server's charset", async () => {
    await join(lat, ircd.serverName, `lat${slot}`);
    await join(cyr, CYR, `cyr${slot}`);
    expect(relay.connections).toBe(1);
    // "Привет" in windows-1251; the same bytes are "Ïðèâåò" in latin-1.
    bob.send(
      Buffer.concat([Buffer.from(`PRIVMSG ${channel} :`), Buffer.from([0xcf, 0xf0, 0xe8, 0xe2, 0xe5, 0xf2])]),
    );
    await cyr.waitFor((el) => el.name === "message" && el.getChildText("body") === "Привет");
    await lat.waitFor((el) => el.name === "message" && el.getChildText("body") === "Ïðèâåò");
  });

  it("takes another nick when its own was taken while the connection was down: the user stays, told of the new nick", async () => {
    const room = `${channel}%${CYR}@${domain}`;
    const nick = `cyr${slot}`;
    const mark = cyr.received.length;
    const since = (el: Element) => cyr.received.indexOf(el) >= mark;
    relay.cut();
    // The server saw the gateway's connection go: the nick is free, and someone else takes it.
    await bob.waitFor((l) => l.startsWith(`:${nick}!`) && l.includes(" QUIT "));
    const squatter = await RawIrc.connect(ircd.port, nick);
    try {
      relay.restore();
      // XEP-0045 §7.6: the user's occupant changes nick (303 with the new one, 110), and the new
      // presence says the service changed it (210).
      const renamed = await cyr.waitFor(
        (el) =>
          since(el) &&
          el.name === "presence" &&
          el.attrs.from === `${room}/${nick}` &&
          el.attrs.type === "unavailable" &&
          statusCodes(el).includes(303),
        30_000,
      );
      expect(statusCodes(renamed)).toContain(110);
      const newNick = renamed.getChild("x", MUC_USER)?.getChild("item")?.attrs.nick;
      expect(newNick).toBeTruthy();
      expect(newNick).not.toBe(nick);
      await cyr.waitFor(
        (el) =>
          since(el) &&
          el.name === "presence" &&
          el.attrs.from === `${room}/${newNick}` &&
          el.attrs.type === undefined &&
          statusCodes(el).includes(110) &&
          statusCodes(el).includes(210),
      );
      // Still in the room under the new nick: a line said in the channel reaches the user.
      await bob.waitFor((l) => l.startsWith(`:${newNick}!`) && l.includes(` JOIN `));
      bob.send(`PRIVMSG ${channel} :welcome back`);
      await cyr.waitFor((el) => since(el) && el.getChildText("body") === "welcome back");
      expect(
        cyr.received.filter(
          (el) =>
            since(el) &&
            el.name === "presence" &&
            el.attrs.from === `${room}/${nick}` &&
            el.attrs.type === "error",
        ),
      ).toEqual([]);
    } finally {
      squatter.close();
    }
  });
});
