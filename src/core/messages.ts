/**
 * Outbound messages: a <message/> from an XMPP user to a contact on an adapter domain becomes an
 * OutboundMessage event for the adapter, after access, registration, size and address checks, and at most
 * once per (sender full JID, stanza id): a resend is answered with what the ledger knows (outcomes.ts).
 */
import { randomUUID } from "node:crypto";
import type { IncomingContext } from "@xmpp/component";
import type { Attachment, OutboundMessage, SendOutcome, UserReport } from "../adapter.js";
import { NS } from "../xmpp/ns.js";
import { GatewayError } from "../xmpp/errors.js";
import { chatMessage, receipt, type Element } from "../xmpp/stanzas.js";
import { guardStanza } from "./boundary.js";
import { bareOf, type ServiceContext } from "./context.js";
import { answerResend, classifySendError } from "./outcomes.js";
import type { ClaimResult } from "../store/idempotency.js";

/** Most jabber:x:oob attachments taken from one message. */
export const MAX_ATTACHMENTS = 10;

function attachmentsOf(stanza: Element): Attachment[] {
  return stanza
    .getChildren("x", NS.OOB)
    .map((x) => ({ url: (x.getChildText("url") ?? "").trim(), desc: x.getChildText("desc") ?? undefined }))
    .filter((a) => a.url !== "");
}

function helpText(svc: ServiceContext): string {
  const example = `${svc.adapter.codec.encode(svc.adapter.prompt.example)}@${svc.domain}`;
  return (
    `This is the ${svc.adapter.name} gateway (${svc.domain}). ${svc.adapter.prompt.desc} ` +
    `Add a contact on ${svc.domain} (for example with your client's "add contact via gateway"), ` +
    `e.g. ${example}.` +
    (svc.adapter.registration ? " Register first through your client's service discovery." : "")
  );
}

export async function handleMessage(svc: ServiceContext, ctx: IncomingContext): Promise<void> {
  const stanza = ctx.stanza;
  const type = stanza.attrs.type ?? "normal";
  // Bounces of what we sent: nothing to answer (never answer an error with an error).
  if (type === "error") {
    svc.log.debug({ stanzaId: stanza.attrs.id, from: stanza.attrs.from }, "message bounced by the server");
    const condition = stanza
      .getChild("error")
      ?.children.find((c) => typeof c !== "string" && c.attrs.xmlns === NS.STANZAS);
    if (svc.adapter.report && stanza.attrs.id)
      await reportToAdapter(svc, {
        kind: "error",
        from: stanza.attrs.from ?? "",
        user: bareOf(stanza.attrs.from ?? ""),
        toJid: bareOf(stanza.attrs.to ?? ""),
        id: stanza.attrs.id,
        ...(condition && typeof condition !== "string" ? { condition: condition.name } : {}),
      });
    return;
  }
  await guardStanza(
    svc.log,
    ctx,
    (el) => svc.link.send(el),
    async () => {
      const from = stanza.attrs.from ?? "";
      const user = bareOf(from);
      const toJid = bareOf(stanza.attrs.to ?? "");
      const body = stanza.getChildText("body");
      const attachments = attachmentsOf(stanza);
      // Chat states, receipts and markers without a body carry nothing to send on; an adapter that sends
      // messages of its own may take receipts and markers for them (Adapter.report).
      // A subject alone is meaningful (an XEP-0045 §8.1 subject change).
      if (body === null && attachments.length === 0 && stanza.getChild("subject") === undefined) {
        const received = stanza.getChild("received", NS.RECEIPTS)?.attrs.id;
        const displayed = stanza.getChild("displayed", NS.MARKERS)?.attrs.id;
        const reportedId = typeof received === "string" ? received : displayed;
        const reportable = typeof reportedId === "string" && reportedId !== "" && toJid !== svc.domain;
        if (svc.adapter.report && reportable && svc.access.allows(user))
          await reportToAdapter(svc, {
            kind: typeof received === "string" ? "received" : "displayed",
            from,
            user,
            toJid,
            id: reportedId,
          });
        return;
      }
      if (type === "headline") return;

      if (toJid === svc.domain) {
        await svc.link.send(chatMessage(svc.domain, from, randomUUID(), helpText(svc)));
        return;
      }
      svc.access.check(user);
      const text = body ?? "";
      const chars = [...text].length;
      if (chars > svc.limits.maxBodyChars)
        throw new GatewayError(
          "not-acceptable",
          `The message is ${chars} characters long; the limit is ${svc.limits.maxBodyChars}.`,
        );
      if (attachments.length > MAX_ATTACHMENTS)
        throw new GatewayError(
          "not-acceptable",
          `At most ${MAX_ATTACHMENTS} attachments can be sent at once.`,
        );
      const to = svc.adapter.codec.decode(toJid.slice(0, toJid.lastIndexOf("@")));
      const id = stanza.attrs.id || randomUUID();

      const receiptRequested =
        stanza.getChild("request", NS.RECEIPTS) !== undefined && stanza.attrs.id !== undefined;
      const claimed = await registeredClaim(svc, user, from, id, toJid);
      const { registration } = claimed;
      if ("previous" in claimed) {
        svc.log.info(
          { jid: user, stanzaId: id, state: claimed.previous.state },
          "outbound message already claimed: not sent again",
        );
        svc.metrics.message(svc.key, "out", "duplicate");
        const answer = answerResend(svc, stanza, claimed.previous, receiptRequested);
        if (answer) await svc.link.send(answer);
        return;
      }
      const { claim } = claimed;
      const message: OutboundMessage = {
        from,
        user,
        toJid,
        toFull: stanza.attrs.to ?? toJid,
        to,
        id,
        type: type === "groupchat" ? "groupchat" : type === "chat" ? "chat" : "normal",
        body: text,
        subject: stanza.getChildText("subject") ?? undefined,
        thread: stanza.getChildText("thread") ?? undefined,
        attachments,
        receiptRequested,
        registration,
        handOff: () => claim.handOff(),
      };
      svc.log.debug({ jid: user, stanzaId: id, body: text }, "outbound message");
      let outcome: SendOutcome;
      try {
        outcome = await svc.adapter.send(message);
      } catch (err) {
        const verdict = classifySendError(err, claim);
        svc.metrics.message(
          svc.key,
          "out",
          verdict === "refused" ? (err instanceof GatewayError ? err.condition : "error") : "maybe-sent",
        );
        if (verdict === "refused") {
          // Refused: the network certainly did not take it, so the user may send it again.
          await claim.settle({ state: "refused" }).catch((e: unknown) => unsettled(svc, id, e));
          throw err;
        }
        // Maybe sent: the claim is kept with the answer, and the sender is told (never "nothing was done").
        await claim
          .settle({ state: "maybe", condition: verdict.condition, text: verdict.message })
          .catch((e: unknown) => unsettled(svc, id, e));
        throw verdict;
      }
      // The network has it: a store failure now must not tell the sender "nothing was done". The ledger
      // records the outcome once the store is back; if the process dies first, the claim is still in flight
      // and the sender is told it may not have arrived: a false alarm, never a second send.
      await claim.settle({ state: outcome.status }).catch((e: unknown) => unsettled(svc, id, e));
      svc.log.info({ jid: user, stanzaId: id, outcome: outcome.status }, "outbound message handed on");
      svc.metrics.message(svc.key, "out", outcome.status);
      if (outcome.status === "delivered" && message.receiptRequested)
        await svc.link.send(receipt(stanza.attrs.to ?? toJid, from, randomUUID(), id));
    },
  );
}

/** Hands a report to the adapter; a failure is logged, never answered (a receipt gets no error back). */
async function reportToAdapter(svc: ServiceContext, report: UserReport): Promise<void> {
  try {
    await svc.adapter.report?.(report);
  } catch (err) {
    svc.log.warn({ err: (err as Error).message, kind: report.kind, stanzaId: report.id }, "report not taken");
  }
}

/**
 * The sender's registration and the claim of the message, asked for together (one round trip to Redis, not
 * two in a row). An adapter that needs a registration refuses an unregistered sender: a claim made meanwhile is
 * given back (settled as refused, so the same stanza may be sent once registered), a claim found is left alone.
 */
async function registeredClaim(
  svc: ServiceContext,
  user: string,
  from: string,
  id: string,
  toJid: string,
): Promise<ClaimResult & { registration: Record<string, string> | null }> {
  const [registration, claimed] = await Promise.allSettled([
    svc.registrations.get(user),
    svc.ledger.claim(svc.key, from, id, toJid),
  ]);
  const made = claimed.status === "fulfilled" && "claim" in claimed.value ? claimed.value.claim : undefined;
  const giveBack = () => made?.settle({ state: "refused" }).catch((e: unknown) => unsettled(svc, id, e));
  if (registration.status === "rejected") {
    await giveBack();
    throw registration.reason;
  }
  if (svc.adapter.requiresRegistration && !registration.value) {
    await giveBack();
    throw new GatewayError(
      "registration-required",
      `Register with ${svc.domain} before sending messages through the ${svc.adapter.name} gateway.`,
    );
  }
  if (claimed.status === "rejected") throw claimed.reason;
  return { ...claimed.value, registration: registration.value };
}

function unsettled(svc: ServiceContext, stanzaId: string, err: unknown): void {
  svc.log.warn({ stanzaId, err: (err as Error).message }, "could not record the outcome of a send");
}
