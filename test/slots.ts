/**
 * Component domains the shared test bed's XMPP servers accept. Each test file that runs a gateway takes a
 * slot (a unique number) so parallel files never fight over a component domain.
 */
export const SLOTS = 96;
export const TEST_SECRET = "test-component-secret";
/** Adapter keys that get a domain per slot. */
export const SLOT_ADAPTERS = ["echo", "sms", "mail", "irc", "alerts"] as const;

export function slotDomain(slot: number, adapter: (typeof SLOT_ADAPTERS)[number]): string {
  return `${adapter}${slot}.localhost`;
}

export function slotComponents(): { domain: string; secret: string }[] {
  const list: { domain: string; secret: string }[] = [];
  for (let slot = 1; slot <= SLOTS; slot++)
    for (const adapter of SLOT_ADAPTERS)
      list.push({ domain: slotDomain(slot, adapter), secret: TEST_SECRET });
  return list;
}
