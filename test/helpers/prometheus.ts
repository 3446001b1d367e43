/**
 * A strict reader of the Prometheus text exposition format (version 0.0.4), for tests of
 * `/metrics`: every line must be a `# HELP`, a `# TYPE`, a sample or empty; every sample must
 * belong to a family declared by `# TYPE` before it (histograms: `_bucket`, `_sum`, `_count`);
 * label values must be quoted and escaped; values must be numbers (or `+Inf`, `-Inf`, `NaN`).
 * Throws on the first line that is not.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
  /** The value of the sample `name` whose labels include `labels` (undefined when there is none). */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePrometheus(text: string): Exposition {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (m === null) throw new Error(`not a HELP or TYPE comment, ${where}`);
      const [, kind, name = '', rest = ''] = m;
      if (!NAME.test(name)) throw new Error(`bad metric name, ${where}`);
      if (kind === 'TYPE') {
        if (!TYPES.has(rest)) throw new Error(`unknown type, ${where}`);
        if (types.has(name)) throw new Error(`TYPE given twice, ${where}`);
        types.set(name, rest);
      } else help.set(name, rest);
      return;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( -?\d+)?$/.exec(line);
    if (m === null) throw new Error(`not a sample, ${where}`);
    const [, name = '', , body, valueText = ''] = m;
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    const type = types.get(family);
    if (type === undefined) throw new Error(`sample of an undeclared metric, ${where}`);
    if (family !== name && type !== 'histogram' && type !== 'summary') throw new Error(`suffix on a ${type}, ${where}`);
    const labels: Record<string, string> = {};
    if (body !== undefined && body !== '') {
      const label = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"\s*(,|$)/y;
      let at = 0;
      while (at < body.length) {
        label.lastIndex = at;
        const l = label.exec(body);
        if (l === null) throw new Error(`bad labels, ${where}`);
        labels[l[1] ?? ''] = (l[2] ?? '').replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
        at = label.lastIndex;
      }
    }
    const value = valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : valueText === 'NaN' ? NaN : Number(valueText);
    if (Number.isNaN(value) && valueText !== 'NaN') throw new Error(`bad value, ${where}`);
    samples.push({ name, labels, value });
  });
  return {
    types,
    help,
    samples,
    value: (name, labels = {}) => samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value,
  };
}
