/**
 * The error of an inbound event the schema (event-schema.ts) refused. On its own, with no imports, so the
 * adapter contract (src/adapter.ts) can export it without loading the schema and the stanza builders.
 */

/** An event refused by the schema: the adapter answers its network as it does for any failed delivery. */
export class InvalidInboundEventError extends Error {
  constructor(readonly problems: string[]) {
    super(`Inbound event refused: ${problems.join("; ")}`);
    this.name = "InvalidInboundEventError";
  }
}
