/**
 * A flame graph (SVG) from a V8 CPU profile (`node --cpu-prof`): one box per function in a call path, as wide
 * as the time spent in it and below it, callers under callees. Frames are named `function (package)` for
 * dependencies, `function (file:line)` for the gateway's own code and Node's; the colour says which (the
 * gateway's own code orange, dependencies blue, Node and V8 grey). Hover a box for its share of the time.
 * Idle time is left out, so the widths are shares of the time the process was busy.
 *
 * Run: `npx tsx bench/flamegraph.ts PROFILE.cpuprofile OUT.svg [TITLE]`.
 */
import { readFile, writeFile } from "node:fs/promises";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
export interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}
interface Frame {
  name: string;
  kind: "ours" | "dependency" | "runtime";
  time: number;
  children: Map<string, Frame>;
}

const WIDTH = 1200;
const ROW = 16;
/** Boxes narrower than this (pixels) are not drawn; their time still counts in their callers. */
const MIN_WIDTH = 0.5;
const LEFT_OUT = new Set(["(idle)", "(root)"]);

function frameOf(node: ProfileNode): { name: string; kind: Frame["kind"] } {
  const { functionName, url, lineNumber } = node.callFrame;
  const fn = functionName || "(anonymous)";
  const dependency = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (dependency) return { name: `${fn} (${dependency[1]})`, kind: "dependency" };
  const own = /\/dist\/(.*)$/.exec(url);
  if (own) return { name: `${fn} (${own[1]}:${lineNumber + 1})`, kind: "ours" };
  return { name: url ? `${fn} (${url.replace(/^.*\//, "")}:${lineNumber + 1})` : fn, kind: "runtime" };
}

/** The profile's samples merged into one tree of call paths, root first. */
export function callTree(profile: Profile): Frame {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const root: Frame = { name: "all", kind: "runtime", time: 0, children: new Map() };
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    const path: ProfileNode[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur))
      path.push(byId.get(cur)!);
    if (path.some((n) => n.callFrame.functionName === "(idle)")) return;
    root.time += dt;
    let at = root;
    for (const node of path.reverse()) {
      if (LEFT_OUT.has(node.callFrame.functionName)) continue;
      const { name, kind } = frameOf(node);
      let next = at.children.get(name);
      if (!next) at.children.set(name, (next = { name, kind, time: 0, children: new Map() }));
      next.time += dt;
      at = next;
    }
  });
  return root;
}

const escape = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

const COLOURS: Record<Frame["kind"], string> = { ours: "#f0a040", dependency: "#7aa7e0", runtime: "#c8c8c8" };

/** Levels of the tree that have a box wide enough to draw. */
function depthOf(frame: Frame, scale: number): number {
  if (frame.time * scale < MIN_WIDTH) return 0;
  let deepest = 0;
  for (const child of frame.children.values()) deepest = Math.max(deepest, depthOf(child, scale));
  return deepest + 1;
}

export function renderSvg(root: Frame, title: string): string {
  const scale = WIDTH / Math.max(root.time, 1);
  const height = depthOf(root, scale) * ROW + 40;
  // A flame graph grows upwards from its root, at the bottom.
  const top = (level: number) => height - 10 - (level + 1) * ROW;
  const boxes: string[] = [];
  const draw = (frame: Frame, x: number, level: number) => {
    const width = frame.time * scale;
    if (width < MIN_WIDTH) return;
    const share = ((frame.time / root.time) * 100).toFixed(2);
    const label = width > 30 ? escape(frame.name.slice(0, Math.floor(width / 6.5))) : "";
    boxes.push(
      `<g><title>${escape(frame.name)}: ${share}%</title>` +
        `<rect x="${x.toFixed(1)}" y="${top(level)}" width="${width.toFixed(1)}" height="${ROW - 1}" ` +
        `fill="${COLOURS[frame.kind]}"/>` +
        (label ? `<text x="${(x + 3).toFixed(1)}" y="${top(level) + 11}">${label}</text>` : "") +
        `</g>`,
    );
    let childX = x;
    for (const child of [...frame.children.values()].sort((a, b) => a.name.localeCompare(b.name))) {
      draw(child, childX, level + 1);
      childX += child.time * scale;
    }
  };
  draw(root, 0, 0);
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" ` +
    `font-family="monospace" font-size="11">\n` +
    `<text x="4" y="16" font-size="14">${escape(title)} (busy time ${(root.time / 1000).toFixed(0)} ms; ` +
    `orange: gateway, blue: dependencies, grey: Node/V8)</text>\n` +
    boxes.join("\n") +
    `\n</svg>\n`
  );
}

async function main(): Promise<void> {
  const [input, output, title] = process.argv.slice(2);
  if (!input || !output) throw new Error("usage: flamegraph.ts PROFILE.cpuprofile OUT.svg [TITLE]");
  const profile = JSON.parse(await readFile(input, "utf8")) as Profile;
  await writeFile(output, renderSvg(callTree(profile), title ?? input));
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
