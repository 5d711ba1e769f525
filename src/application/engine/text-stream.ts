/**
 * Turns a growing list of token ids into text deltas, and finds stop strings. Decoding the whole
 * output each time (instead of token by token) keeps multi-byte characters and merges right.
 * Text that could still be the start of a stop string, or an incomplete UTF-8 sequence (U+FFFD at
 * the end), is held back until it resolves, so a stop string is never emitted.
 */
export interface StreamUpdate {
  /** New text safe to show. */
  readonly delta: string;
  /** Set when a stop string appeared: the final text, cut before it. */
  readonly stoppedText?: string;
  /** The stop string that appeared (set with stoppedText). */
  readonly stop?: string;
}

export class TextStream {
  private emitted = 0;

  constructor(
    private readonly decode: (ids: readonly number[]) => string,
    private readonly stops: readonly string[],
  ) {}

  /** Text of all tokens so far, as the caller will finally see it. */
  full(ids: readonly number[]): string {
    return this.decode(ids);
  }

  update(ids: readonly number[]): StreamUpdate {
    const text = this.decode(ids);
    const found = this.firstStop(text);
    if (found) {
      const finalText = text.slice(0, found.at);
      const delta = finalText.slice(this.emitted);
      this.emitted = finalText.length;
      return { delta, stoppedText: finalText, stop: found.stop };
    }
    const safe = this.safeLength(text);
    const delta = safe > this.emitted ? text.slice(this.emitted, safe) : '';
    this.emitted = Math.max(this.emitted, safe);
    return { delta };
  }

  /** Whatever was held back, once generation ends without a stop string. */
  flush(ids: readonly number[]): string {
    const text = this.decode(ids);
    const delta = text.slice(this.emitted);
    this.emitted = text.length;
    return delta;
  }

  private firstStop(text: string): { at: number; stop: string } | null {
    let best: { at: number; stop: string } | null = null;
    for (const s of this.stops) {
      const at = text.indexOf(s, Math.max(0, this.emitted - s.length + 1));
      if (at >= 0 && (!best || at < best.at)) best = { at, stop: s };
    }
    return best;
  }

  /** Length of the prefix that can be shown without risking part of a stop string. */
  private safeLength(text: string): number {
    let safe = text.length;
    while (safe > 0 && text.charCodeAt(safe - 1) === 0xfffd) safe--;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, text.length); k > 0; k--) {
        if (text.endsWith(s.slice(0, k))) {
          safe = Math.min(safe, text.length - k);
          break;
        }
      }
    }
    return safe;
  }
}
