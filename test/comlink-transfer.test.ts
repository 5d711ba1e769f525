import { expose, wrap } from 'comlink';
import { afterAll, describe, expect, it } from 'vitest';
import { installErrorTransfer } from '../src/client/comlink-errors.ts';
import { installOptionsTransfer } from '../src/client/comlink-options.ts';
import { InvalidRequestError } from '../src/domain/errors.ts';

/**
 * The worker boundary's transfer handlers over a real MessageChannel (Node's): callbacks and
 * AbortSignals inside an options object, bare callback arguments, and typed errors whose details
 * hold what postMessage cannot clone.
 */
installErrorTransfer();
installOptionsTransfer();

interface Side {
  count(options: { readonly n: number; readonly onTick: (i: number) => void }): Promise<number>;
  waitForAbort(options: { readonly signal: AbortSignal }): Promise<string>;
  listen(listener: (text: string) => void): Promise<void>;
  refuse(value: unknown): Promise<void>;
}

const channel = new MessageChannel();
const side: Side = {
  async count({ n, onTick }) {
    for (let i = 0; i < n; i++) onTick(i);
    return n;
  },
  waitForAbort: ({ signal }) => new Promise((resolve) => signal.addEventListener('abort', () => resolve('aborted'), { once: true })),
  async listen(listener) {
    listener('hello');
  },
  async refuse(value) {
    throw new InvalidRequestError('refused', { value });
  },
};
expose(side, channel.port1);
const remote = wrap<Side>(channel.port2);
afterAll(() => {
  channel.port1.close();
  channel.port2.close();
});

describe('Comlink transfer handlers', () => {
  it('calls a callback given inside an options object, once per call, in order', async () => {
    const ticks: number[] = [];
    const done = new Promise<void>((resolve) => {
      const onTick = (i: number): void => {
        ticks.push(i);
        if (i === 2) resolve();
      };
      void remote.count({ n: 3, onTick });
    });
    await done;
    expect(ticks).toEqual([0, 1, 2]);
  });

  it('delivers an AbortSignal inside an options object: aborting here aborts there', async () => {
    const abort = new AbortController();
    const pending = remote.waitForAbort({ signal: abort.signal });
    abort.abort();
    expect(await pending).toBe('aborted');
  });

  it('proxies a bare callback argument', async () => {
    const got = await new Promise<string>((resolve) => void remote.listen((text) => resolve(text)));
    expect(got).toBe('hello');
  });

  it('keeps a typed error\'s class when its details hold a function', async () => {
    const error = await remote.refuse(() => 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect(error).toMatchObject({ name: 'InvalidRequestError', code: 'INVALID_REQUEST', message: 'refused' });
    expect((error as InvalidRequestError).details).toEqual({ value: '[function]' });
  });
});
