/**
 * Outcomes of a send (DESIGN.md): how an adapter's answer becomes the ledger's state, what a resend of an
 * id already claimed is answered, and how later reports from the network (receipts, errors) update it.
 */
import { randomUUID } from "node:crypto";
import type { Element } from "@xmpp/component";
import type { InboundEvent } from "../adapter.js";
import { MaybeSent, SendRefused } from "../adapter.js";
import type { Claim, LedgerState } from "../store/idempotency.js";
import { GatewayError } from "../xmpp/errors.js";
import { chatMessage, receipt } from "../xmpp/stanzas.js";
import type { ServiceContext } from "./context.js";

/** What every "maybe sent" answer of the core ends with, so the sender knows not to resend blindly. */
export const MAYBE_SENT_TAIL =
  "It may or may not have arrived, and it will not be sent again: check with the recipient before resending.";

/**
 * Classifies what the adapter threw: a refusal (the network certainly did not take it) or maybe sent.
 * Not marked either way, an error counts as maybe sent once the adapter handed the message off (the safe
 * default: never a second send), and as a refusal before (nothing left the process).
 */
export function classifySendError(err: unknown, claim: Claim): "refused" | MaybeSent {
  if (err instanceof MaybeSent) return err;
  if (err instanceof SendRefused || !claim.handedOff) return "refused";
  const said =
    err instanceof GatewayError
      ? err.message.trim()
      : "Something went wrong while this message was being handed to the network.";
  return new MaybeSent("remote-server-timeout", `${said} ${MAYBE_SENT_TAIL}`, { cause: err });
}

/**
 * The answer to a resend of an id already claimed (a client resending after a reconnect): what is known,
 * never a second send. Returns the stanza to send, or throws the error the first send got; undefined while
 * the first send is still under way (its own outcome will answer this id).
 */
export function answerResend(
  svc: ServiceContext,
  stanza: Element,
  previous: LedgerState,
  receiptRequested: boolean,
): Element | undefined {
  const from = stanza.attrs.from ?? "";
  const to = stanza.attrs.to ?? "";
  const id = stanza.attrs.id ?? "";
  switch (previous.state) {
    case "queued":
    case "sending":
      return undefined;
    case "maybe":
    case "failed":
      throw new GatewayError(previous.condition, previous.text);
    case "delivered":
      // XEP-0184 §5.1: the receipt again, from the contact, for the same id.
      if (receiptRequested) return receipt(to, from, randomUUID(), id);
      return chatMessage(
        svc.domain,
        from,
        randomUUID(),
        `Your message to ${to} (id ${id}) was already delivered; it was not sent again.`,
      );
    case "accepted":
    case "unknown":
      return chatMessage(
        svc.domain,
        from,
        randomUUID(),
        `Your message to ${to} (id ${id}) was already sent; it was not sent again.`,
      );
  }
}

/**
 * A later report about a message the ledger remembers, as an adapter hands it to `ctx.deliver()`: a
 * receipt (delivered) or an error for the stanza id (failed), so a resend is answered the same way.
 */
export async function recordReport(svc: ServiceContext, event: InboundEvent): Promise<void> {
  if (event.kind === "receipt")
    await svc.ledger.report(svc.key, event.to, event.receiptFor, { state: "delivered" });
  else if (event.kind === "error")
    await svc.ledger.report(svc.key, event.to, event.id, {
      state: "failed",
      condition: event.condition,
      text: event.text,
    });
}
