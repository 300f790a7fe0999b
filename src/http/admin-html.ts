/**
 * The admin page's HTML, rendered on the server: plain forms, no script, no external resource. Every value
 * that comes from outside goes through esc().
 */
import type { CommandResult, Form, FormField } from "../adapter.js";
import type { RecentError } from "./recent-errors.js";
import type { Readiness } from "./server.js";

/** Seconds between automatic reloads of the dashboard (live state without a script). */
export const DASHBOARD_REFRESH_SECONDS = 15;

export function esc(value: unknown): string {
  return String(value)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

const STYLE = `
body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:70rem;color:#222}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:1.6rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}
.ok{color:#176f2c;font-weight:600}.bad{color:#b00020;font-weight:600}.warn{color:#8a5a00}
.note{padding:.6rem;border:1px solid #ccc;margin:.8rem 0}.note.error{border-color:#b00020}.note.warn{border-color:#8a5a00}
label{display:block;margin:.6rem 0 .2rem}input[type=text],input[type=password],select,textarea{width:28rem;max-width:100%}
form.inline{display:inline}nav{margin-bottom:1rem}`;

export function page(title: string, body: string, options: { refresh?: number } = {}): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
${options.refresh ? `<meta http-equiv="refresh" content="${options.refresh}">` : ""}
<title>${esc(title)} · xmpp-gateway</title><style>${STYLE}</style></head>
<body>${body}</body></html>`;
}

export function loginPage(message?: string): string {
  return page(
    "Log in",
    `<h1>xmpp-gateway administration</h1>
${message ? `<p class="note error" role="alert">${esc(message)}</p>` : ""}
<form method="post" action="/admin/login">
<label for="token">Admin token</label>
<input type="password" id="token" name="token" autocomplete="current-password" required autofocus>
<p><button type="submit">Log in</button></p>
</form>`,
  );
}

export interface AdapterView {
  key: string;
  name: string;
  domain: string;
  online: boolean;
  reconnects: number;
  retryDelayMs: number | undefined;
  inboxDepth: number | string;
  inboxOldestSeconds: number | string;
  registeredUsers: number | string;
  actions: { node: string; name: string; hasForm: boolean }[];
  reports: { name: string; result: CommandResult }[];
}

export interface DashboardView {
  ready: Readiness;
  adapters: AdapterView[];
  recentErrors: RecentError[];
  actor: string;
}

function csrfField(csrf: string): string {
  return `<input type="hidden" name="csrf" value="${esc(csrf)}">`;
}

function age(seconds: number | string): string {
  if (typeof seconds === "string") return esc(seconds);
  if (seconds === 0) return "—";
  return seconds < 120 ? `${seconds.toFixed(1)} s` : `${Math.round(seconds / 60)} min`;
}

export function resultBody(result: CommandResult): string {
  const type = result.noteType ?? "info";
  const form = result.form;
  return `<p class="note ${esc(type)}" role="status">${esc(result.note)}</p>${form ? resultForm(form) : ""}`;
}

function resultForm(form: Form): string {
  const rows = form.fields
    .filter((f) => f.type !== "hidden")
    .map((f) => {
      const values = Array.isArray(f.value) ? f.value : f.value === undefined ? [] : [f.value];
      const shown = values.length ? values.map((v) => esc(v)).join("<br>") : "<em>none</em>";
      return `<tr><th scope="row">${esc(f.label ?? f.var)}</th><td>${shown}</td></tr>`;
    })
    .join("");
  return `${form.title ? `<h3>${esc(form.title)}</h3>` : ""}<table>${rows}</table>`;
}

export function dashboard(view: DashboardView, csrf: string): string {
  const checks = Object.entries(view.ready.checks)
    .map(([name, state]) => {
      const good = state === "ok" || state === "online";
      return `<tr><td>${esc(name)}</td><td class="${good ? "ok" : "bad"}">${esc(state)}</td></tr>`;
    })
    .join("");
  const adapters = view.adapters
    .map(
      (a) => `<tr data-adapter="${esc(a.key)}"><td>${esc(a.name)} (<code>${esc(a.key)}</code>)</td>
<td>${esc(a.domain)}</td>
<td class="${a.online ? "ok" : "bad"}" data-stream>${a.online ? "online" : `down${a.retryDelayMs ? `, retrying within ${Math.ceil(a.retryDelayMs / 1000)} s` : ""}`}</td>
<td>${a.reconnects}</td><td data-queue>${esc(a.inboxDepth)}</td><td>${age(a.inboxOldestSeconds)}</td>
<td data-users>${esc(a.registeredUsers)}</td></tr>`,
    )
    .join("");
  const actions = view.adapters
    .map((a) => {
      if (!a.actions.length) return "";
      const items = a.actions
        .map((c) => {
          const url = `/admin/commands/${encodeURIComponent(a.key)}/${encodeURIComponent(c.node)}`;
          return c.hasForm
            ? `<li><a href="${esc(url)}">${esc(c.name)}</a></li>`
            : `<li><form class="inline" method="post" action="${esc(url)}">${csrfField(csrf)}<button type="submit">${esc(c.name)}</button></form></li>`;
        })
        .join("");
      return `<h3>${esc(a.name)} (${esc(a.domain)})</h3><ul>${items}</ul>`;
    })
    .join("");
  const reports = view.adapters
    .flatMap((a) =>
      a.reports.map(
        (r) => `<section><h3>${esc(a.name)}: ${esc(r.name)}</h3>${resultBody(r.result)}</section>`,
      ),
    )
    .join("");
  const errors = view.recentErrors.length
    ? `<table><tr><th>Time (UTC)</th><th>Level</th><th>What</th><th>Details</th></tr>${view.recentErrors
        .map(
          (e) =>
            `<tr><td>${esc(e.at.replace("T", " ").slice(0, 19))}</td><td class="${e.level === "warn" ? "warn" : "bad"}">${esc(e.level)}</td><td>${esc(e.message)}</td><td>${Object.entries(
              e.fields,
            )
              .map(([k, v]) => `${esc(k)}: ${esc(v)}`)
              .join("<br>")}</td></tr>`,
        )
        .join("")}</table>`
    : "<p>None since the gateway started.</p>";
  return page(
    "Status",
    `<h1>xmpp-gateway</h1>
<nav><form class="inline" method="post" action="/admin/logout">${csrfField(csrf)}<button type="submit">Log out</button></form>
Actions run as <code>${esc(view.actor)}</code>. This page reloads every ${DASHBOARD_REFRESH_SECONDS} s.</nav>
<h2>Health</h2>
<p id="readiness" class="${view.ready.ready ? "ok" : "bad"}">${view.ready.ready ? "Ready" : "Not ready"}</p>
<table>${checks}</table>
<h2>Adapters</h2>
<table id="adapters"><tr><th>Adapter</th><th>Domain</th><th>Component stream</th><th>Reconnects</th><th>Inbound queue</th><th>Oldest waiting</th><th>Registered users</th></tr>${adapters}</table>
${reports ? `<h2>Reports</h2>${reports}` : ""}
<h2>Actions</h2>${actions || "<p>No admin commands.</p>"}
<h2>Recent errors</h2>${errors}`,
    { refresh: DASHBOARD_REFRESH_SECONDS },
  );
}

function fieldInput(field: FormField): string {
  const id = `f-${field.var}`;
  const name = esc(field.var);
  const label = `<label for="${esc(id)}">${esc(field.label ?? field.var)}${field.required ? " *" : ""}</label>`;
  const value = Array.isArray(field.value) ? field.value : field.value === undefined ? [] : [field.value];
  const first = esc(value[0] ?? "");
  const required = field.required ? " required" : "";
  const desc = field.desc ? `<small>${esc(field.desc)}</small>` : "";
  switch (field.type) {
    case "fixed":
      return `<p>${value.map((v) => esc(v)).join("<br>")}</p>`;
    case "hidden":
      return `<input type="hidden" name="${name}" value="${first}">`;
    case "boolean":
      return `<label><input type="checkbox" name="${name}" value="true"${["1", "true"].includes(value[0] ?? "") ? " checked" : ""}> ${esc(field.label ?? field.var)}</label>${desc}`;
    case "list-single":
      return `${label}<select id="${esc(id)}" name="${name}"${required}>${(field.options ?? [])
        .map(
          (o) =>
            `<option value="${esc(o.value)}"${o.value === value[0] ? " selected" : ""}>${esc(o.label)}</option>`,
        )
        .join("")}</select>${desc}`;
    case "text-multi":
      return `${label}<textarea id="${esc(id)}" name="${name}" rows="4"${required}>${value.map((v) => esc(v)).join("\n")}</textarea>${desc}`;
    case "text-private":
      return `${label}<input type="password" id="${esc(id)}" name="${name}" autocomplete="off"${required}>${desc}`;
    default:
      return `${label}<input type="text" id="${esc(id)}" name="${name}" value="${first}"${required}>${desc}`;
  }
}

export function commandPage(
  adapter: { key: string; name: string; domain: string },
  command: { node: string; name: string },
  form: Form,
  csrf: string,
  /** The answer of the previous step, when this page is a command's next step (a confirmation). */
  previous?: CommandResult,
): string {
  const url = `/admin/commands/${encodeURIComponent(adapter.key)}/${encodeURIComponent(command.node)}`;
  return page(
    command.name,
    `<nav><a href="/admin">← Status</a></nav>
<h1>${esc(command.name)} <small>(${esc(adapter.domain)})</small></h1>
${previous ? resultBody(previous) : ""}
${form.instructions ? `<p>${esc(form.instructions)}</p>` : ""}
<form method="post" action="${esc(url)}">${csrfField(csrf)}
${form.fields.map(fieldInput).join("\n")}
<p><button type="submit">Run</button></p>
</form>`,
  );
}

export function resultPage(
  adapter: { name: string; domain: string },
  commandName: string,
  result: CommandResult,
): string {
  return page(
    commandName,
    `<nav><a href="/admin">← Status</a></nav>
<h1>${esc(commandName)} <small>(${esc(adapter.domain)})</small></h1>
${resultBody(result)}`,
  );
}

export function messagePage(title: string, text: string): string {
  return page(title, `<nav><a href="/admin">← Status</a></nav><h1>${esc(title)}</h1><p>${esc(text)}</p>`);
}
