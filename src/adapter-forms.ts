/**
 * What an adapter offers through forms (part of the contract in src/adapter.ts): XEP-0077 registration and
 * XEP-0050 ad-hoc commands, both as XEP-0004 data forms the core renders and parses.
 */

export type FieldType =
  | "boolean"
  | "fixed"
  | "hidden"
  | "jid-single"
  | "list-single"
  | "text-multi"
  | "text-private"
  | "text-single";

/** One XEP-0004 data form field. */
export interface FormField {
  var: string;
  type: FieldType;
  label?: string;
  desc?: string;
  required?: boolean;
  value?: string | string[];
  options?: { label: string; value: string }[];
}

export interface Form {
  title?: string;
  instructions?: string;
  fields: FormField[];
}

/** Submitted form values: one string per field, or several for multi-valued fields. */
export type FormValues = Record<string, string | string[]>;

/** XEP-0077 registration as XEP-0100 describes it. */
export interface RegistrationSpec {
  /** The form shown on `get`, pre-filled from an existing registration. */
  form(user: string, existing: Record<string, string> | null): Promise<Form> | Form;
  /** Validate a submitted form; throw GatewayError("not-acceptable", why) on bad input; return what to store. */
  validate(user: string, values: FormValues): Promise<Record<string, string>>;
  /** Release resources held for the user (the core deletes the registration itself). */
  remove?(user: string): Promise<void>;
}

export interface CommandResult {
  note: string;
  noteType?: "info" | "warn" | "error";
  /** A result form (type "result") to show, e.g. a table. */
  form?: Form;
  /**
   * Not done yet: a next step (XEP-0050 §3.4 multi-stage, kept stateless). The user gets this form, filled
   * in with what they gave, and submitting it runs the command again with its values: e.g. "send to 120
   * people?" before a notice goes out. Its fields must be among the command's own form's.
   */
  next?: Form;
}

/** An XEP-0050 ad-hoc command. Admin-only commands are hidden from everybody else. */
export interface AdhocCommand {
  node: string;
  name: string;
  admin?: boolean;
  /**
   * A report: no form, no side effect, cheap to run. The admin page shows its result on the dashboard (e.g.
   * the SMS number assignments) instead of offering it as an action.
   */
  report?: boolean;
  /** The form to fill in; omit for commands that run at once. `to`: the JID the command was run on. */
  form?(user: string, to?: string): Promise<Form> | Form;
  run(user: string, values: FormValues, to?: string): Promise<CommandResult>;
}
