/**
 * The error boundary: one per inbound stanza. A GatewayError becomes a stanza error with its human text;
 * anything else is logged with the stanza id and answered internal-server-error.
 */
import type { Element, IncomingContext } from "@xmpp/component";
import type { Logger } from "../log.js";
import { GatewayError } from "../xmpp/errors.js";
import { errorReply, stanzaError } from "../xmpp/stanzas.js";

/** Returned by an iq handler for an empty result. */
export const EMPTY_RESULT = true as const;

const INTERNAL_TEXT = "The gateway failed to handle this request; the problem has been logged.";
const STORE_OUTAGE_TEXT =
  "The gateway cannot reach its message store right now, so nothing was done. Try again in a minute.";

/** Errors ioredis raises while Redis is unreachable (commands fail fast: no offline queue). */
export function isStoreOutage(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === "InboxUnavailableError" || err.name === "MaxRetriesPerRequestError") return true;
  return /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET/.test(err.message);
}

/** The <error/> element for a thrown value, logging what is not a GatewayError. */
export function errorElementFor(err: unknown, log: Logger, stanza: Element): Element {
  if (err instanceof GatewayError) {
    log.info({ stanzaId: stanza.attrs.id, condition: err.condition }, err.message);
    return stanzaError(err.condition, err.type, err.message);
  }
  if (isStoreOutage(err)) {
    log.warn({ stanzaId: stanza.attrs.id, err: (err as Error).message }, "store unavailable");
    return stanzaError("internal-server-error", "wait", STORE_OUTAGE_TEXT);
  }
  log.error({ stanzaId: stanza.attrs.id, err }, "unexpected error handling a stanza");
  return stanzaError("internal-server-error", "cancel", INTERNAL_TEXT);
}

/** Wraps an iqCallee handler: errors are returned as <error/> (iqCallee then builds the error iq). */
export function guardIq<C extends IncomingContext>(
  log: Logger,
  handler: (ctx: C) => Promise<Element | undefined | true> | Element | undefined | true,
): (ctx: C) => Promise<Element | undefined | true> {
  return async (ctx) => {
    try {
      // iqCallee answers service-unavailable for undefined: `true` means an empty result.
      return await handler(ctx);
    } catch (err) {
      return errorElementFor(err, log, ctx.stanza);
    }
  };
}

/** Runs a message/presence handler; on error sends the error stanza back (never for type="error"). */
export async function guardStanza(
  log: Logger,
  ctx: IncomingContext,
  send: (el: Element) => Promise<void>,
  handler: () => Promise<void>,
): Promise<void> {
  try {
    await handler();
  } catch (err) {
    if (ctx.stanza.attrs.type === "error") return;
    const el = errorElementFor(err, log, ctx.stanza);
    await send(errorReply(ctx.stanza, el)).catch((e: unknown) =>
      log.warn({ err: (e as Error).message }, "could not send an error reply"),
    );
  }
}
