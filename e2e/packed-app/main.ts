// A consumer of the packed `semantic` package (e2e/packed-app.spec.ts copies this into a fresh
// Vite app): the public entry only, as an app that ran `npm install semantic` would write it.
import { AgentNotFoundError, createEngine, type LoadProgress } from 'semantic';

interface Outcome {
  readonly progress: number;
  readonly weightsDone: boolean;
  readonly text?: string;
  readonly streamed?: string;
  readonly completionTokens?: number;
  readonly typedError?: boolean;
  readonly error?: { readonly name: string; readonly code?: string; readonly message: string };
}

const events: LoadProgress[] = [];

async function run(): Promise<Outcome> {
  const engine = await createEngine({ model: { id: 'tiny-llama', source: '/models/tiny-llama/' }, onProgress: (p) => events.push(p) });
  const params = { model: 'tiny-llama', messages: [{ role: 'user' as const, content: 'ROMEO: But soft' }], max_tokens: 8, temperature: 0 };
  const whole = await engine.chat.completions.create(params);
  let streamed = '';
  for await (const chunk of await engine.chat.completions.create({ ...params, stream: true })) streamed += chunk.choices[0]?.delta.content ?? '';
  const typedError = await engine.agents.retrieve('nobody').then(() => false, (e: unknown) => e instanceof AgentNotFoundError);
  await engine.close();
  const weights = events.filter((e) => e.file.endsWith('.safetensors'));
  const last = weights[weights.length - 1];
  return {
    progress: events.length,
    weightsDone: last !== undefined && last.loadedBytes === last.totalBytes,
    text: whole.choices[0]?.message.content,
    streamed,
    completionTokens: whole.usage.completion_tokens,
    typedError,
  };
}

const out = document.getElementById('out') as HTMLElement;
run()
  .catch((e: unknown): Outcome => {
    const error = e instanceof Error ? { name: e.name, code: (e as { code?: string }).code, message: e.message } : { name: 'unknown', message: String(e) };
    return { progress: events.length, weightsDone: false, error };
  })
  .then((outcome) => {
    out.textContent = JSON.stringify(outcome);
    (window as unknown as { outcome: Outcome }).outcome = outcome;
  });
