/**
 * XEP-0077 in-band registration with XEP-0004 forms, as XEP-0100 §4.1–4.3 describes for gateways.
 */
import { xml, type Component } from "@xmpp/component";
import { NS } from "../xmpp/ns.js";
import { GatewayError } from "../xmpp/errors.js";
import { checkAgainstForm, readSubmittedForm, single } from "../xmpp/forms.js";
import { dataForm, presence } from "../xmpp/stanzas.js";
import { EMPTY_RESULT, guardIq } from "./boundary.js";
import { bareOf, type ServiceContext } from "./context.js";
import { gatewayPresence } from "./presence.js";

function spec(svc: ServiceContext) {
  const registration = svc.adapter.registration;
  if (!registration)
    throw new GatewayError("service-unavailable", `The ${svc.adapter.name} gateway needs no registration.`);
  return registration;
}

/**
 * Deletes everything the gateway holds for the user on this adapter, then (XEP-0100 §4.3) sends
 * unsubscribe, unsubscribed and unavailable. False when the user was not registered.
 */
export async function unregisterUser(svc: ServiceContext, user: string): Promise<boolean> {
  const existed = (await svc.registrations.get(user)) !== null;
  if (!existed) return false;
  await svc.adapter.registration?.remove?.(user);
  await svc.registrations.remove(user);
  await svc.settings.remove(user);
  svc.log.info({ jid: user }, "user unregistered");
  for (const type of ["unsubscribe", "unsubscribed", "unavailable"])
    await svc.link.send(presence(svc.domain, user, { type }));
  return EMPTY_RESULT;
}

export function mountRegistration(callee: Component["iqCallee"], svc: ServiceContext): void {
  callee.get(
    NS.REGISTER,
    "query",
    guardIq(svc.log, async (ctx) => {
      const user = bareOf(ctx.stanza.attrs.from ?? "");
      svc.access.check(user);
      const registration = spec(svc);
      const existing = await svc.registrations.get(user);
      const form = await registration.form(user, existing);
      return xml(
        "query",
        { xmlns: NS.REGISTER },
        existing ? xml("registered") : null,
        xml("instructions", {}, form.instructions ?? `Register with the ${svc.adapter.name} gateway.`),
        dataForm(form, "form", NS.REGISTER),
      );
    }),
  );

  callee.set(
    NS.REGISTER,
    "query",
    guardIq(svc.log, async (ctx) => {
      const user = bareOf(ctx.stanza.attrs.from ?? "");
      const registration = spec(svc);
      if (ctx.element.getChild("remove")) {
        // XEP-0077 §3.2: unregistering is allowed even for users no longer in the allow list.
        if (!(await unregisterUser(svc, user)))
          throw new GatewayError("registration-required", `You are not registered with ${svc.domain}.`);
        return EMPTY_RESULT;
      }
      svc.access.check(user);
      const values = readSubmittedForm(ctx.element);
      if (!values) throw new GatewayError("bad-request", "Submit the registration data form (XEP-0004).");
      const formType = single(values, "FORM_TYPE");
      if (formType && formType !== NS.REGISTER)
        throw new GatewayError("bad-request", `The form type must be ${NS.REGISTER}.`);
      const existing = await svc.registrations.get(user);
      checkAgainstForm(await registration.form(user, existing), values);
      const stored = await registration.validate(user, values);
      await svc.registrations.put(user, stored);
      svc.log.info({ jid: user, update: existing !== null }, "user registered");
      if (!existing) {
        // XEP-0100 §4.1: the gateway asks to see the user's presence and shows its own.
        await svc.link.send(presence(svc.domain, user, { type: "subscribe" }));
        await svc.link.send(gatewayPresence(svc, user));
      }
      return EMPTY_RESULT;
    }),
  );
}
