import { describe, expect, it } from 'vitest';
import { editDistance, nearestName } from '../../src/core/edit-distance.js';

describe('did-you-mean hints', () => {
  it('counts insertions, deletions, substitutions and neighbour swaps as one edit each', () => {
    expect(editDistance('status', 'status')).toBe(0);
    expect(editDistance('stauts', 'status')).toBe(1);
    expect(editDistance('logz', 'logs')).toBe(1);
    expect(editDistance('wrker', 'worker')).toBe(1);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });

  it('names the nearest known name only when it is near enough to be a typo', () => {
    const commands = ['start', 'status', 'stop', 'logs', 'worker', 'why'];
    expect(nearestName('stauts', commands)).toBe('status');
    expect(nearestName('STATUS', commands)).toBe('status');
    expect(nearestName('strat', commands)).toBe('start');
    expect(nearestName('x', commands)).toBeUndefined();
    expect(nearestName('frobnicate', commands)).toBeUndefined();
    expect(nearestName('wh', commands)).toBeUndefined();
  });
});
