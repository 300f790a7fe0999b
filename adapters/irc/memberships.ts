/**
 * The user's side of one connection's channels: which of their resources are in which channel (kept across
 * a redial or a restart, see Carried), whose JOIN was sent, which are in sync with the server since, and
 * whether the user was told of an outage that is not over. Channel names are keys in lower case. Only the
 * session that owns it changes it (session.ts).
 */
import type { Member } from "./handlers.js";
import type { Carried } from "./session-types.js";

export class Memberships {
  private readonly members = new Map<string, Map<string, Member>>();
  private readonly synced = new Set<string>();
  private readonly requested = new Set<string>();
  private outage: boolean;

  constructor(carried: Carried | undefined) {
    this.outage = carried?.outageNoticeSent ?? false;
    for (const [channel, members] of carried?.channels ?? []) this.members.set(channel, members);
  }

  get channels(): ReadonlyMap<string, ReadonlyMap<string, Member>> {
    return this.members;
  }

  get outageNoticeSent(): boolean {
    return this.outage;
  }

  isSynced(channel: string): boolean {
    return this.synced.has(channel.toLowerCase());
  }

  isRequested(channel: string): boolean {
    return this.requested.has(channel.toLowerCase());
  }

  add(channel: string, jid: string, member: Member): void {
    const key = channel.toLowerCase();
    const members = this.members.get(key) ?? new Map<string, Member>();
    members.set(jid, member);
    this.members.set(key, members);
  }

  /** True when `jid` was the last resource in the channel (which is then forgotten). */
  remove(channel: string, jid: string): boolean {
    const key = channel.toLowerCase();
    const members = this.members.get(key);
    if (!members?.delete(jid) || members.size > 0) return false;
    this.forget(key);
    return true;
  }

  /** Marks a channel's JOIN as sent; false when it already was. */
  request(channel: string): boolean {
    const key = channel.toLowerCase();
    if (this.requested.has(key)) return false;
    this.requested.add(key);
    return true;
  }

  /** The server confirmed the channel; the outage is over once every channel is back. */
  markSynced(channel: string): void {
    this.synced.add(channel);
    if (this.outage && [...this.members.keys()].every((k) => this.synced.has(k))) this.outage = false;
  }

  forget(channel: string): void {
    const key = channel.toLowerCase();
    this.members.delete(key);
    this.synced.delete(key);
    this.requested.delete(key);
  }

  forgetAll(): void {
    for (const channel of [...this.members.keys()]) this.forget(channel);
  }

  markOutageNoticed(): void {
    this.outage = true;
  }

  /** After a redial or a restart: every channel the user is in is requested again; their names. */
  requestAll(): string[] {
    const channels = [...this.members.keys()];
    for (const channel of channels) this.requested.add(channel);
    return channels;
  }
}
