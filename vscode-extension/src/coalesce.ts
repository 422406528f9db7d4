/** Batch items and flush them at most once per `delayMs`: a flood of events becomes a few
 * updates. Pure: the timer functions are passed in. Keeps at most `maxItems` (the oldest are
 * dropped and counted) so memory stays bounded however fast items arrive. */
export class Coalescer<T> {
  private items: T[] = [];
  private dropped = 0;
  private timer: unknown = undefined;

  constructor(
    private readonly flush: (items: T[], dropped: number) => void,
    private readonly delayMs: number,
    private readonly maxItems: number,
    private readonly setTimer: (fn: () => void, ms: number) => unknown = (fn, ms) => setTimeout(fn, ms),
    private readonly clearTimer: (handle: unknown) => void = (handle) => clearTimeout(handle as NodeJS.Timeout),
  ) {}

  push(item: T): void {
    this.items.push(item);
    // Trimmed in bulk when twice the limit: constant time per item however long the flood.
    if (this.items.length >= 2 * this.maxItems) this.trim();
    if (this.timer === undefined) this.timer = this.setTimer(() => this.fire(), this.delayMs);
  }

  /** Count `n` items that were never pushed (skipped at the source) as dropped. */
  drop(n: number): void {
    if (n <= 0) return;
    this.dropped += n;
    if (this.timer === undefined) this.timer = this.setTimer(() => this.fire(), this.delayMs);
  }

  private trim(): void {
    const extra = this.items.length - this.maxItems;
    if (extra <= 0) return;
    this.items.splice(0, extra);
    this.dropped += extra;
  }

  fire(): void {
    this.timer = undefined;
    this.trim();
    if (this.items.length === 0 && this.dropped === 0) return;
    const items = this.items;
    const dropped = this.dropped;
    this.items = [];
    this.dropped = 0;
    this.flush(items, dropped);
  }

  dispose(): void {
    if (this.timer !== undefined) this.clearTimer(this.timer);
    this.timer = undefined;
    this.items = [];
  }
}
