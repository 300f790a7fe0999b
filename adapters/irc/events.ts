/**
 * What the XMPP user sees of an IRC channel, as the core's events: occupants (XEP-0045 §7.2.3), the user's
 * own presence (status 110), leaving (§7.2.8), nick changes (303), kicks (307) and the subject (§8.1).
 */
import type { InboundEvent, PresenceEvent } from "../../src/adapter.js";
import type { Occupant } from "./muc.js";

/** XEP-0045 §15.7 status codes used here. */
export const STATUS = {
  /** The presence is about the receiving user. */
  SELF: 110,
  /** The service changed (or kept another) nick for the user. */
  NICK_MODIFIED: 210,
  /** The occupant changed nick; `nick` holds the new one. */
  NICK_CHANGE: 303,
  /** The occupant was kicked. */
  KICKED: 307,
  /** Removed because the service (here: the IRC connection) went down. */
  SHUTDOWN: 332,
} as const;

const GONE: Occupant = { affiliation: "none", role: "none" };

export function occupantPresence(
  to: string,
  roomJid: string,
  nick: string,
  occupant: Occupant,
  statusCodes: number[] = [],
): PresenceEvent {
  return {
    kind: "presence",
    to,
    from: `${roomJid}/${nick}`,
    muc: { ...occupant, ...(statusCodes.length ? { statusCodes } : {}) },
  };
}

/** An occupant leaving (part, quit, kick); `status` is the IRC reason shown as presence status. */
export function leavePresence(
  to: string,
  roomJid: string,
  nick: string,
  reason: string,
  statusCodes: number[] = [],
): PresenceEvent {
  return {
    ...occupantPresence(to, roomJid, nick, GONE, statusCodes),
    type: "unavailable",
    ...(reason === "" ? {} : { status: reason }),
  };
}

/**
 * XEP-0045 §9.1: a kicked occupant leaves with 307 (and 110 when it is the user), the kicker as
 * `<actor nick>` and the reason as `<item><reason>`; the presence status says both for clients that show
 * only that.
 */
export function kickPresence(
  to: string,
  roomJid: string,
  nick: string,
  by: string,
  reason: string,
  self: boolean,
): PresenceEvent {
  const left = leavePresence(
    to,
    roomJid,
    nick,
    `Kicked by ${by}${reason ? `: ${reason}` : ""}`,
    self ? [STATUS.KICKED, STATUS.SELF] : [STATUS.KICKED],
  );
  return {
    ...left,
    muc: { ...GONE, ...left.muc, ...(by === "" ? {} : { actor: by }), ...(reason === "" ? {} : { reason }) },
  };
}

/** XEP-0045 §7.6: a nick change is unavailable from the old nick (303 with the new one), then available. */
export function nickChange(
  to: string,
  roomJid: string,
  oldNick: string,
  newNick: string,
  occupant: Occupant,
  self: boolean,
): PresenceEvent[] {
  const own = self ? [STATUS.SELF] : [];
  return [
    {
      kind: "presence",
      to,
      from: `${roomJid}/${oldNick}`,
      type: "unavailable",
      muc: { ...occupant, nick: newNick, statusCodes: [STATUS.NICK_CHANGE, ...own] },
    },
    occupantPresence(to, roomJid, newNick, occupant, own),
  ];
}

/**
 * Joining: every other occupant, then the user's own presence last with 110 (and 210 when the IRC nick is
 * not the one asked for), then the subject, empty when there is none (XEP-0045 §7.2.15: the subject ends
 * the join, clients wait for it).
 */
export function joinEvents(opts: {
  to: string;
  roomJid: string;
  ownNick: string;
  requestedNick: string;
  others: [string, Occupant][];
  own: Occupant;
  topic: string;
  id: string;
}): InboundEvent[] {
  const codes = [STATUS.SELF, ...(opts.ownNick === opts.requestedNick ? [] : [STATUS.NICK_MODIFIED])];
  return [
    ...opts.others.map(([nick, occ]) => occupantPresence(opts.to, opts.roomJid, nick, occ)),
    occupantPresence(opts.to, opts.roomJid, opts.ownNick, opts.own, codes),
    {
      kind: "message",
      to: opts.to,
      from: opts.roomJid,
      id: opts.id,
      type: "groupchat",
      body: "",
      subject: opts.topic,
    },
  ];
}
