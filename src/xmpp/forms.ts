import type { Element } from "@xmpp/component";
import type { Form, FormValues } from "../adapter.js";
import { GatewayError } from "./errors.js";
import { NS } from "./ns.js";

/** Longest value accepted in any submitted form field. */
export const MAX_FORM_VALUE_CHARS = 1024;
/** Most fields accepted in one submitted form. */
export const MAX_FORM_FIELDS = 64;

/** Reads a submitted XEP-0004 form (type "submit") into values; throws bad-request when malformed. */
export function readSubmittedForm(parent: Element): FormValues | null {
  const x = parent.getChild("x", NS.DATA_FORMS);
  if (!x) return null;
  if (x.attrs.type !== "submit")
    throw new GatewayError("bad-request", 'The data form must have type="submit".');
  const fields = x.getChildren("field");
  if (fields.length > MAX_FORM_FIELDS)
    throw new GatewayError("not-acceptable", "The form has too many fields.");
  const values: FormValues = {};
  for (const field of fields) {
    const name = field.attrs.var;
    if (!name) throw new GatewayError("bad-request", "A form field has no var attribute.");
    const list = field.getChildren("value").map((v) => v.getText());
    for (const v of list) {
      if (v.length > MAX_FORM_VALUE_CHARS)
        throw new GatewayError("not-acceptable", `The value of "${name}" is too long.`);
    }
    values[name] = list.length === 1 ? (list[0] ?? "") : list;
  }
  return values;
}

/** First value of a field, trimmed; "" when absent. */
export function single(values: FormValues, name: string): string {
  const v = values[name];
  return (Array.isArray(v) ? (v[0] ?? "") : (v ?? "")).trim();
}

/**
 * Checks submitted values against the form that was offered: required fields present, list-single and
 * boolean values among the allowed ones. The adapter then validates meaning (a phone number, an alias…).
 */
export function checkAgainstForm(form: Form, values: FormValues): void {
  for (const field of form.fields) {
    if (field.type === "fixed" || field.type === "hidden") continue;
    const value = single(values, field.var);
    const label = field.label ?? field.var;
    if (field.required && value === "") throw new GatewayError("not-acceptable", `"${label}" is required.`);
    if (value === "") continue;
    if (field.type === "list-single" && field.options && !field.options.some((o) => o.value === value))
      throw new GatewayError(
        "not-acceptable",
        `"${label}" must be one of: ${field.options.map((o) => o.value).join(", ")}.`,
      );
    if (field.type === "boolean" && !["0", "1", "true", "false"].includes(value))
      throw new GatewayError("not-acceptable", `"${label}" must be true or false.`);
  }
}

export function isTrue(value: string): boolean {
  return value === "1" || value === "true";
}
