/**
 * XEP-0050 settings of the IRC adapter, stored per user (ctx.settings) with keys `<server>/<name>`:
 * per server the nick, SASL and NickServ passwords (stored, never logged nor shown back), TLS port,
 * fallback charset and throttle; per channel which messages to forward (all, or only those that mention
 * the user's nick). Also the admins' command that disconnects a user's IRC connections.
 */
import type { AdhocCommand, Form, FormValues, SettingsStore } from "../../src/adapter.js";
import { GatewayError } from "../../src/xmpp/errors.js";
import { single } from "../../src/xmpp/forms.js";
import { checkNick, parseIrcLocalpart, type IrcCodecOptions } from "./codec.js";
import { MAX_LINE_DELAY_MS } from "./config.js";
import { isSupportedCharset } from "./split.js";

/** Typed into a password field: forget the stored password. */
export const CLEAR = "-";
const BARE_JID = /^[^@/\s]+@[^@/\s]+$/;
/** The per-server fields, in the order the form shows them. */
const SERVER_FIELDS = ["nick", "saslPassword", "nickservPassword", "port", "charset", "lineDelayMs"] as const;
type ServerField = (typeof SERVER_FIELDS)[number];
const SECRET: ReadonlySet<string> = new Set(["saslPassword", "nickservPassword"]);

/** The settings of one user for one server ("" where nothing is set). */
export function serverSettings(all: Record<string, string>, server: string): Record<ServerField, string> {
  return Object.fromEntries(SERVER_FIELDS.map((f) => [f, all[`${server}/${f}`] ?? ""])) as Record<
    ServerField,
    string
  >;
}

/** Channels (lowercased, on this server) the user only wants messages mentioning their nick from. */
export function mentionsOnly(all: Record<string, string>, server: string): Set<string> {
  const prefix = `${server}/forward:`;
  return new Set(
    Object.entries(all)
      .filter(([k, v]) => k.startsWith(prefix) && v === "mentions")
      .map(([k]) => k.slice(prefix.length)),
  );
}

function check(field: ServerField, value: string): string {
  if (value === "" || (SECRET.has(field) && value === CLEAR)) return value;
  switch (field) {
    case "nick":
      checkNick(value);
      return value; // as typed: IRC shows the nick's case

    case "port":
    case "lineDelayMs": {
      const n = Number(value);
      const max = field === "port" ? 65535 : MAX_LINE_DELAY_MS;
      if (!Number.isInteger(n) || n < (field === "port" ? 1 : 0) || n > max)
        throw new GatewayError("not-acceptable", `"${field}" must be a whole number up to ${max}.`);
      return String(n);
    }
    case "charset":
      if (!isSupportedCharset(value))
        throw new GatewayError("not-acceptable", `"${value}" is not a charset name such as windows-1252.`);
      return value;
    default:
      if (/[\r\n\0 ]/.test(value))
        throw new GatewayError("not-acceptable", "A password cannot hold spaces or line breaks.");
      return value;
  }
}

export interface SettingsDeps {
  settings: () => SettingsStore;
  servers: readonly string[];
  /** The admins' flood-control pause for a server: users may only choose a longer one. */
  lineDelayFloor(server: string): number;
  /** The form a password is stored in (encrypted); throws a GatewayError when passwords cannot be stored. */
  seal(user: string, key: string, password: string): string;
  codec: IrcCodecOptions;
  /**
   * The user's settings changed (`all`, as stored): apply at once what can be (forwarding), before the
   * command answers, so that a message arriving right after the answer already follows the new setting.
   */
  changed(user: string, all: Readonly<Record<string, string>>): void;
  /** Admin: closes every IRC connection of `user` and forgets their channels; how many were closed. */
  disconnect(user: string): Promise<number>;
}

export function settingsCommands(deps: SettingsDeps): AdhocCommand[] {
  const serverForm = async (user: string): Promise<Form> => {
    const first = deps.servers[0] ?? "";
    const now = serverSettings(await deps.settings().get(user), first);
    return {
      title: "IRC server settings",
      instructions:
        "Settings for your connection to one IRC server; they apply from the next connection. Empty " +
        `fields use the gateway's defaults; passwords are never shown: leave empty to keep, type ${CLEAR} to remove.`,
      fields: [
        {
          var: "server",
          type: "list-single",
          label: "IRC server",
          required: true,
          value: first,
          options: deps.servers.map((s) => ({ label: s, value: s })),
        },
        { var: "nick", type: "text-single", label: "Nick", value: now.nick },
        { var: "saslPassword", type: "text-private", label: "SASL password (account = nick)" },
        { var: "nickservPassword", type: "text-private", label: "NickServ password" },
        { var: "port", type: "text-single", label: "TLS port", value: now.port },
        { var: "charset", type: "text-single", label: "Charset of non-UTF-8 lines", value: now.charset },
        {
          var: "lineDelayMs",
          type: "text-single",
          label: "Throttle: ms between lines (at least the gateway's)",
          value: now.lineDelayMs,
        },
      ],
    };
  };

  const saveServer = async (user: string, values: FormValues) => {
    const server = single(values, "server");
    if (!deps.servers.includes(server))
      throw new GatewayError("not-acceptable", `This gateway does not connect to ${server}.`);
    const checked = SERVER_FIELDS.map((f) => [f, check(f, single(values, f).trim())] as const);
    const delay = checked.find(([f]) => f === "lineDelayMs")?.[1] ?? "";
    const floor = deps.lineDelayFloor(server);
    if (delay !== "" && Number(delay) < floor)
      throw new GatewayError(
        "not-acceptable",
        `The gateway's flood control for ${server} waits at least ${floor} ms between lines; you can only choose a longer pause (or leave the field empty).`,
      );
    const all = { ...(await deps.settings().get(user)) };
    for (const [field, value] of checked) {
      const key = `${server}/${field}`;
      if (SECRET.has(field) && value === "") continue; // kept
      if (value === "" || value === CLEAR) delete all[key];
      else all[key] = SECRET.has(field) ? deps.seal(user, key, value) : value;
    }
    await deps.settings().put(user, all);
    deps.changed(user, all);
    return { note: `Saved your settings for ${server}; they apply from your next connection to it.` };
  };

  const channelForm = (): Form => ({
    title: "IRC channel settings",
    instructions: "Which messages of a channel reach you: all of them, or only those that mention your nick.",
    fields: [
      { var: "room", type: "text-single", label: "Channel (#chan%server)", required: true },
      {
        var: "forward",
        type: "list-single",
        label: "Forward",
        required: true,
        value: "all",
        options: [
          { label: "All messages", value: "all" },
          { label: "Only messages mentioning me", value: "mentions" },
        ],
      },
    ],
  });

  const saveChannel = async (user: string, values: FormValues) => {
    const room = single(values, "room").trim();
    const target = parseIrcLocalpart(
      room.includes("@") ? room.slice(0, room.lastIndexOf("@")) : room,
      deps.codec,
    );
    if (target.kind !== "channel" || !deps.servers.includes(target.server))
      throw new GatewayError(
        "not-acceptable",
        `"${room}" is not a channel of an IRC server of this gateway.`,
      );
    const all = { ...(await deps.settings().get(user)) };
    const key = `${target.server}/forward:${target.channel.toLowerCase()}`;
    if (single(values, "forward") === "mentions") all[key] = "mentions";
    else delete all[key];
    await deps.settings().put(user, all);
    deps.changed(user, all);
    return { note: `${target.channel} on ${target.server}: ${single(values, "forward")} messages.` };
  };

  return [
    { node: "irc-server-settings", name: "IRC server settings", form: serverForm, run: saveServer },
    {
      node: "irc-channel-settings",
      name: "IRC channel settings",
      form: channelForm,
      run: (u, v) => saveChannel(u, v),
    },
    {
      node: "irc-disconnect-user",
      name: "Disconnect a user's IRC connections",
      admin: true,
      form: () => ({
        title: "Disconnect a user from IRC",
        instructions: "Closes every IRC connection of the user (QUIT) and forgets the channels to rejoin.",
        fields: [{ var: "jid", type: "jid-single", label: "User (bare JID)", required: true }],
      }),
      async run(_admin, values) {
        const jid = single(values, "jid").trim().toLowerCase();
        if (!BARE_JID.test(jid)) throw new GatewayError("jid-malformed", `"${jid}" is not a bare JID.`);
        const closed = await deps.disconnect(jid);
        return closed > 0
          ? { note: `Closed ${closed} IRC connection(s) of ${jid}.` }
          : { note: `${jid} had no IRC connection.`, noteType: "warn" };
      },
    },
  ];
}
