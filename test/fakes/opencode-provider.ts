/**
 * Glue for driving the real opencode CLI against the fake Anthropic API: an `opencode.json`
 * with a custom provider (`@ai-sdk/anthropic`, bundled in the CLI) whose `baseURL` is the fake,
 * one model with a price so the CLI reports a cost per step.
 */

/** The provider id and model id in the config; `-m` takes `${OPENCODE_FAKE_PROVIDER}/${OPENCODE_FAKE_MODEL}`. */
export const OPENCODE_FAKE_PROVIDER = 'loomfake';
export const OPENCODE_FAKE_MODEL = 'claude-fake';

/** USD per million tokens, as opencode's `cost` takes them. */
export const OPENCODE_FAKE_PRICE = { input: 3, output: 15, cache_read: 0.3, cache_write: 3.75 } as const;

/** What one step of `usage` tokens costs at `OPENCODE_FAKE_PRICE`. */
export function fakeStepCost(usage: { inputTokens: number; outputTokens: number; cachedInputTokens: number }): number {
  return (usage.inputTokens * OPENCODE_FAKE_PRICE.input + usage.outputTokens * OPENCODE_FAKE_PRICE.output + usage.cachedInputTokens * OPENCODE_FAKE_PRICE.cache_read) / 1_000_000;
}

/** `opencode.json` text pointing the CLI at a fake Anthropic server (`url` without `/v1`); the key comes from ANTHROPIC_API_KEY. */
export function opencodeFakeConfig(url: string): string {
  return JSON.stringify(
    {
      $schema: 'https://opencode.ai/config.json',
      autoupdate: false,
      share: 'disabled',
      provider: {
        [OPENCODE_FAKE_PROVIDER]: {
          npm: '@ai-sdk/anthropic',
          name: 'Loom fake Anthropic',
          options: { baseURL: `${url}/v1`, apiKey: '{env:ANTHROPIC_API_KEY}' },
          models: { [OPENCODE_FAKE_MODEL]: { name: 'Claude fake', tool_call: true, cost: OPENCODE_FAKE_PRICE } },
        },
      },
    },
    null,
    2,
  );
}
