import { existsSync } from 'node:fs';
import { create, globals } from 'webgpu';
import { DeviceLostError } from '../../domain/errors.ts';

/** Vulkan drivers Dawn can use on Debian: Chromium's bundled SwiftShader, then the system's. */
const ICD_CANDIDATES = ['/usr/lib/chromium/vk_swiftshader_icd.json'];

/**
 * WebGPU in Node through Dawn (npm "webgpu"). Dawn needs a Vulkan driver: one given by the
 * environment (VK_ICD_FILENAMES), or Chromium's SwiftShader, found here. Fails with a clear
 * message when there is none.
 */
export function nodeGpu(): GPU {
  if (!process.env.VK_ICD_FILENAMES) {
    const icd = ICD_CANDIDATES.find((p) => existsSync(p));
    if (!icd) {
      throw new DeviceLostError(
        'No Vulkan driver for WebGPU in Node: install Debian\'s "chromium" package (it ships SwiftShader) ' +
          'or set VK_ICD_FILENAMES to a Vulkan ICD json (and LD_LIBRARY_PATH to the folder holding libvulkan.so.1)',
        { reason: 'no-vulkan-driver' },
      );
    }
    process.env.VK_ICD_FILENAMES = icd;
  }
  Object.assign(globalThis, globals);
  return create([]);
}
