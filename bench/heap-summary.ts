/**
 * Summarises a V8 heap snapshot (`.heapsnapshot`, from `node --heapsnapshot-signal=…` or
 * `v8.writeHeapSnapshot()`) by constructor: self size and count of the objects of each, largest first, with
 * strings, code, arrays and the like grouped by their kind. Self sizes only (no retained sizes): enough to see
 * what is numerous or big.
 * Run: `npx tsx bench/heap-summary.ts FILE.heapsnapshot [TOP]` (TOP rows, default 40).
 */
import { readFileSync } from "node:fs";

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
  nodes: number[];
  strings: string[];
}

const [file, top = "40"] = process.argv.slice(2);
if (!file) throw new Error("usage: heap-summary.ts FILE.heapsnapshot [TOP]");
const snap = JSON.parse(readFileSync(file, "utf8")) as Snapshot;
const fields = snap.snapshot.meta.node_fields;
const types = snap.snapshot.meta.node_types[0];
const width = fields.length;
const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((f) => fields.indexOf(f)) as [
  number,
  number,
  number,
];
const groups = new Map<string, { count: number; bytes: number }>();
let total = 0;
for (let i = 0; i < snap.nodes.length; i += width) {
  const type = types[snap.nodes[i + typeAt]!] ?? "?";
  const name = snap.strings[snap.nodes[i + nameAt]!] ?? "?";
  const bytes = snap.nodes[i + sizeAt]!;
  // Objects and closures by constructor / function name; everything else by its kind.
  const key = type === "object" || type === "closure" ? `${type} ${name}` : `(${type})`;
  const g = groups.get(key) ?? { count: 0, bytes: 0 };
  g.count++;
  g.bytes += bytes;
  groups.set(key, g);
  total += bytes;
}
const rows = [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, Number(top));
process.stdout.write(
  `total self size ${(total / 2 ** 20).toFixed(1)} MiB in ${snap.nodes.length / width} nodes\n`,
);
for (const [key, g] of rows)
  process.stdout.write(
    `${(g.bytes / 2 ** 10).toFixed(0).padStart(9)} KiB ${String(g.count).padStart(8)}  ${key}\n`,
  );
