/** Types of scripts/chromium.mjs, for the TypeScript files that import it. */
export declare const CHROMIUM_ARGS: readonly string[];
export declare function findChromium(): string | null;
export declare function ensureChromium(): string;
export declare function swiftShaderEnv(env?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
