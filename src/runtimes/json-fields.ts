/**
 * Lenient field readers for agent CLI stream events: a missing or wrong-typed field reads as
 * empty (or undefined, for the `optional` readers), so one odd line never throws inside a stream
 * parser.
 */

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function record(value: unknown): Record<string, unknown> {
  return isRecord(value) ? value : {};
}

/** A string field, or undefined when it is missing or no string. */
export function optionalStr(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** A finite number field, or undefined when it is missing or no finite number. */
export function optionalNum(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

export function str(value: unknown): string {
  return optionalStr(value) ?? '';
}

export function num(value: unknown): number {
  return optionalNum(value) ?? 0;
}

/** A value as transcript text: strings as they are, anything else as JSON. */
export function json(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : JSON.stringify(value);
}
