/** A one-line message for an error from the server or the client library. Pure. */
export function errorText(err: unknown): string {
  if (err instanceof Error) return err.message.split("\n", 1)[0] ?? String(err);
  if (typeof err === "object" && err !== null && "message" in err) return String((err as { message: unknown }).message);
  return String(err);
}
