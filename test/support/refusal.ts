import { expect } from "vitest";
import { GatewayError } from "../../src/xmpp/errors.js";

/** Runs fn and returns the GatewayError it throws; fails the test when it throws nothing or something else. */
export function refusal(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error("expected a GatewayError");
}
