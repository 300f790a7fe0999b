/**
 * What one IRC connection knows of its channels: who is in each with which prefixes (RPL_NAMREPLY, JOIN,
 * PART, QUIT, KICK, NICK, MODE), whether it is moderated, its topic; and the server's ISUPPORT PREFIX and
 * CHANMODES that say how to read modes. Changed only by IrcSession, from what the handlers decided.
 */

export interface ChannelView {
  /** Nick → its prefixes ("@", "@+", ""). */
  readonly users: ReadonlyMap<string, string>;
  readonly moderated: boolean;
  readonly topic: string;
}

/** ISUPPORT as the gateway reads it (ircdocs "RPL_ISUPPORT"). */
export interface Support {
  /** Prefix mode letter → prefix character, most powerful first: o → @, v → +. */
  prefixes: ReadonlyMap<string, string>;
  /** CHANMODES groups A (lists), B (always a parameter), C (a parameter when set), D (none). */
  chanModes: readonly [string, string, string, string];
}

/** RFC 1459 defaults, until the server's 005 says otherwise. */
export const DEFAULT_SUPPORT: Support = {
  prefixes: new Map([
    ["o", "@"],
    ["v", "+"],
  ]),
  chanModes: ["beI", "k", "l", "imnpst"],
};

/** Reads PREFIX=(qaohv)~&@%+ and CHANMODES=… from one 005 line's parameters; undefined fields unchanged. */
export function parseSupport(params: readonly string[], current: Support): Support {
  let { prefixes, chanModes } = current;
  for (const token of params) {
    const prefix = /^PREFIX=\(([^)]*)\)(.*)$/.exec(token);
    if (prefix) {
      const [modes = "", chars = ""] = [prefix[1], prefix[2]];
      prefixes = new Map([...modes].map((m, i) => [m, chars[i] ?? ""]));
    }
    const groups = /^CHANMODES=(.*)$/.exec(token)?.[1]?.split(",");
    if (groups) chanModes = [groups[0] ?? "", groups[1] ?? "", groups[2] ?? "", groups[3] ?? ""];
  }
  return { prefixes, chanModes };
}

/** One mode change: `+o carol`, `-m`. */
export interface ModeChange {
  set: boolean;
  mode: string;
  arg?: string;
}

/** `+o-v carol dave` → the changes, each with its parameter as CHANMODES and PREFIX say. */
export function parseModes(modes: string, args: readonly string[], support: Support): ModeChange[] {
  const changes: ModeChange[] = [];
  const [a, b, c] = support.chanModes;
  let set = true;
  let next = 0;
  for (const mode of modes) {
    if (mode === "+" || mode === "-") {
      set = mode === "+";
      continue;
    }
    const takesArg =
      support.prefixes.has(mode) || a.includes(mode) || b.includes(mode) || (set && c.includes(mode));
    const arg = takesArg ? args[next++] : undefined;
    changes.push({ set, mode, ...(arg === undefined ? {} : { arg }) });
  }
  return changes;
}

/** Prefixes after a prefix mode change, kept in the server's order of power. */
export function withPrefix(prefixes: string, change: ModeChange, support: Support): string {
  const char = support.prefixes.get(change.mode) ?? "";
  const set = new Set(prefixes);
  if (change.set) set.add(char);
  else set.delete(char);
  return [...support.prefixes.values()].filter((p) => set.has(p)).join("");
}

interface Channel {
  users: Map<string, string>;
  moderated: boolean;
  topic: string;
}

export class Roster {
  private readonly channels = new Map<string, Channel>();
  private supported: Support = DEFAULT_SUPPORT;

  get support(): Support {
    return this.supported;
  }

  setSupport(support: Support): void {
    this.supported = support;
  }

  channel(name: string): ChannelView | undefined {
    return this.channels.get(name.toLowerCase());
  }

  /** Channels and the nicks in each, lowercased names. */
  entries(): IterableIterator<[string, ChannelView]> {
    return this.channels.entries();
  }

  /** We joined: a fresh channel (a rejoin starts over). */
  joined(name: string): void {
    this.channels.set(name.toLowerCase(), { users: new Map(), moderated: false, topic: "" });
  }

  left(name: string): void {
    this.channels.delete(name.toLowerCase());
  }

  setUser(name: string, nick: string, prefixes: string): void {
    this.channels.get(name.toLowerCase())?.users.set(nick, prefixes);
  }

  removeUser(name: string, nick: string): void {
    this.channels.get(name.toLowerCase())?.users.delete(nick);
  }

  /** A nick changed, in every channel it is in (prefixes kept). */
  rename(from: string, to: string): void {
    for (const channel of this.channels.values()) {
      const prefixes = channel.users.get(from);
      if (prefixes === undefined) continue;
      channel.users.delete(from);
      channel.users.set(to, prefixes);
    }
  }

  /** A nick quit: out of every channel. */
  removeEverywhere(nick: string): void {
    for (const channel of this.channels.values()) channel.users.delete(nick);
  }

  setModerated(name: string, moderated: boolean): void {
    const channel = this.channels.get(name.toLowerCase());
    if (channel) channel.moderated = moderated;
  }

  setTopic(name: string, topic: string): void {
    const channel = this.channels.get(name.toLowerCase());
    if (channel) channel.topic = topic;
  }
}
