/**
 * Presence on an adapter domain: subscriptions to the gateway and to contacts (approved for allowed users),
 * probes, the gateway's own presence with XEP-0115 caps, and directed presence (MUC joins) for adapters
 * that take it.
 */
import type { IncomingContext } from "@xmpp/component";
import type { HistoryRequest } from "../adapter.js";
import { NS } from "../xmpp/ns.js";
import { GatewayError } from "../xmpp/errors.js";
import { caps, presence, type Element } from "../xmpp/stanzas.js";
import { guardStanza } from "./boundary.js";
import { bareOf, type ServiceContext } from "./context.js";

/** The gateway's available presence, with caps so clients learn its features without asking. */
export function gatewayPresence(svc: ServiceContext, to: string, type?: "unavailable"): Element {
  return presence(svc.domain, to, type ? { type } : {}, type ? null : caps(svc.capsVer));
}

/** Whether the user may see the gateway online: registered, or allowed on an adapter needing no registration. */
async function mayUse(svc: ServiceContext, user: string): Promise<boolean> {
  if (!svc.access.allows(user)) return false;
  if (!svc.adapter.requiresRegistration) return true;
  return (await svc.registrations.get(user)) !== null;
}

export async function handlePresence(svc: ServiceContext, ctx: IncomingContext): Promise<void> {
  const send = (el: Element) => svc.link.send(el);
  await guardStanza(svc.log, ctx, send, async () => {
    const stanza = ctx.stanza;
    const from = stanza.attrs.from ?? "";
    const user = bareOf(from);
    const toFull = stanza.attrs.to ?? svc.domain;
    const toBare = bareOf(toFull);
    const type = stanza.attrs.type ?? "available";
    const isGateway = toBare === svc.domain;

    switch (type) {
      case "error":
        return;
      case "subscribe":
        if (!svc.access.allows(user)) {
          await send(presence(toBare, user, { type: "unsubscribed" }));
          return;
        }
        await send(presence(toBare, user, { type: "subscribed" }));
        await send(isGateway ? gatewayPresence(svc, user) : presence(toBare, user));
        // An adapter that follows users' presence asks to see it (the user's client asks them to approve).
        if (isGateway && svc.adapter.userPresence) await send(presence(toBare, user, { type: "subscribe" }));
        return;
      case "probe":
        if (await mayUse(svc, user))
          await send(isGateway ? gatewayPresence(svc, from) : presence(toBare, from));
        else await send(presence(toBare, from, { type: "unavailable" }));
        return;
      case "subscribed":
      case "unsubscribe":
      case "unsubscribed":
        svc.log.debug({ jid: user, type, to: toBare }, "subscription update");
        if (type === "unsubscribed" && isGateway && svc.adapter.userPresence)
          await svc.adapter.userPresence({ from, user, type: "revoked" });
        return;
      case "available":
      case "unavailable": {
        const muc = stanza.getChild("x", NS.MUC) !== undefined;
        if (isGateway && !muc && svc.adapter.userPresence && svc.access.allows(user)) {
          await svc.adapter.userPresence({ from, user, type });
          return;
        }
        if (isGateway || !svc.adapter.presence) {
          if (muc)
            throw new GatewayError(
              "service-unavailable",
              `The ${svc.adapter.name} gateway has no chat rooms.`,
            );
          return;
        }
        svc.access.check(user);
        if (!isGateway) svc.adapter.codec.decode(toBare.slice(0, toBare.lastIndexOf("@")));
        await svc.adapter.presence({
          from,
          user,
          toJid: toBare,
          toFull,
          type,
          muc,
          show: stanza.getChildText("show") ?? undefined,
          status: stanza.getChildText("status") ?? undefined,
          ...historyOf(stanza),
        });
        return;
      }
      default:
        throw new GatewayError("bad-request", `Unknown presence type "${type}".`);
    }
  });
}

/** Registrations read per step of a broadcast (HSCAN COUNT): what a broadcast holds in memory at once. */
export const PRESENCE_SCAN_BATCH = 500;

/**
 * How long to wait before the next presence of a broadcast, so that `sent` presences since `startedAt` keep
 * to `perSecond` on average (a burst of one scan batch at most is never sent at once).
 */
export function pacingDelayMs(sent: number, startedAt: number, now: number, perSecond: number): number {
  return Math.max(0, startedAt + (sent * 1000) / perSecond - now);
}

export interface BroadcastResult {
  type: "available" | "unavailable";
  sent: number;
  /** Stopped before the last user: a newer broadcast replaced it, the stream went down, or its time ran out. */
  complete: boolean;
}

/**
 * XEP-0100 §8: the gateway's available presence to every registered user when its stream comes up, and
 * unavailable when it stops. The users are read from Redis a batch at a time and the presences paced at
 * `perSecond` (config xmpp.presencePerSecond), so 100,000 registered users cost neither memory nor a burst
 * at the XMPP server; probes are answered from Redis meanwhile (handlePresence). A new broadcast (the
 * stream came back) replaces one still running.
 */
export class PresenceBroadcaster {
  private generation = 0;

  constructor(
    private readonly svc: ServiceContext,
    private readonly perSecond: number,
  ) {}

  /** Stops the broadcast in progress, if any, after the presence in hand. */
  cancel(): void {
    this.generation++;
  }

  /** Sends the gateway's presence to every registered user; `budgetMs` bounds the time it may take. */
  async run(type: "available" | "unavailable", budgetMs = Infinity): Promise<BroadcastResult> {
    const generation = ++this.generation;
    const { svc } = this;
    const startedAt = performance.now();
    let sent = 0;
    let complete = true;
    scan: for await (const users of svc.registrations.scan(PRESENCE_SCAN_BATCH)) {
      for (const user of users) {
        if (!svc.access.allows(user)) continue;
        const wait = pacingDelayMs(sent, startedAt, performance.now(), this.perSecond);
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        if (
          generation !== this.generation ||
          !svc.link.isOnline ||
          performance.now() - startedAt > budgetMs
        ) {
          complete = false;
          break scan;
        }
        await svc.link.send(gatewayPresence(svc, user, type === "unavailable" ? type : undefined));
        sent++;
      }
    }
    svc.log.info({ type, users: sent, complete }, "gateway presence sent to registered users");
    return { type, sent, complete };
  }
}

/** XEP-0045 §7.2.14: the `<history/>` of a join; attributes that are not numbers or dates are ignored. */
function historyOf(stanza: Element): { history?: HistoryRequest } {
  const el = stanza.getChild("x", NS.MUC)?.getChild("history");
  if (!el) return {};
  const history: HistoryRequest = {};
  for (const name of ["maxstanzas", "maxchars", "seconds"] as const) {
    const value = el.attrs[name];
    if (value !== undefined && /^\d{1,9}$/.test(value.trim())) history[name] = Number(value.trim());
  }
  const since = el.attrs.since;
  if (since !== undefined && !Number.isNaN(new Date(since).getTime())) history.since = new Date(since);
  return { history };
}
