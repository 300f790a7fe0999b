/**
 * XEP-0059 result set management: reading a request's `<set/>` and cutting one page out of an ordered list
 * whose items each have a unique key (a disco item's JID, an archive entry's id). Pure functions.
 */
import type { Element } from "@xmpp/component";
import { NS } from "./ns.js";
import { GatewayError } from "./errors.js";

/** What a requester asked for (XEP-0059 §2). `before: ""` is the last page (§2.5). */
export interface RsmRequest {
  max?: number;
  after?: string;
  before?: string;
  /** §2.4: the page starting at this position. */
  index?: number;
}

/** One page and what its `<set/>` answer says (§2.1: first with its index, last, count). */
export interface RsmPage<T> {
  items: T[];
  /** Items in the whole list. */
  count: number;
  /** Position of the page's first item in the whole list. */
  firstIndex: number;
  first?: string;
  last?: string;
}

/** The page size when none is asked for, and the largest one granted. */
export interface RsmLimits {
  defaultMax: number;
  maxMax: number;
}

/** Digits only (XEP-0059 `max` and `index` are non-negative integers). */
const COUNT = /^\d{1,9}$/;

function count(text: string, what: string): number {
  const trimmed = text.trim();
  if (!COUNT.test(trimmed))
    throw new GatewayError(
      "bad-request",
      `The result set ${what} "${trimmed}" is not a non-negative number.`,
    );
  return Number(trimmed);
}

/** The `<set xmlns=rsm/>` of a query, or undefined when it has none. Throws bad-request on nonsense. */
export function parseRsm(query: Element): RsmRequest | undefined {
  const set = query.getChild("set", NS.RSM);
  if (!set) return undefined;
  const request: RsmRequest = {};
  const max = set.getChild("max");
  if (max) request.max = count(max.text(), "max");
  const index = set.getChild("index");
  if (index) request.index = count(index.text(), "index");
  const after = set.getChild("after");
  if (after) {
    if (after.text() === "") throw new GatewayError("bad-request", "The result set <after/> is empty.");
    request.after = after.text();
  }
  const before = set.getChild("before");
  if (before) request.before = before.text();
  if (request.after !== undefined && request.before !== undefined)
    throw new GatewayError("bad-request", "Ask for the page <after/> an item or <before/> it, not both.");
  return request;
}

/**
 * The page of `all` a request asks for: `max` items (the default when not asked, never more than
 * `maxMax`) after or before a key, from an index, or from the start. A key not in the list is
 * item-not-found (§2.6: the requester's list went stale; it starts again).
 */
export function pageOf<T>(
  all: readonly T[],
  keyOf: (item: T) => string,
  request: RsmRequest | undefined,
  limits: RsmLimits,
): RsmPage<T> {
  const max = Math.min(request?.max ?? limits.defaultMax, limits.maxMax);
  const position = (key: string): number => {
    const at = all.findIndex((item) => keyOf(item) === key);
    if (at < 0)
      throw new GatewayError(
        "item-not-found",
        `"${key}" is not in this list (any more); ask for the first page again.`,
      );
    return at;
  };
  let start: number;
  if (request?.after !== undefined) start = position(request.after) + 1;
  else if (request?.before !== undefined) {
    const end = request.before === "" ? all.length : position(request.before);
    start = Math.max(0, end - max);
    return page(all, keyOf, start, Math.min(max, end - start));
  } else start = Math.min(request?.index ?? 0, all.length);
  return page(all, keyOf, start, max);
}

function page<T>(all: readonly T[], keyOf: (item: T) => string, start: number, size: number): RsmPage<T> {
  const items = all.slice(start, start + size);
  const first = items[0];
  const last = items[items.length - 1];
  return {
    items,
    count: all.length,
    firstIndex: start,
    ...(first === undefined ? {} : { first: keyOf(first) }),
    ...(last === undefined ? {} : { last: keyOf(last) }),
  };
}
