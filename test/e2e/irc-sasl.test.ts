/**
 * SASL PLAIN from the user's server settings, and hostile IRC servers. No IRC server of the bed offers SASL
 * without a services daemon, so a scripted server on a loopback socket plays the IRCv3 exchange (CAP LS,
 * CAP REQ sasl, AUTHENTICATE PLAIN) as the specification writes it, and checks the credentials.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slotDomain } from "../slots.js";
import { errorOf, TestUser, xml, runCommand } from "../support/client.js";
import { sharedBed, startIrcGateway, takeSlot, type TestGateway } from "../support/gateway.js";

const MUC = "http://jabber.org/protocol/muc";
const ACCOUNT = "saslnick";
const PASSWORD = "pa ss"; // refused by the form: passwords have no spaces
const GOOD = "correct-horse";

/** A scripted IRC server: SASL PLAIN then registration; records what clients send. */
function scriptedServer(): Promise<{ server: Server; port: number; lines: string[]; closed: string[] }> {
  const lines: string[] = [];
  const closed: string[] = [];
  const server = createServer((socket: Socket) => {
    let buffer = "";
    let nick = "*";
    const say = (line: string) => socket.write(`:sasl.localhost ${line}\r\n`);
    socket.on("data", (chunk) => {
      buffer += chunk.toString("utf8");
      const parts = buffer.split("\r\n");
      buffer = parts.pop() ?? "";
      for (const line of parts) {
        lines.push(line);
        const [command, ...args] = line.split(" ");
        if (command === "CAP" && args[0] === "LS") say(`CAP * LS :sasl=PLAIN multi-prefix`);
        else if (command === "CAP" && args[0] === "REQ")
          say(`CAP * ACK :${args.slice(1).join(" ").replace(/^:/, "")}`);
        else if (command === "NICK") nick = args[0] ?? "*";
        else if (command === "AUTHENTICATE" && args[0] === "PLAIN") socket.write("AUTHENTICATE +\r\n");
        else if (command === "AUTHENTICATE") {
          const [, authcid, password] = Buffer.from(args[0] ?? "", "base64")
            .toString("utf8")
            .split("\0");
          if (authcid === ACCOUNT && password === GOOD) {
            say(`900 ${nick} ${nick}!u@h ${ACCOUNT} :You are now logged in as ${ACCOUNT}`);
            say(`903 ${nick} :SASL authentication successful`);
          } else say(`904 ${nick} :SASL authentication failed`);
        } else if (command === "CAP" && args[0] === "END") say(`001 ${nick} :Welcome ${nick}!u@h`);
        else if (command === "JOIN" && args[0] === "#flood") {
          // Garbage, then a "line" far over any IRC limit, sent in pieces, then the join's answer.
          socket.on("close", () => closed.push(nick));
          socket.write("\x00\xff:::\r\n" + "x".repeat(150_000));
          socket.write("x".repeat(150_000) + "\r\n");
          socket.write(`:${nick}!u@h JOIN ${args[0]}\r\n`);
          say(`353 ${nick} = ${args[0]} :${nick}`);
          say(`366 ${nick} ${args[0]} :End of NAMES`);
        } else if (command === "JOIN") {
          socket.write(`:${nick}!u@h JOIN ${args[0]}\r\n`);
          say(`353 ${nick} = ${args[0]} :${nick}`);
          say(`366 ${nick} ${args[0]} :End of NAMES`);
        }
      }
    });
    socket.on("error", () => undefined);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      resolve({ server, port: typeof address === "object" && address ? address.port : 0, lines, closed });
    }),
  );
}

describe("SASL from the user's IRC settings", () => {
  const bed = sharedBed();
  const peer = bed.prosody!;
  let fake: Awaited<ReturnType<typeof scriptedServer>>;
  let gw: TestGateway;
  let domain: string;
  let alice: TestUser;

  const settings = (fields: Record<string, string>) =>
    runCommand(alice, domain, "irc-server-settings", fields);

  beforeAll(async () => {
    fake = await scriptedServer();
    const slot = await takeSlot(bed);
    domain = slotDomain(slot, "irc");
    gw = await startIrcGateway(
      bed,
      slot,
      {
        servers: { allow: ["sasl.localhost", "other.localhost"] },
        tls: false,
        addresses: { "sasl.localhost": { host: "127.0.0.1", port: fake.port } },
        lineDelayMs: 0,
        connectTimeoutSeconds: 5,
        passwordKeysEnv: "TEST_IRC_KEYS",
      },
      { env: { TEST_IRC_KEYS: randomBytes(32).toString("base64") } },
    );
    alice = await TestUser.login(peer, `alice-sasl-${slot}`);
  });

  afterAll(async () => {
    await alice?.stop();
    await gw?.stop();
    fake?.server.close();
  });

  it("refuses a password the IRC line could not carry, and stores nothing", async () => {
    const answer = await settings({ server: "sasl.localhost", nick: ACCOUNT, saslPassword: PASSWORD });
    expect(errorOf(answer).condition).toBe("not-acceptable");
  });

  it("a wrong SASL password: the join fails with not-authorized", async () => {
    await settings({ server: "sasl.localhost", nick: ACCOUNT, saslPassword: "wrong" });
    const to = `#s%sasl.localhost@${domain}/alice`;
    await alice.send(xml("presence", { to }, xml("x", { xmlns: MUC })));
    const error = await alice.waitFor((el) => el.attrs.from === to && el.attrs.type === "error");
    expect(errorOf(error).condition).toBe("not-authorized");
  });

  it("logs in with SASL PLAIN as the account from the settings, then joins", async () => {
    await settings({ server: "sasl.localhost", saslPassword: GOOD, nick: ACCOUNT });
    const to = `#s%sasl.localhost@${domain}/alice`;
    const mark = alice.received.length;
    await alice.send(xml("presence", { to }, xml("x", { xmlns: MUC })));
    const self = await alice.waitFor(
      (el) =>
        alice.received.indexOf(el) >= mark &&
        el.name === "presence" &&
        el.attrs.from?.startsWith(`#s%`) === true,
    );
    expect(self.attrs.type, self.toString()).toBeUndefined();
    expect(fake.lines).toContain("CAP REQ :multi-prefix sasl");
    expect(fake.lines.filter((l) => l.startsWith("AUTHENTICATE ")).length).toBeGreaterThanOrEqual(4);
  });

  it("keeps the SASL password encrypted in Redis", async () => {
    const redis = new Redis(bed.redis!.url);
    try {
      const raw = await redis.hget(`${gw.keyPrefix}settings:irc`, alice.bare);
      expect(raw).toContain("sasl.localhost/saslPassword");
      expect(raw).not.toContain(GOOD);
      expect(raw).not.toContain(Buffer.from(GOOD).toString("base64"));
      expect(raw).not.toContain(Buffer.from(GOOD).toString("hex"));
    } finally {
      redis.disconnect();
    }
  });

  it("refuses a 100 kB body with an error and sends nothing of it to IRC", async () => {
    const room = `#s%sasl.localhost@${domain}`;
    const body = "x".repeat(100 * 1024);
    await alice.send(xml("message", { to: room, type: "groupchat", id: "huge" }, xml("body", {}, body)));
    const refused = await alice.waitFor((el) => el.attrs.id === "huge");
    expect(refused.attrs.type).toBe("error");
    expect(errorOf(refused).text).toBeTruthy();
    await alice.send(xml("message", { to: room, type: "groupchat", id: "small" }, xml("body", {}, "small")));
    for (let i = 0; i < 100 && !fake.lines.includes("PRIVMSG #s small"); i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(fake.lines.filter((l) => l.startsWith("PRIVMSG #s"))).toEqual(["PRIVMSG #s small"]);
  });

  it("drops garbage and a line far over any IRC limit, keeps the connection and reads on", async () => {
    const to = `#flood%sasl.localhost@${domain}/alice`;
    const mark = alice.received.length;
    await alice.send(xml("presence", { to }, xml("x", { xmlns: MUC })));
    // The join's answer came after the over-long line: the user is in the room.
    const self = await alice.waitFor(
      (el) =>
        alice.received.indexOf(el) >= mark &&
        el.name === "presence" &&
        el.attrs.from?.startsWith("#flood%") === true,
    );
    expect(self.attrs.type, self.toString()).toBeUndefined();
    expect(fake.closed).toEqual([]);
    const ping = await alice.iq("get", domain, xml("ping", { xmlns: "urn:xmpp:ping" }));
    expect(ping.attrs.type).toBe("result");
  });

  it("refuses a join while another gateway instance holds the user's connection to that server", async () => {
    const redis = new Redis(bed.redis!.url);
    try {
      await redis.set(
        `${gw.keyPrefix}a:{irc}:lease:${alice.bare}:other.localhost`,
        "another-instance",
        "EX",
        60,
      );
      const to = `#x%other.localhost@${domain}/alice`;
      await alice.send(xml("presence", { to }, xml("x", { xmlns: MUC })));
      const error = await alice.waitFor((el) => el.attrs.from === to && el.attrs.type === "error");
      expect(errorOf(error).condition).toBe("resource-constraint");
      expect(errorOf(error).text).toContain("Another instance");
    } finally {
      redis.disconnect();
    }
  });
});
