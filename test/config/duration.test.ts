/**
 * Durations in config and env: seconds as a number or digit string, or a string with units
 * (`500ms`, `30s`, `10m`, `1h`, `1d`, combined as `1h30m`). Always milliseconds inside.
 */
import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/core/duration.js';

const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

describe('parseDuration', () => {
  it.each([
    [0, 0],
    [30, 30 * SEC],
    [1.5, 1500],
    [0.25, 250],
    [3600, HOUR],
  ])('the number %d is seconds', (value, ms) => {
    expect(parseDuration(value)).toBe(ms);
  });

  it('rounds sub-millisecond numbers to whole milliseconds', () => {
    expect(parseDuration(0.0004)).toBe(0);
    expect(parseDuration(0.0016)).toBe(2);
  });

  it.each([[-1], [Number.NaN], [Number.POSITIVE_INFINITY], [Number.NEGATIVE_INFINITY]])('rejects the number %d', (value) => {
    expect(parseDuration(value)).toBeUndefined();
  });

  it.each([
    ['30', 30 * SEC],
    ['0', 0],
    ['2.5', 2500],
    ['500ms', 500],
    ['30s', 30 * SEC],
    ['10m', 10 * MIN],
    ['1h', HOUR],
    ['1d', DAY],
    ['1h30m', 90 * MIN],
    ['1m30s', 90 * SEC],
    ['1d2h3m4s5ms', DAY + 2 * HOUR + 3 * MIN + 4 * SEC + 5],
    ['1.5h', 90 * MIN],
    ['0.5s', 500],
    ['  45s  ', 45 * SEC],
    ['\t10\n', 10 * SEC],
  ])('parses %j', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([[''], ['   '], ['abc'], ['10x'], ['s'], ['ms'], ['-5s'], ['-5'], ['1h 30m'], ['10 m'], ['5m10'], ['1.s'], ['.5s'], ['1e3'], ['30sec'], ['1,5s']])(
    'rejects %j',
    (text) => {
      expect(parseDuration(text)).toBeUndefined();
    },
  );

  it.each([[null], [undefined], [true], [{}], [[30]], [['30s']]])('rejects the non-duration value %j', (value) => {
    expect(parseDuration(value)).toBeUndefined();
  });

  it('keeps no state between calls (a failed parse does not affect the next one)', () => {
    expect(parseDuration('10x')).toBeUndefined();
    expect(parseDuration('10m')).toBe(10 * MIN);
    expect(parseDuration('1h30')).toBeUndefined();
    expect(parseDuration('1h30m')).toBe(90 * MIN);
    expect(parseDuration('1h30m')).toBe(90 * MIN);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [999, '0s'],
    [1000, '1s'],
    [45 * SEC, '45s'],
    [59_999, '59s'],
    [MIN, '1m'],
    [12 * MIN + 30 * SEC, '12m'],
    [HOUR - 1, '59m'],
    [HOUR, '1h'],
    [2 * HOUR + 15 * MIN, '2h 15m'],
    [23 * HOUR + 59 * MIN, '23h 59m'],
    [DAY, '1d'],
    [DAY + HOUR, '1d 1h'],
    [2 * DAY + HOUR + 30 * MIN, '2d 1h'],
    [10 * DAY, '10d'],
  ])('%d ms is %j', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('treats negative durations as zero', () => {
    expect(formatDuration(-5000)).toBe('0s');
  });

  it('single-unit output parses back to the same whole units', () => {
    for (const ms of [45 * SEC, 12 * MIN, 3 * HOUR, 2 * DAY]) expect(parseDuration(formatDuration(ms))).toBe(ms);
  });
});
