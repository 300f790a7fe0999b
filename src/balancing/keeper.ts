/**
 * Self-healing balancing behind ejabberd's `domain_balancing`: a survivor serves a dead instance's slots
 * until a fresh instance asks for them back. How ejabberd hands out slots is in src/xmpp/slot-probe.ts; the
 * Redis records are in members.ts; docs/deployment.md tells the whole story.
 *
 * - Taking over: when an instance's heartbeat is gone, the one survivor that takes its lease opens one more
 *   stream for each of its domains (ones this instance serves too). The dead stream's slot is free in ejabberd
 *   (a closed connection frees it at once), and a stream that authenticates takes a free slot, so the dead
 *   instance's users reach the survivor again. Their pending inbound entries are claimed at once.
 * - Giving back: ejabberd gives no slot to a stream beyond `component_number` (and never one later), so a
 *   fresh instance must not connect while the survivor holds the slot. It asks in Redis before connecting
 *   (reclaim()); the survivor closes its extra streams at its next beat, which frees the slot before the
 *   stream's close returns; the fresh instance then connects and takes it.
 * - A fresh instance that connected before the death was noticed has the slot already: the survivor's extra
 *   stream finds no slot (the link's probe), and once an instance started after the dead one's last beat is
 *   seen alive, the survivor drops the takeover and forgets the dead instance.
 */
import type { Logger } from "../log.js";
import type { ComponentLink } from "../xmpp/link.js";
import type { Member, Members } from "./members.js";

/** How often a fresh instance looks whether the slot it asked for is free yet. */
export const GIVE_BACK_POLL_MS = 100;

/** Why a takeover ends when its lease could not be renewed in time (Redis was away) and another took it. */
const LEASE_LOST = "another instance holds the lease";

/** What the keeper needs from the gateway. */
export interface SlotHooks {
  /** A new, not yet started stream for `domain` that serves it like this instance's own; undefined if not served. */
  openStream(domain: string, deadId: string): ComponentLink | undefined;
  /** Lets the adapters take over what they held under the dead instance's id (IRC connection leases). */
  instanceGone(deadId: string): Promise<void>;
  /** Claims the dead instance's pending inbound entries of `domain`; how many. */
  adoptPending(domain: string, deadId: string): Promise<number>;
  takenOver(domain: string): void;
  gaveBack(domain: string): void;
}

interface Held {
  dead: Member;
  since: number;
  links: ComponentLink[];
  /** An extra stream was told by ejabberd that every slot is held (someone else serves the dead slot). */
  noSlot: boolean;
}

export class SlotKeeper {
  private readonly held = new Map<string, Held>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly members: Members,
    private readonly hooks: SlotHooks,
    private readonly log: Logger,
  ) {}

  private serves(domains: readonly string[]): string[] {
    return domains.filter((d) => this.members.domains.includes(d));
  }

  /**
   * Before this instance's streams connect: if a survivor holds the slots of a dead instance (this one's
   * earlier run, or another) for domains this instance serves, ask for them back and wait until they are free.
   * One dead instance's slots at most: an instance fills one slot per domain.
   */
  async reclaim(): Promise<void> {
    const others = await this.members.others();
    const candidates = [
      this.members.instanceId,
      ...others.filter((m) => !m.alive && this.serves(m.domains).length > 0).map((m) => m.id),
    ];
    for (const deadId of candidates) {
      const holder = await this.members.takeoverHolder(deadId);
      if (!holder || holder === this.members.instanceId) continue;
      if (!(await this.members.askGiveBack(deadId))) continue; // another fresh instance asked for this one
      const started = Date.now();
      this.log.info({ deadInstance: deadId, holder }, "asking for a taken-over slot back");
      // A live holder answers at its next beat; a dead one's lease expires within deadAfter.
      const deadline = started + 2 * this.members.times.deadAfterMs + this.members.times.heartbeatMs;
      while ((await this.members.takeoverHolder(deadId)) !== null && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, GIVE_BACK_POLL_MS));
      this.log.info({ deadInstance: deadId, waitedMs: Date.now() - started }, "the slot is free; connecting");
      // Given back: the request has done its job (left in place, it would keep a survivor from taking this
      // instance's slot over should it die soon). Still known: the holder died meanwhile, and whoever takes
      // the slot over next must see the request and give the slot back too.
      if (!(await this.members.known(deadId))) await this.members.clearGiveBack(deadId);
      return;
    }
  }

  /** Beats now and every heartbeatSeconds, and looks after the others at each beat. */
  start(): void {
    const run = () => {
      if (this.ticking || this.stopped) return;
      this.ticking = this.tick()
        .catch((err: unknown) => this.log.warn({ err: (err as Error).message }, "balancing check failed"))
        .finally(() => (this.ticking = undefined));
    };
    run();
    this.timer = setInterval(run, this.members.times.heartbeatMs);
    this.timer.unref();
  }

  /**
   * One of this instance's own streams came online: say so now rather than at the next beat, so that a
   * survivor knows to take that slot over if this instance dies or stops before then.
   */
  streamOnline(): void {
    if (this.stopped || !this.timer) return;
    this.members
      .beat()
      .catch((err: unknown) => this.log.debug({ err: (err as Error).message }, "could not beat"));
  }

  /**
   * Graceful stop, first part: no more takeovers; the extra streams closed and their leases released (another
   * survivor takes those slots over).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.ticking;
    for (const [deadId, held] of this.held) {
      await Promise.all(held.links.map((l) => l.stop()));
      await this.members.releaseTakeover(deadId).catch(() => undefined);
    }
    this.held.clear();
  }

  /**
   * Graceful stop, last part, once this instance's own streams are closed (their slots free): dead from now
   * on, so that a survivor takes the slots over at its next beat, without waiting deadAfterSeconds.
   */
  async leave(): Promise<void> {
    await this.members.leave();
  }

  private async tick(): Promise<void> {
    await this.members.beat();
    const others = await this.members.others();
    const givenBack = new Set<string>();
    for (const [deadId, held] of this.held) {
      if (this.stopped) return;
      const reason = await this.giveBackReason(deadId, held, others);
      if (!reason) continue;
      await this.giveBack(deadId, held, reason);
      givenBack.add(deadId);
    }
    for (const dead of others) {
      if (this.stopped) return;
      if (dead.alive || this.held.has(dead.id) || givenBack.has(dead.id)) continue;
      // An instance that held no slot (it stood by) leaves nothing to take over.
      if (dead.domains.length === 0) await this.members.forget(dead.id);
      if (this.serves(dead.domains).length === 0) continue;
      if (!(await this.members.holdTakeover(dead.id))) continue;
      // Given back by another survivor since `others` was read: the slot is for the fresh instance.
      if ((await this.members.giveBackAsked(dead.id)) || !(await this.members.known(dead.id))) {
        await this.members.releaseTakeover(dead.id);
        continue;
      }
      this.take(dead);
    }
  }

  /** Why the slots of `deadId` should be given up now, or undefined to keep them (and renew the lease). */
  private async giveBackReason(
    deadId: string,
    held: Held,
    others: (Member & { alive: boolean })[],
  ): Promise<string | undefined> {
    if (!(await this.members.holdTakeover(deadId))) return LEASE_LOST;
    if (await this.members.giveBackAsked(deadId)) return "a fresh instance asked for them";
    const now = others.find((m) => m.id === deadId);
    if (!now) return "forgotten";
    if (now.alive) return "the instance is back";
    // This instance too, when it started after the death (its own stream may have taken the free slot). The
    // times come from two hosts' clocks: their skew only matters for a start within that much of the death.
    const filled =
      this.members.startedAt > held.dead.beatAt ||
      others.some(
        (m) =>
          m.alive &&
          m.startedAt > held.dead.beatAt &&
          this.serves(m.domains).some((d) => held.dead.domains.includes(d)),
      );
    if (held.noSlot && filled) return "an instance started since fills the slot";
    return undefined;
  }

  private take(dead: Member): void {
    const held: Held = { dead, since: Date.now(), links: [], noSlot: false };
    this.held.set(dead.id, held);
    const domains = this.serves(dead.domains);
    this.log.warn(
      { deadInstance: dead.id, domains, silentForMs: Date.now() - dead.beatAt },
      "an instance is dead; taking over its slots",
    );
    this.hooks
      .instanceGone(dead.id)
      .catch((err: unknown) =>
        this.log.warn({ err: (err as Error).message, deadInstance: dead.id }, "adapters could not take over"),
      );
    for (const domain of domains) {
      const link = this.hooks.openStream(domain, dead.id);
      if (!link) continue;
      held.links.push(link);
      link.on("noslot", () => (held.noSlot = true));
      link.once("online", () => {
        this.hooks.takenOver(domain);
        this.log.warn(
          { deadInstance: dead.id, domain, sinceLastBeatMs: Date.now() - dead.beatAt },
          "serving a dead instance's slot",
        );
      });
      link.start();
      this.hooks
        .adoptPending(domain, dead.id)
        .then((count) => {
          if (count > 0)
            this.log.info({ deadInstance: dead.id, domain, count }, "claimed its pending entries");
        })
        .catch((err: unknown) =>
          this.log.warn({ err: (err as Error).message, domain }, "could not claim its pending entries"),
        );
    }
  }

  private async giveBack(deadId: string, held: Held, reason: string): Promise<void> {
    this.held.delete(deadId);
    // The slot is free in ejabberd once the stream's close returns: a fresh instance may connect after that.
    await Promise.all(held.links.map((l) => l.stop()));
    if (reason !== LEASE_LOST) {
      // Forgotten before the lease goes, so that no survivor takes it over again meanwhile.
      await this.members.forget(deadId);
      await this.members.releaseTakeover(deadId);
    }
    for (const link of held.links) this.hooks.gaveBack(link.domain);
    this.log.warn(
      { deadInstance: deadId, reason, heldMs: Date.now() - held.since },
      "gave a dead instance's slots back",
    );
  }
}
