/** Where a panel opened late reads a job's history from. Pure. The panel keeps only its newest
 * `keep` rows, so a long history is read as its head (the first page: how the job began) and
 * its tail (the newest `keep` events); the middle is skipped and said so, not read page by page
 * (200,000 events are a hundred pages: minutes on a loaded machine). */
export interface HistoryStep {
  /** The `afterSeq` of the next page; null: nothing more to read. */
  after: number | null;
  /** Events skipped before `after` (0: none). */
  skipped: number;
}

export function nextHistoryPage(after: number, next: number | null | undefined, lastSeq: number | undefined, keep: number, skippedAlready: boolean): HistoryStep {
  if (typeof next !== "number" || next <= after) return { after: null, skipped: 0 };
  if (!skippedAlready && typeof lastSeq === "number" && lastSeq - next > keep) {
    const tail = lastSeq - keep;
    return { after: tail, skipped: tail - next };
  }
  return { after: next, skipped: 0 };
}
