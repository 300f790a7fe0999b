import { defineConfig } from "vitest/config";

/** The Twilio fake's own tests: no test bed needed (`npx vitest run --config test/twilio/vitest.twilio.config.ts`). */
export default defineConfig({ test: { include: ["test/twilio/**/*.test.ts"] } });
