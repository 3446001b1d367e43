import { describe, expect, it } from 'vitest';
import { crashArmed } from '../../src/process/crash-point.js';

describe('LOOM_TEST_CRASH_AT', () => {
  it('a bare point fires for every issue; <point>@<issue> only for that issue', () => {
    expect(crashArmed(undefined, 'pr:created', 3)).toBe(false);
    expect(crashArmed('', 'pr:created', 3)).toBe(false);
    expect(crashArmed('pr:created', 'pr:created', 3)).toBe(true);
    expect(crashArmed('pr:created', 'pr:created')).toBe(true);
    expect(crashArmed('judge:reviewed, pr:created', 'pr:created', 3)).toBe(true);
    expect(crashArmed('pr:created@4', 'pr:created', 3)).toBe(false);
    expect(crashArmed('pr:created@4', 'pr:created')).toBe(false);
    expect(crashArmed('judge:reviewed@3,pr:created@4', 'pr:created', 4)).toBe(true);
    expect(crashArmed('judge:reviewed@3,pr:created@4', 'judge:reviewed', 4)).toBe(false);
    expect(crashArmed('merge:pr-marked@12', 'merge:pr-marked', 12)).toBe(true);
  });
});
