/** Bounded restarts: at most `max` crashes within `windowMs`, then give up. Pure. */
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
