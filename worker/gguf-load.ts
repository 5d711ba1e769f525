/**
 * Loading a GGUF file in the worker: a URL of the app's origin, any URL with range support, or a
 * hub file (`hf://owner/repo/file.gguf`). The file is read through HTTP range requests (each range
 * kept in the Cache API, so a reload or an offline start reads it back), tensor by tensor; the
 * matrices keep their block layouts on the GPU; the tokenizer comes from the metadata unless a
 * tokenizer.json sits beside the file.
 */
import { InvalidRequestError } from '../src/domain/errors.ts';
import type { DeviceBackend } from '../src/application/recovering-runtime.ts';
import { ggufTokenizerFiles, GgufTokenizerSource, openGgufModel } from '../src/adapters/gguf/index.ts';
import { FetchModelSource } from '../src/adapters/http/fetch-model-source.ts';
import { HttpRangeSource, resolveModelSource } from '../src/adapters/http/range-source.ts';
import { HfTokenizer } from '../src/adapters/tokenizer/index.ts';
import { blockWeightTensors } from '../src/adapters/webgpu/block-weights.ts';
import type { GpuContext } from '../src/adapters/webgpu/device.ts';
import { WebGpuBackend } from '../src/adapters/webgpu/webgpu-backend.ts';
import type { LoadProgress, ModelDescriptor } from '../src/ports/inbound.ts';

export function isGgufSource(source: string): boolean {
  return source.startsWith('hf://') || /\.gguf([?#].*)?$/i.test(source);
}

export async function loadGgufOnDevice(
  context: GpuContext,
  descriptor: ModelDescriptor,
  onProgress?: (p: LoadProgress) => void,
): Promise<{ device: DeviceBackend; tokenizer: HfTokenizer }> {
  if (descriptor.weights !== undefined) throw new InvalidRequestError('weights does not apply to a GGUF file: its tensors keep their own types');
  const url = new URL(resolveModelSource(descriptor.source), globalThis.location?.href ?? 'http://localhost/').href;
  const file = url.slice(url.lastIndexOf('/') + 1);
  const source = await HttpRangeSource.open(url, {
    onProgress: (loadedBytes, totalBytes) => onProgress?.({ file, loadedBytes, totalBytes }),
  });
  const model = await openGgufModel(source);
  const tensors = await blockWeightTensors(model.weights());
  const backend = await WebGpuBackend.fromTensors(context, model.config, { tensors, fingerprint: model.fingerprint }, {
    modelId: descriptor.id,
    kvDtype: descriptor.kvDtype,
    kvBudgetBytes: descriptor.kvBudgetBytes,
    kvBudgetFraction: descriptor.kvBudgetFraction,
  });
  await backend.warmup();
  const beside = new FetchModelSource(url.slice(0, url.lastIndexOf('/') + 1));
  const tokenizer = await HfTokenizer.fromFiles(new GgufTokenizerSource(url, ggufTokenizerFiles(model.file), beside));
  return { device: { backend, lost: context.lost }, tokenizer };
}
