/**
 * XMPP `<thread>` ↔ mail threading (RFC 5322 §3.6.4, RFC 6121 §5.2.5): per user and thread, the subject and
 * the Message-IDs so far; per Message-ID, whose thread it is. A mail that answers one of them (In-Reply-To,
 * then References) lands in the same `<thread>`, and the user's reply in that thread answers it.
 */
import { createHash } from "node:crypto";
import type { IdMap } from "../../src/adapter.js";
import { trimReferences } from "./compose.js";

/** How long a conversation is remembered after its last mail (replies to older mail start a new thread). */
export const THREAD_TTL_SECONDS = 60 * 24 * 3600;
/**
 * A message without `<thread>` (most chat clients send none) continues the latest conversation with the
 * same contact when it is at most this old; after that it starts a new mail conversation.
 */
export const CONVERSATION_TTL_SECONDS = 7 * 24 * 3600;
/** Version of the stored records, so a later release can read these. */
const VERSION = "1";

export interface ThreadState {
  subject: string | undefined;
  /** Message-IDs of the conversation, oldest first (trimmed to the root and the latest). */
  refs: string[];
}

/** A stable `<thread>` for a conversation that started outside: derived from its root Message-ID. */
export function threadIdFor(rootMessageId: string): string {
  return `mail-${createHash("sha256").update(rootMessageId).digest("base64url").slice(0, 22)}`;
}

function parseRefs(value: string | undefined): string[] {
  if (!value) return [];
  try {
    const parsed: unknown = JSON.parse(value);
    return Array.isArray(parsed) ? parsed.filter((r): r is string => typeof r === "string") : [];
  } catch {
    return [];
  }
}

export class ThreadStore {
  constructor(private readonly ids: IdMap) {}

  async get(user: string, thread: string): Promise<ThreadState | null> {
    const record = await this.ids.get("thread", `${user} ${thread}`);
    if (!record) return null;
    return { subject: record.subject || undefined, refs: parseRefs(record.refs) };
  }

  /** The user's thread a mail belongs to, from its In-Reply-To, then its References (latest first). */
  async find(
    user: string,
    inReplyTo: string | undefined,
    references: readonly string[],
  ): Promise<string | null> {
    // Only the root and the latest references are looked at: a mail can carry hundreds.
    const refs = trimReferences(references).reverse();
    for (const id of [...(inReplyTo ? [inReplyTo] : []), ...refs]) {
      const record = await this.ids.get("mid", `${user} ${id}`);
      if (record?.thread) return record.thread;
    }
    return null;
  }

  /** The thread of the latest mail between the user and a contact address, within CONVERSATION_TTL_SECONDS. */
  async latest(user: string, contact: string): Promise<string | null> {
    return (await this.ids.get("latest", `${user} ${contact.toLowerCase()}`))?.thread ?? null;
  }

  /** Adds a mail (sent to or received from `contact`) to the thread. */
  async add(
    user: string,
    contact: string,
    thread: string,
    messageId: string,
    previous: ThreadState | null,
    subject: string | undefined,
  ) {
    const refs = trimReferences([...(previous?.refs ?? []).filter((r) => r !== messageId), messageId]);
    // Three independent records, written together (one round trip to Redis).
    await Promise.all([
      this.ids.put(
        "thread",
        `${user} ${thread}`,
        { v: VERSION, subject: previous?.subject ?? subject ?? "", refs: JSON.stringify(refs) },
        THREAD_TTL_SECONDS,
      ),
      this.ids.put("mid", `${user} ${messageId}`, { v: VERSION, thread }, THREAD_TTL_SECONDS),
      this.ids.put(
        "latest",
        `${user} ${contact.toLowerCase()}`,
        { v: VERSION, thread },
        CONVERSATION_TTL_SECONDS,
      ),
    ]);
  }
}
