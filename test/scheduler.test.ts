import { describe, expect, it } from 'vitest';
import { scheduleStep, validatePolicy } from '../src/domain/scheduler.ts';
import { TextStream } from '../src/application/engine/text-stream.ts';

describe('scheduleStep', () => {
  const policy = { maxBatchTokens: 10, maxPrefillChunk: 4 };

  it('gives every decoding sequence one token, then prefill chunks in arrival order under the budget', () => {
    const work = scheduleStep(
      [
        { id: 'a', pendingPrefill: 9 },
        { id: 'b', pendingPrefill: 0 },
        { id: 'c', pendingPrefill: 3 },
        { id: 'd', pendingPrefill: 0 },
        { id: 'e', pendingPrefill: 7 },
      ],
      policy,
    );
    expect(work).toEqual([
      { id: 'b', tokens: 1, prefill: false },
      { id: 'd', tokens: 1, prefill: false },
      { id: 'a', tokens: 4, prefill: true },
      { id: 'c', tokens: 3, prefill: true },
      { id: 'e', tokens: 1, prefill: true },
    ]);
    expect(work.reduce((n, w) => n + w.tokens, 0)).toBe(10);
  });

  it('never exceeds the budget, even with more decoders than tokens', () => {
    const running = Array.from({ length: 15 }, (_, i) => ({ id: `s${i}`, pendingPrefill: 0 }));
    expect(scheduleStep(running, policy)).toHaveLength(10);
    expect(() => validatePolicy({ maxBatchTokens: 0, maxPrefillChunk: 1 })).toThrow(expect.objectContaining({ name: 'InvalidRequestError' }));
  });
});

describe('TextStream', () => {
  // A toy decoder: token i is the i-th character of the alphabet below.
  const alphabet = 'abc STOP\ufffd';
  const decode = (ids: readonly number[]): string => ids.map((i) => alphabet[i]).join('');

  it('emits deltas that add up to the text', () => {
    const s = new TextStream(decode, []);
    const ids: number[] = [];
    let out = '';
    for (const t of [0, 1, 2, 3, 0]) {
      ids.push(t);
      out += s.update(ids).delta;
    }
    expect(out + s.flush(ids)).toBe('abc a');
  });

  it('holds back a possible stop-string prefix and cuts the text before the stop string', () => {
    const s = new TextStream(decode, ['STOP']);
    const ids = [0, 4, 5];
    expect(s.update(ids).delta).toBe('a');
    ids.push(6, 7);
    const u = s.update(ids);
    expect(u.stoppedText).toBe('a');
    expect(u.delta).toBe('');
  });

  it('releases held text when the stop string does not complete, and holds an incomplete character', () => {
    const s = new TextStream(decode, ['STOP']);
    expect(s.update([4, 5]).delta).toBe('');
    expect(s.update([4, 5, 0]).delta).toBe('STa');
    expect(s.update([4, 5, 0, 8]).delta).toBe('');
    expect(s.flush([4, 5, 0, 8])).toBe('\ufffd');
  });
});
