/**
 * Turns a growing list of token ids into text deltas, and finds stop strings, in O(1) amortized
 * work per token. Tokens are decoded in a short sliding window, never the whole output: the
 * window starts at the last token group already turned into text (prefixOffset) and the new text
 * is decode(window) minus decode(window before the new tokens). Keeping one decoded group in front
 * gives the decoder its context (SentencePiece's leading space, byte-level merges), so the deltas
 * add up to the text of decoding everything at once. While the window's text ends in an
 * incomplete UTF-8 sequence (U+FFFD), the offsets stay put and the bytes wait for the rest.
 * Text that could still be the start of a stop string is held back until it resolves, so a stop
 * string is never emitted.
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
  /** Text of ids[0, readOffset), built incrementally. */
  private text = '';
  /** First token of the decode window: the start of the last group turned into text. */
  private prefixOffset = 0;
  /** Tokens already turned into text. */
  private readOffset = 0;

  constructor(
    private readonly decode: (ids: readonly number[]) => string,
    private readonly stops: readonly string[],
  ) {}

  /** Text of all tokens so far, as the caller will finally see it. */
  full(ids: readonly number[]): string {
    return this.decode(ids);
  }

  /** Turn the tokens after readOffset into text, unless they end inside a character (or `force`). */
  private advance(ids: readonly number[], force: boolean): void {
    if (ids.length <= this.readOffset) return;
    const before = this.decode(ids.slice(this.prefixOffset, this.readOffset));
    const after = this.decode(ids.slice(this.prefixOffset));
    if (!force && (after.length <= before.length || after.endsWith('\ufffd'))) return;
    this.text += after.slice(before.length);
    this.prefixOffset = this.readOffset;
    this.readOffset = ids.length;
  }

  update(ids: readonly number[]): StreamUpdate {
    this.advance(ids, false);
    const text = this.text;
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
    this.advance(ids, true);
    const delta = this.text.slice(this.emitted);
    this.emitted = this.text.length;
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
