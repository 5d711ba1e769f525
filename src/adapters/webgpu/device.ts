import { DeviceLostError, InvalidRequestError, SemanticError } from '../../domain/errors.ts';

/** What the kernels may rely on, read from the adapter, never assumed. */
export interface GpuCapabilities {
  readonly shaderF16: boolean;
  readonly subgroups: boolean;
  readonly timestampQuery: boolean;
  readonly maxBufferSize: number;
  readonly maxStorageBufferBindingSize: number;
  readonly maxStorageBuffersPerShaderStage: number;
  readonly maxComputeInvocationsPerWorkgroup: number;
  readonly maxComputeWorkgroupStorageSize: number;
  readonly maxComputeWorkgroupsPerDimension: number;
  readonly minStorageBufferOffsetAlignment: number;
  readonly minUniformBufferOffsetAlignment: number;
}

export interface GpuContext {
  readonly device: GPUDevice;
  readonly adapterInfo: { readonly vendor: string; readonly architecture: string; readonly description: string };
  readonly caps: GpuCapabilities;
  /** Resolves when the device is lost, with the typed error the engine reports. */
  readonly lost: Promise<DeviceLostError>;
  /** True once `lost` has resolved. */
  isLost(): boolean;
}

export interface CreateGpuContextOptions {
  /** `navigator.gpu` in a browser or worker; Dawn's GPU object in Node. */
  readonly gpu?: GPU;
  /** Use shader-f16 arithmetic when the adapter has it (default true). */
  readonly allowF16?: boolean;
  readonly powerPreference?: GPUPowerPreference;
  readonly onLost?: (error: DeviceLostError) => void;
  /**
   * Ask for these limits instead of the adapter's maximum, e.g. a 128 MiB
   * maxStorageBufferBindingSize (WebGPU's default, and lavapipe's) on an adapter that allows
   * 1 GiB, so tests exercise the paths real small-limit devices take.
   */
  readonly limits?: Readonly<Partial<Record<'maxBufferSize' | 'maxStorageBufferBindingSize', number>>>;
}

const OPTIONAL_FEATURES: readonly GPUFeatureName[] = ['shader-f16', 'subgroups', 'timestamp-query'];

function defaultGpu(): GPU | undefined {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  return nav?.gpu;
}

/** Ask for the adapter's maximum of each limit the model may need: buffer sizes and bindings. */
function requestedLimits(adapter: GPUAdapter, overrides: CreateGpuContextOptions['limits'] = {}): Record<string, number> {
  const l = adapter.limits;
  for (const [name, value] of Object.entries(overrides)) {
    const max = l[name as keyof GPUSupportedLimits] as number;
    if (!Number.isSafeInteger(value) || value <= 0 || value > max) {
      throw new InvalidRequestError(`limit ${name} must be a positive integer up to the adapter's ${max}`, { name, value, max });
    }
  }
  return {
    maxBufferSize: l.maxBufferSize,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    ...overrides,
  };
}

function capabilitiesOf(device: GPUDevice): GpuCapabilities {
  const l = device.limits;
  return {
    shaderF16: device.features.has('shader-f16'),
    subgroups: device.features.has('subgroups'),
    timestampQuery: device.features.has('timestamp-query'),
    maxBufferSize: l.maxBufferSize,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    minStorageBufferOffsetAlignment: l.minStorageBufferOffsetAlignment,
    minUniformBufferOffsetAlignment: l.minUniformBufferOffsetAlignment,
  };
}

/**
 * Create the adapter and device with the features and limits the runtime can use. Works with
 * `navigator.gpu` (page or worker) and with Dawn in Node (pass `gpu`). Device loss is turned into
 * a DeviceLostError on `lost`, never an uncaught crash.
 */
export async function createGpuContext(options: CreateGpuContextOptions = {}): Promise<GpuContext> {
  const gpu = options.gpu ?? defaultGpu();
  if (!gpu) throw new DeviceLostError('WebGPU is not available in this environment (no navigator.gpu)', { reason: 'no-webgpu' });
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new DeviceLostError('No WebGPU adapter was found', { reason: 'no-adapter' });
  const wanted = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f) && (f !== 'shader-f16' || options.allowF16 !== false));
  const device = await adapter.requestDevice({
    label: 'semantic-device',
    requiredFeatures: wanted,
    requiredLimits: requestedLimits(adapter, options.limits),
  });
  let lostFlag = false;
  const lost = device.lost.then((info) => {
    lostFlag = true;
    const error = new DeviceLostError(`GPU device lost: ${info.message || info.reason}`, { reason: info.reason });
    options.onLost?.(error);
    return error;
  });
  device.addEventListener('uncapturederror', (event) => {
    // Validation errors are bugs in our kernels; surface them loudly in the console, since
    // WebGPU would otherwise swallow them and produce zeros.
    console.error(`[semantic] WebGPU error: ${(event as GPUUncapturedErrorEvent).error.message}`);
  });
  const info = adapter.info;
  if (isCpuInfo(info)) cpuDevices.add(device);
  return {
    device,
    adapterInfo: { vendor: info.vendor, architecture: info.architecture, description: info.description },
    caps: capabilitiesOf(device),
    lost,
    isLost: () => lostFlag,
  };
}

const cpuDevices = new WeakSet<GPUDevice>();

/** A software adapter: SwiftShader (Chromium's fallback) or Mesa's llvmpipe (lavapipe). */
function isCpuInfo(info: GPUAdapterInfo): boolean {
  const fallback = (info as GPUAdapterInfo & { readonly isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  return fallback || /swiftshader|llvmpipe|lavapipe/i.test(`${info.architecture} ${info.description}`);
}

/**
 * Whether `device` runs on the CPU. Kernels that pick between equivalent variants use it: a CPU
 * runs workgroup barriers as context switches of every invocation, so barrier-free variants win
 * there (the variants give bitwise-equal results, so the choice never changes an output).
 */
export function isCpuDevice(device: GPUDevice): boolean {
  return cpuDevices.has(device);
}

/**
 * How long a failed GPU operation waits for `lost` before deciding the failure was not a device
 * loss. A lost device rejects pending mapAsync calls (AbortError), and the `lost` promise may
 * settle a task or two later than that rejection; only failures pay this wait.
 */
const LOSS_GRACE_MS = 250;

/** The typed error to throw for a lost context, carrying the loss reason and the raw cause. */
function lostError(lost: DeviceLostError, cause?: unknown): DeviceLostError {
  return new DeviceLostError(lost.message, lost.details, cause === undefined ? undefined : { cause });
}

async function lostWithin(ctx: GpuContext, ms: number): Promise<DeviceLostError | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([ctx.lost, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Run GPU work so that device loss is an event, not a crash: on a lost device it rejects with
 * DeviceLostError before starting, and when the work fails with a raw error (a rejected mapAsync,
 * a DOMException) because the device was lost meanwhile, it rejects with DeviceLostError (the raw
 * error as `cause`). Typed errors (InvalidRequestError, ...) and failures on a live device pass
 * through unchanged.
 */
export async function guardDeviceLoss<T>(ctx: GpuContext, work: () => Promise<T>): Promise<T> {
  if (ctx.isLost()) throw lostError(await ctx.lost);
  try {
    return await work();
  } catch (error) {
    if (error instanceof SemanticError) throw error;
    const lost = ctx.isLost() ? await ctx.lost : await lostWithin(ctx, LOSS_GRACE_MS);
    if (lost) throw lostError(lost, error);
    throw error;
  }
}

/** Refuse a buffer the device cannot bind, with a typed error, before creating it. */
export function assertBindable(caps: GpuCapabilities, bytes: number, what: string): void {
  if (bytes > caps.maxStorageBufferBindingSize || bytes > caps.maxBufferSize) {
    throw new InvalidRequestError(`${what} needs ${bytes} bytes in one binding; the device allows ${caps.maxStorageBufferBindingSize}`, {
      bytes,
      limit: caps.maxStorageBufferBindingSize,
    });
  }
}
