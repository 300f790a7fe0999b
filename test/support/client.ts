/**
 * An XMPP user for tests: a real @xmpp/client session that records every stanza it receives, so a test
 * can say "send this, expect that".
 */
import { client, xml, type Client, type Element } from "@xmpp/client";
import type { XmppPeer } from "../bed/index.js";

export { xml, type Element };

const MUC = "http://jabber.org/protocol/muc";
/** How long a room join may take (the gateway connects to the IRC server first). */
const JOIN_TIMEOUT_MS = 20_000;

export class TestUser {
  readonly received: Element[] = [];
  /** Connection errors and status changes, for failure messages. */
  readonly events: string[] = [];
  private waiters: { match: (el: Element) => boolean; resolve: (el: Element) => void }[] = [];

  private constructor(
    readonly xmpp: Client,
    readonly jid: string,
  ) {
    xmpp.on("stanza", (el: Element) => {
      this.received.push(el);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(el)) return true;
        w.resolve(el);
        return false;
      });
    });
  }

  /** Registers (in band) and logs in `user@host`, then sends initial presence unless told not to. */
  static async login(peer: XmppPeer, user: string, opts: { presence?: boolean } = {}): Promise<TestUser> {
    const password = `${user}-pw`;
    await peer.registerUser(user, password);
    // A resource of its own per login, as real clients pick: a second login of the same user (a test that
    // logs in again after a restart) must not fight an earlier client still reconnecting with the same
    // resource, each kicking the other off in turn.
    const resource = `test-${Math.random().toString(36).slice(2, 8)}`;
    const xmpp = client({
      service: `xmpp://127.0.0.1:${peer.c2sPort}`,
      domain: peer.host,
      username: user,
      password,
      resource,
    });
    const t = new TestUser(xmpp, `${user}@${peer.host}/${resource}`);
    // Failures surface through start() and the assertions; keep them to explain a closed connection.
    xmpp.on("error", (err: Error) => t.events.push(`error: ${err.message}`));
    xmpp.on("status", (status: string) => t.events.push(`status: ${status}`));
    await xmpp.start();
    // Like every real client: fetch the roster (servers only push subscription changes to sessions that
    // did), then send initial presence.
    await t.iq("get", undefined, xml("query", { xmlns: "jabber:iq:roster" }));
    if (opts.presence ?? true) await xmpp.send(xml("presence"));
    return t;
  }

  get bare(): string {
    return this.jid.split("/")[0] ?? this.jid;
  }

  send(el: Element): Promise<void> {
    return this.xmpp.send(el);
  }

  /** Sends an iq and returns the whole answer, result or error (never throws on a stanza error). */
  async iq(
    type: "get" | "set",
    to: string | undefined,
    child: Element,
    timeoutMs = 10_000,
  ): Promise<Element> {
    const id = `q${Math.random().toString(36).slice(2)}`;
    const answer = this.waitFor((el) => el.name === "iq" && el.attrs.id === id, timeoutMs);
    try {
      await this.xmpp.send(xml("iq", { type, to, id }, child));
    } catch (err) {
      answer.catch(() => undefined);
      throw new Error(`${this.jid}: ${(err as Error).message}; connection events: ${this.events.join(", ")}`);
    }
    return answer;
  }

  /** The first stanza already received or arriving within the timeout that matches. */
  waitFor(match: (el: Element) => boolean, timeoutMs = 10_000): Promise<Element> {
    const seen = this.received.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== done);
        reject(new Error(`no matching stanza within ${timeoutMs} ms; received:\n${this.dump()}`));
      }, timeoutMs);
      const done = (el: Element) => {
        clearTimeout(timer);
        resolve(el);
      };
      this.waiters.push({ match, resolve: done });
    });
  }

  /**
   * Joins a room as `occupant` (room@domain/nick) with an XEP-0045 join presence (`history` as its
   * `<history/>` attributes) and returns the user's own presence back (status 110) received after sending.
   */
  async joinRoom(
    occupant: string,
    opts: { history?: Record<string, string>; timeoutMs?: number } = {},
  ): Promise<Element> {
    const sent = this.received.length;
    await this.send(
      xml(
        "presence",
        { to: occupant },
        xml("x", { xmlns: MUC }, opts.history ? xml("history", opts.history) : null),
      ),
    );
    return this.waitFor(
      (el) =>
        this.received.indexOf(el) >= sent &&
        el.name === "presence" &&
        el.attrs.from === occupant &&
        statusCodes(el).includes(110),
      opts.timeoutMs ?? JOIN_TIMEOUT_MS,
    );
  }

  /** Round trip to the user's own server: everything sent to us before it has been received. */
  async sync(): Promise<void> {
    await this.iq("get", this.xmpp.jid?.domain ?? "localhost", xml("ping", { xmlns: "urn:xmpp:ping" }));
  }

  dump(): string {
    return this.received
      .slice(-15)
      .map((el) => `  ${el.toString()}`)
      .join("\n");
  }

  async stop(): Promise<void> {
    await this.xmpp.stop().catch(() => undefined);
  }
}

/** The error condition of an error stanza, and its text. */
export function errorOf(el: Element): { condition: string | undefined; text: string | null; type?: string } {
  const error = el.getChild("error");
  const condition = error?.getChildElements().find((c) => c.name !== "text")?.name;
  return {
    condition,
    text: error?.getChildText("text", "urn:ietf:params:xml:ns:xmpp-stanzas") ?? null,
    type: error?.attrs.type,
  };
}

/** A submitted XEP-0004 form with one value per field. */
export function submittedForm(fields: Record<string, string>): Element {
  return xml(
    "x",
    { xmlns: "jabber:x:data", type: "submit" },
    ...Object.entries(fields).map(([name, value]) => xml("field", { var: name }, xml("value", {}, value))),
  );
}

/** An XEP-0077 registration query carrying a submitted form. */
export function registration(fields: Record<string, string>): Element {
  return xml("query", { xmlns: "jabber:iq:register" }, submittedForm(fields));
}

const MUC_USER_NS = "http://jabber.org/protocol/muc#user";
const COMMANDS_NS = "http://jabber.org/protocol/commands";

/** The XEP-0045 status codes of an occupant presence (110 self, 303 nick change, 307 kicked…). */
export function statusCodes(el: Element): number[] {
  return (el.getChild("x", MUC_USER_NS)?.getChildren("status") ?? []).map((s) => Number(s.attrs.code));
}

/** Runs an XEP-0050 ad-hoc command in its two steps (form, then submission); returns the completing answer. */
export async function runCommand(
  user: TestUser,
  to: string,
  node: string,
  fields: Record<string, string>,
): Promise<Element> {
  const first = await user.iq("set", to, xml("command", { xmlns: COMMANDS_NS, node, action: "execute" }));
  const sessionid = first.getChild("command", COMMANDS_NS)?.attrs.sessionid;
  return user.iq(
    "set",
    to,
    xml("command", { xmlns: COMMANDS_NS, node, sessionid, action: "complete" }, submittedForm(fields)),
  );
}

/** Polls until `done` holds (a condition, not a pause), failing with `explain` after `timeoutMs`. */
export async function until(done: () => boolean, timeoutMs: number, explain: () => string): Promise<void> {
  for (const end = Date.now() + timeoutMs; !done();) {
    if (Date.now() > end) throw new Error(explain());
    await new Promise((r) => setTimeout(r, 100));
  }
}
