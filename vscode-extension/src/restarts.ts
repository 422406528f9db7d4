/** Bounded restarts of a crashing server and what the user is told. Pure. */

/** Restarts allowed within RESTART_WINDOW_MS before the server is left stopped. */
export const MAX_RESTARTS = 4;
export const RESTART_WINDOW_MS = 3 * 60_000;

/** At most `max` crashes within `windowMs`, then give up. */
export class RestartBudget {
  private crashes: number[] = [];

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
  ) {}

  /** Record a crash at `now`; true when another restart is allowed. */
  crash(now: number): boolean {
    this.crashes = this.crashes.filter((t) => now - t < this.windowMs);
    this.crashes.push(now);
    return this.crashes.length <= this.max;
  }

  get count(): number {
    return this.crashes.length;
  }

  reset(): void {
    this.crashes = [];
  }
}

/** The server stopped and is restarted: the `count`th crash of the window. */
export function restartMessage(count: number, max = MAX_RESTARTS): string {
  return `Logist: the server stopped unexpectedly; restarting it (restart ${count} of ${max}).`;
}

/** The server stopped once more than allowed and is left stopped. */
export function gaveUpMessage(count: number, windowMs = RESTART_WINDOW_MS): string {
  return `Logist: the server stopped ${count} times in ${Math.round(windowMs / 60_000)} minutes; it is not restarted. See the log, then run "Logist: Restart Server".`;
}

/** A command needs the server after it was left stopped. */
export function stoppedMessage(): string {
  return 'Logist: the server is stopped after crashing repeatedly; run "Logist: Restart Server".';
}

/** The server exited (or failed) before it was initialized. */
export function startFailedMessage(command: string): string {
  return `Logist: the server '${command}' stopped while starting; its error is in the log (Logist: Show Server Log).`;
}
