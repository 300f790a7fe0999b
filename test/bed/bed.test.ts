import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attach, type Bed, type BedInfo, startBed, type XmppPeer } from "./index.js";

// @xmpp/client ships no types: describe the few parts used here.
interface XmlElement {
  attrs: Record<string, string | undefined>;
  getChild(name: string, xmlns?: string): XmlElement | undefined;
  getChildren(name: string, xmlns?: string): XmlElement[];
}
interface XmppClient {
  start(): Promise<unknown>;
  stop(): Promise<unknown>;
  on(event: "error", listener: (err: Error) => void): void;
  iqCaller: { request(stanza: XmlElement, timeoutMs?: number): Promise<XmlElement> };
}
type Authenticate = (credentials: { username: string; password: string }, mechanism: string) => Promise<void>;
interface XmppClientModule {
  client(
    this: void,
    opts: {
      service: string;
      domain: string;
      username: string;
      password?: string;
      credentials?: (authenticate: Authenticate, mechanisms: string[]) => Promise<void>;
    },
  ): XmppClient;
  xml(
    this: void,
    name: string,
    attrs?: Record<string, string>,
    ...children: (XmlElement | string)[]
  ): XmlElement;
}
const clientModuleName = "@xmpp/client";
const { client, xml } = (await import(clientModuleName)) as XmppClientModule;

const COMPONENT = { domain: "bedtest.localhost", secret: "bed-secret" };
let bed: Bed;

beforeAll(async () => {
  bed = await startBed({ components: [COMPONENT] });
});
afterAll(async () => {
  await bed?.stop();
});

/** Logs in with SCRAM-SHA-1 (what @xmpp/client picks over plain TCP), or forces PLAIN. */
async function login(peer: XmppPeer, username: string, password: string, plain = false): Promise<XmppClient> {
  const service = `xmpp://127.0.0.1:${peer.c2sPort}`;
  const xmpp = plain
    ? client({
        service,
        domain: peer.host,
        username,
        credentials: (auth) => auth({ username, password }, "PLAIN"),
      })
    : client({ service, domain: peer.host, username, password });
  xmpp.on("error", () => undefined); // start() rejects with the same error
  await xmpp.start();
  return xmpp;
}

async function discoItems(xmpp: XmppClient, to: string): Promise<string[]> {
  const query = xml("query", { xmlns: "http://jabber.org/protocol/disco#items" });
  const reply = await xmpp.iqCaller.request(xml("iq", { type: "get", to }, query));
  const items = reply.getChild("query", "http://jabber.org/protocol/disco#items")?.getChildren("item") ?? [];
  return items.map((item) => item.attrs.jid ?? "");
}

/** A raw XEP-0114 handshake; resolves with the open socket's closer once `<handshake/>` arrives. */
function componentHandshake(port: number, domain: string, secret: string): Promise<() => void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    let buffer = "";
    let sent = false;
    socket.setEncoding("utf8");
    socket.on("error", reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no handshake answer: ${buffer}`)));
    socket.write(
      `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${domain}'>`,
    );
    socket.on("data", (chunk: string) => {
      buffer += chunk;
      const id = /<stream:stream[^>]*\sid=(['"])(.*?)\1/.exec(buffer)?.[2];
      if (!sent && id !== undefined) {
        sent = true;
        socket.write(
          `<handshake>${createHash("sha1")
            .update(id + secret)
            .digest("hex")}</handshake>`,
        );
      }
      if (/<handshake\s*\/>|<handshake><\/handshake>/.test(buffer)) {
        socket.setTimeout(0);
        resolve(() => socket.end("</stream:stream>"));
      } else if (buffer.includes("<stream:error")) {
        reject(new Error(`component handshake refused: ${buffer}`));
      }
    });
  });
}

/** Runs `code` in a fresh Node process (with tsx), which gets the bed's info in BED_INFO. */
function inOtherProcess(code: string, info: BedInfo): Promise<string> {
  const index = fileURLToPath(new URL("./index.ts", import.meta.url));
  const script =
    `import { attach } from ${JSON.stringify(index)};\n` +
    `const bed = attach(JSON.parse(process.env.BED_INFO));\n${code}`;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "-e", script],
      { env: { ...process.env, BED_INFO: JSON.stringify(info) }, timeout: 60_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
}

describe.each(["prosody", "ejabberd"] as const)("%s", (kind) => {
  const peer = (): XmppPeer => {
    const p = bed[kind];
    if (!p) throw new Error(`${kind} did not start`);
    return p;
  };

  it("registers 100 users quickly, and again (existing accounts count as success)", async () => {
    const users = Array.from({ length: 100 }, (_, i) => ({ user: `user${i}`, password: `pw${i}` }));
    const started = Date.now();
    await peer().registerUsers(users);
    console.log(`[bed.test] ${kind}: 100 users registered in ${Date.now() - started} ms`);
    await peer().registerUsers(users.slice(0, 10));
  });

  it("lists the component in disco#items of the host, once, connected or not", async () => {
    await peer().registerUser("alice", "alice-pw");
    const xmpp = await login(peer(), "alice", "alice-pw");
    try {
      expect(await discoItems(xmpp, peer().host)).toEqual([COMPONENT.domain]);
      const close = await componentHandshake(peer().componentPort, COMPONENT.domain, COMPONENT.secret);
      try {
        expect(await discoItems(xmpp, peer().host)).toEqual([COMPONENT.domain]);
      } finally {
        close();
      }
    } finally {
      await xmpp.stop();
    }
  });

  it("refuses a component with a wrong secret", async () => {
    await expect(componentHandshake(peer().componentPort, COMPONENT.domain, "wrong")).rejects.toThrow(
      /not-authorized/,
    );
  });

  it("keeps its users across stop() and start() run from another process", async () => {
    await peer().registerUser("bob", "bob-pw");
    const out = await inOtherProcess(
      `const peer = bed[${JSON.stringify(kind)}];\n` +
        `let t = Date.now(); await peer.stop(); const stopMs = Date.now() - t;\n` +
        `t = Date.now(); await peer.start(); console.log("stop " + stopMs + " ms, start " + (Date.now() - t) + " ms");\n` +
        `await peer.registerUser("carol", "carol-pw");`,
      bed.describe(),
    );
    console.log(`[bed.test] ${kind} restarted from another process: ${out.trim()}`);
    for (const [user, password] of [
      ["bob", "bob-pw"],
      ["carol", "carol-pw"],
    ] as const) {
      const xmpp = await login(peer(), user, password);
      await xmpp.stop();
    }
  });

  it("accepts SCRAM-SHA-1 and PLAIN logins (timed)", async () => {
    for (const plain of [false, true]) {
      const started = Date.now();
      const xmpp = await login(peer(), "alice", "alice-pw", plain);
      const ms = Date.now() - started;
      await xmpp.stop();
      console.log(`[bed.test] ${kind}: ${plain ? "PLAIN" : "SCRAM-SHA-1"} login took ${ms} ms`);
    }
    await expect(login(peer(), "alice", "wrong")).rejects.toThrow(/not-authorized/);
  });
});

describe("redis and ngircd", () => {
  it("Redis answers PING and survives a restart on the same port", async () => {
    const redis = bed.redis;
    if (!redis) throw new Error("redis did not start");
    const db = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      expect(await db.ping()).toBe("PONG");
    } finally {
      db.disconnect();
    }
    await redis.stop();
    await redis.start();
    const again = new Redis({ host: redis.host, port: redis.port, lazyConnect: true });
    try {
      expect(await again.ping()).toBe("PONG");
    } finally {
      again.disconnect();
    }
  });

  it("ngircd welcomes a client (001) with a 30-character nick", async () => {
    const irc = bed.irc;
    if (!irc) throw new Error("ngircd did not start");
    const nick = "n".repeat(30);
    const welcome = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: irc.host, port: irc.port });
      let buffer = "";
      socket.setEncoding("utf8");
      socket.on("error", reject);
      socket.on("data", (chunk: string) => {
        buffer += chunk;
        const line = buffer.split("\r\n").find((l) => / 001 /.test(l));
        if (line) {
          socket.end("QUIT :bye\r\n");
          resolve(line);
        }
      });
      socket.write(`NICK ${nick}\r\nUSER bed 0 * :Bed Test\r\n`);
    });
    expect(welcome.startsWith(`:${irc.serverName} 001 ${nick} :`)).toBe(true);
  });

  it("describe() is plain JSON that attach() turns back into working peers", () => {
    const info = bed.describe();
    const copy = attach(JSON.parse(JSON.stringify(info)) as BedInfo);
    expect(copy.prosody?.c2sPort).toBe(bed.prosody?.c2sPort);
    expect(copy.ejabberd?.componentPort).toBe(bed.ejabberd?.componentPort);
    expect(copy.redis?.url).toBe(bed.redis?.url);
    expect(copy.irc?.port).toBe(bed.irc?.port);
    console.log(`[bed.test] start times: ${JSON.stringify(info.startMs)}`);
  });
});
