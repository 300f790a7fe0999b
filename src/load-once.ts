/**
 * A library loaded at its first use rather than at start (an idle gateway does not need its heap), then kept.
 * Calling `import()` again for a module already loaded is not free: it goes through the ESM loader each time
 * (a resolve and a module-job lookup), which on the Twilio SDK, imported per webhook, was 2 % of the gateway's
 * CPU on webhooks at 500 msg/s. A failed load is tried again at the next call.
 */
export function loadOnce<T>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => {
    if (!loading) {
      loading = load();
      loading.catch(() => (loading = undefined));
    }
    return loading;
  };
}
