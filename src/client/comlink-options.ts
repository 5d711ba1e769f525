import { transferHandlers, type TransferHandler } from 'comlink';

/**
 * Comlink proxies a callback only when it is an argument of its own; the ports take theirs in an
 * options object (`generate(agent, prompt, { onToken, signal })`, `loadModel(m, { onProgress })`).
 * This handler carries such an object across: each function becomes a Comlink proxy (a
 * MessagePort), each AbortSignal a port that delivers its abort, the rest is cloned. Install it
 * on both sides of the worker boundary, with installErrorTransfer. A bare function argument is
 * proxied the same way.
 */
type Options = Record<string, unknown>;
interface Wire {
  readonly plain: Options;
  readonly callbacks: Record<string, unknown>;
  readonly signals: Record<string, MessagePort>;
}

function isOptions(value: unknown): value is Options {
  if (typeof value !== 'object' || value === null || Object.getPrototypeOf(value) !== Object.prototype) return false;
  return Object.values(value).some((v) => typeof v === 'function' || v instanceof AbortSignal);
}

/** A port that receives one message when `signal` aborts. */
function signalPort(signal: AbortSignal): MessagePort {
  const channel = new MessageChannel();
  const fire = (): void => {
    channel.port1.postMessage('abort');
    channel.port1.close();
  };
  if (signal.aborted) fire();
  else signal.addEventListener('abort', fire, { once: true });
  return channel.port2;
}

function signalFrom(port: MessagePort): AbortSignal {
  const controller = new AbortController();
  port.onmessage = () => {
    controller.abort();
    port.close();
  };
  return controller.signal;
}

export function installOptionsTransfer(): void {
  const proxyHandler = transferHandlers.get('proxy');
  if (!proxyHandler) return;
  const handler: TransferHandler<Options, Wire> = {
    canHandle: isOptions,
    serialize(options) {
      const wire: Wire = { plain: {}, callbacks: {}, signals: {} };
      const transfers: Transferable[] = [];
      for (const [key, value] of Object.entries(options)) {
        if (typeof value === 'function') {
          const [port, moved] = proxyHandler.serialize(value);
          wire.callbacks[key] = port;
          transfers.push(...moved);
        } else if (value instanceof AbortSignal) {
          wire.signals[key] = signalPort(value);
          transfers.push(wire.signals[key]);
        } else {
          wire.plain[key] = value;
        }
      }
      return [wire, transfers];
    },
    deserialize(wire) {
      const out: Options = { ...wire.plain };
      for (const [key, port] of Object.entries(wire.callbacks)) {
        const remote = proxyHandler.deserialize(port) as (...args: unknown[]) => Promise<unknown>;
        // Fire and forget, as a local listener would be: a page callback that throws is its own affair.
        out[key] = (...args: unknown[]): void => void remote(...args).catch(() => undefined);
      }
      for (const [key, port] of Object.entries(wire.signals)) out[key] = signalFrom(port);
      return out;
    },
  };
  transferHandlers.set('options', handler as TransferHandler<unknown, unknown>);
  // A bare callback argument (`engine.onToken(uid, listener)`) crosses as a proxy too, as if
  // wrapped in Comlink.proxy (a marked one is taken by Comlink's own handler first).
  const callback: TransferHandler<(...args: unknown[]) => unknown, unknown> = {
    canHandle: (value: unknown): value is (...args: unknown[]) => unknown => typeof value === 'function',
    serialize: (fn) => proxyHandler.serialize(fn),
    deserialize: (port) => {
      const remote = proxyHandler.deserialize(port) as (...args: unknown[]) => Promise<unknown>;
      return (...args: unknown[]): void => void remote(...args).catch(() => undefined);
    },
  };
  transferHandlers.set('callback', callback as TransferHandler<unknown, unknown>);
}
