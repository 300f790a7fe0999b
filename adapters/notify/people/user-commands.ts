/**
 * The users' XEP-0050 commands on the notify domain: "My alert contacts" (phone, email, quiet hours, time
 * zone, channels) and "Verify a code". A new phone number or address is stored only once the code sent to it
 * comes back; until then the one verified before keeps receiving alerts.
 */
import type { AdhocCommand, CommandResult, Form, FormValues } from "../../../src/adapter.js";
import { GatewayError } from "../../../src/xmpp/errors.js";
import { isTrue, single } from "../../../src/xmpp/forms.js";
import {
  CHANNELS,
  checkChannels,
  checkTime,
  checkTimeZone,
  normaliseEmail,
  normalisePhone,
  type ContactStore,
} from "./contacts.js";
import type { AddressKind, Verifier } from "./verification.js";

export const CONTACTS_NODE = "notify-contacts";
export const VERIFY_NODE = "notify-verify";

export interface UserCommandDeps {
  contacts: ContactStore;
  verifier: Verifier;
  /** The notify domain, named in the texts. */
  domain: string;
  /** Whether codes can be sent to this kind of address (the channel is configured). */
  canVerify: (kind: AddressKind) => boolean;
}

const LABEL: Record<AddressKind, string> = { phone: "phone number", email: "email address" };

export function userCommands(deps: () => UserCommandDeps): AdhocCommand[] {
  const contactsForm = async (user: string): Promise<Form> => {
    const { contacts, verifier, canVerify } = deps();
    const current = await contacts.get(user);
    const pendingPhone = await verifier.pending(user, "phone");
    const pendingEmail = await verifier.pending(user, "email");
    const waiting = (address: string | undefined) =>
      address ? `A code was sent to ${address}: enter it with "Verify a code". ` : "";
    return {
      title: "My alert contacts",
      instructions:
        "Where alerts reach you when you do not answer over XMPP. A new phone number or email address gets a " +
        'code; it is used once you enter the code with "Verify a code". (Your SMS and email gateway ' +
        "registrations are addresses of this gateway, which reach you here over XMPP, so they are not offered.)",
      fields: [
        {
          var: "phone",
          type: "text-single",
          label: "Mobile phone number (international form)",
          desc: canVerify("phone")
            ? `${waiting(pendingPhone)}Like +12025550123. Empty: no SMS alerts.`
            : "This gateway sends no SMS: a phone number cannot be verified here.",
          ...(current.phone ? { value: current.phone } : {}),
        },
        {
          var: "email",
          type: "text-single",
          label: "Email address",
          desc: canVerify("email")
            ? `${waiting(pendingEmail)}Empty: no email alerts.`
            : "This gateway sends no email: an address cannot be verified here.",
          ...(current.email ? { value: current.email } : {}),
        },
        {
          var: "quietStart",
          type: "text-single",
          label: "Quiet hours from (HH:MM)",
          desc: "No SMS or email in quiet hours, except critical alerts. Empty: none.",
          ...(current.quietStart ? { value: current.quietStart } : {}),
        },
        {
          var: "quietEnd",
          type: "text-single",
          label: "Quiet hours until (HH:MM)",
          ...(current.quietEnd ? { value: current.quietEnd } : {}),
        },
        {
          var: "tz",
          type: "text-single",
          label: "Time zone",
          desc: "Like Europe/Paris or America/New_York.",
          value: current.tz ?? "UTC",
        },
        ...CHANNELS.map((c) => ({
          var: `channel-${c}`,
          type: "boolean" as const,
          label: `Alerts by ${c === "xmpp" ? "XMPP" : c === "sms" ? "SMS" : "email"}`,
          value: current.channels.includes(c) ? "1" : "0",
        })),
      ],
    };
  };

  return [
    {
      node: CONTACTS_NODE,
      name: "My alert contacts",
      form: contactsForm,
      async run(user: string, values: FormValues): Promise<CommandResult> {
        const { contacts, verifier, domain, canVerify } = deps();
        // Everything is checked before anything is stored or sent.
        const phoneIn = single(values, "phone");
        const emailIn = single(values, "email");
        const phone = phoneIn ? normalisePhone(phoneIn) : "";
        const email = emailIn ? normaliseEmail(emailIn) : "";
        const startIn = single(values, "quietStart");
        const endIn = single(values, "quietEnd");
        if (Boolean(startIn) !== Boolean(endIn))
          throw new GatewayError("not-acceptable", "Give both ends of the quiet hours, or neither.");
        const quietStart = startIn ? checkTime(startIn, "Quiet hours from") : undefined;
        const quietEnd = endIn ? checkTime(endIn, "Quiet hours until") : undefined;
        const tzIn = single(values, "tz");
        const tz = tzIn ? checkTimeZone(tzIn) : undefined;
        if (quietStart && !tz)
          throw new GatewayError("not-acceptable", "Quiet hours need a time zone, like Europe/Paris.");
        const channels = checkChannels(CHANNELS.filter((c) => isTrue(single(values, `channel-${c}`))));

        const current = await contacts.get(user);
        const notes: string[] = [];
        const warn: string[] = [];
        // A code is requested first: a refusal (a limit) throws before anything else changes.
        const toVerify: [AddressKind, string][] = [];
        if (phone && phone !== current.phone) toVerify.push(["phone", phone]);
        if (email && email !== current.email) toVerify.push(["email", email]);
        for (const [kind] of toVerify)
          if (!canVerify(kind))
            throw new GatewayError(
              "feature-not-implemented",
              `This gateway sends no ${kind === "phone" ? "SMS" : "email"} (adapters.notify.${kind === "phone" ? "twilio" : "email"} ` +
                `is not set), so your ${LABEL[kind]} cannot be verified or used for alerts.`,
            );
        for (const [i, [kind, address]] of toVerify.entries()) {
          try {
            await verifier.request(user, kind, address);
            notes.push(
              `A code was sent to ${address}; enter it with "Verify a code" to use this ${LABEL[kind]}.`,
            );
          } catch (err) {
            if (i === 0) throw err;
            // The first code went out: say why the second did not, and keep the rest of the form.
            warn.push(`No code was sent to ${address}: ${(err as Error).message}`);
          }
        }
        for (const kind of ["phone", "email"] as const) {
          const given = kind === "phone" ? phone : email;
          if (given || !current[kind]) continue;
          await contacts.removeAddress(user, kind);
          await verifier.cancel(user, kind);
          notes.push(`Your ${LABEL[kind]} was removed.`);
        }
        await contacts.setPreferences(user, { quietStart, quietEnd, tz, channels });
        notes.push(
          `Alerts from ${domain} reach you by ${channels.join(", ")}` +
            (quietStart ? `; quiet hours ${quietStart}–${quietEnd} (${tz}).` : "."),
        );
        if (channels.includes("sms") && !phone) warn.push("SMS is on, but you gave no phone number.");
        if (channels.includes("email") && !email) warn.push("Email is on, but you gave no email address.");
        return { note: [...notes, ...warn].join(" "), noteType: warn.length ? "warn" : "info" };
      },
    },
    {
      node: VERIFY_NODE,
      name: "Verify a code",
      form: () => ({
        title: "Verify a code",
        instructions:
          'Enter the code sent to the phone number or email address you gave in "My alert contacts".',
        fields: [{ var: "code", type: "text-single", label: "Code", required: true }],
      }),
      async run(user: string, values: FormValues): Promise<CommandResult> {
        const { kind, address } = await deps().verifier.check(user, single(values, "code"));
        return { note: `Your ${LABEL[kind]} ${address} is verified: alerts can reach you there.` };
      },
    },
  ];
}
