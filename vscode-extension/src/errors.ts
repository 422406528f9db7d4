/** One-line messages for errors from the server or the client library. Pure. */

/** The first line of an error's message, without the "logist/method: " prefix the server puts
 * on some (the user knows what they asked for). */
export function errorText(err: unknown): string {
  let text: string;
  if (err instanceof Error) text = err.message;
  else if (typeof err === "object" && err !== null && "message" in err) text = String((err as { message: unknown }).message);
  else text = String(err);
  return (text.split("\n", 1)[0] ?? "").replace(/^(logist\/[A-Za-z]+: )+/, "");
}

/** The id of the job a request named when the server does not know it (deleted meanwhile, e.g.
 * by the CLI): the server answers "unknown job id: <id>". */
export function missingJobId(err: unknown): string | undefined {
  const m = /^unknown job id: (\S+)/.exec(errorText(err));
  return m ? m[1] : undefined;
}

/** vscode-languageclient's ErrorCodes.ConnectionInactive: the client is stopped. */
const CONNECTION_INACTIVE = -32096;

/** What the user is told when a request fails. */
export function requestErrorText(err: unknown): string {
  const missing = missingJobId(err);
  if (missing !== undefined) return `job ${missing} no longer exists (deleted?); the Jobs view is refreshed.`;
  const code = typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
  if (code === CONNECTION_INACTIVE) return 'the server is not running; run "Logist: Restart Server".';
  return errorText(err);
}
