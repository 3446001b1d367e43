import { describe, expect, it } from 'vitest';
import { codexRetryOverrides, declaredProvider } from '../../src/runtimes/codex-config.js';

const DECLARED = `
model = "gpt-5"
model_provider = "azure"   # the team's endpoint

[model_providers.azure]
name = "Azure"
base_url = "https://example.openai.azure.com/openai"
request_max_retries = 1

[profiles.local]
model_provider = 'ollama-box'

[model_providers."ollama-box"]
name = "Ollama"
base_url = "http://127.0.0.1:11434/v1"
stream_max_retries = 9

[[mcp_servers.list]]
model_provider = "not-this"
`;

describe('declaredProvider', () => {
  it('finds the top-level provider and its retry settings', () => {
    expect(declaredProvider(DECLARED, [])).toEqual({ id: 'azure', requestMaxRetries: 1, streamMaxRetries: undefined });
  });

  it('follows a profile, from the arguments or the config, and a -c override over both', () => {
    expect(declaredProvider(DECLARED, ['--profile', 'local'])).toEqual({ id: 'ollama-box', requestMaxRetries: undefined, streamMaxRetries: 9 });
    expect(declaredProvider(`profile = "local"\n${DECLARED}`, [])?.id).toBe('ollama-box');
    expect(declaredProvider(DECLARED, ['-p', 'local', '-c', 'model_provider="azure"'])?.id).toBe('azure');
  });

  it('is null for a built-in provider: the CLI refuses to change those', () => {
    expect(declaredProvider('model = "gpt-5"\n', [])).toBeNull();
    expect(declaredProvider(DECLARED, ['-c', 'model_provider=openai'])).toBeNull();
    expect(declaredProvider('', [])).toBeNull();
  });
});

describe('codexRetryOverrides', () => {
  it('caps both retry settings of a declared provider, keeping a lower one', () => {
    expect(codexRetryOverrides(DECLARED, [], 2)).toEqual(['-c', 'model_providers.azure.request_max_retries=1', '-c', 'model_providers.azure.stream_max_retries=2']);
    expect(codexRetryOverrides(DECLARED, ['--profile=local'], 0)).toEqual(['-c', 'model_providers.ollama-box.request_max_retries=0', '-c', 'model_providers.ollama-box.stream_max_retries=0']);
  });

  it('passes nothing for a built-in provider, or an id -c cannot address', () => {
    expect(codexRetryOverrides('', [], 2)).toEqual([]);
    expect(codexRetryOverrides('model_provider = "my.box"\n[model_providers."my.box"]\nname = "x"\n', [], 2)).toEqual([]);
  });
});
