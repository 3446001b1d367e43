import { describe, expect, it } from 'vitest';
import { defaultConfig } from '../../src/core/config-model.js';
import { Label } from '../../src/core/labels.js';
import { awaitsPerson, describeOverlap, looksLikeFile, mayRunAnyway, namedPaths, overlapWaits, overlapsOf, samePath } from '../../src/core/overlap.js';

describe('namedPaths', () => {
  it('finds paths with a slash or an extension, in backticks, lists and prose, without repeats', () => {
    const text = ['Fix `src/core/planner.ts` and src/daemon/observe.ts.', '- docs/config.md', 'Also README.md (see ./docs/iteration.md), the whole src/tracker/ folder', 'Again src/core/planner.ts'].join('\n');
    expect(namedPaths(text)).toEqual(['src/core/planner.ts', 'src/daemon/observe.ts', 'docs/config.md', 'README.md', 'docs/iteration.md', 'src/tracker/']);
  });

  it('ignores URLs, issue references, abbreviations, version numbers and sentence ends', () => {
    const text = 'See https://example.com/a/b.html and #12, e.g. version 1.2.3 or v2.0. It works. Use node for this.';
    expect(namedPaths(text)).toEqual([]);
  });
});

describe('looksLikeFile', () => {
  it('a bare name with a source, docs or config extension is a file; code and project names are not', () => {
    for (const f of ['notes.md', 'planner.ts', 'package.json', 'Cargo.lock', 'setup.py', '.eslintrc.yml']) expect(looksLikeFile(f), f).toBe(true);
    for (const f of ['console.log', 'path.join', 'process.exitCode', 'Node.js', 'README']) expect(looksLikeFile(f), f).toBe(false);
  });
});

describe('samePath / overlapsOf', () => {
  it('matches equal paths, a directory and what it holds, and a bare file name with a path ending in it', () => {
    expect(samePath('src/x.ts', 'src/x.ts')).toBe(true);
    expect(samePath('src/tracker/', 'src/tracker/github/a.ts')).toBe(true);
    expect(samePath('planner.ts', 'src/core/planner.ts')).toBe(true);
    expect(samePath('src/a/planner.ts', 'src/b/planner.ts')).toBe(false);
    expect(samePath('src/x.ts', 'src/x.tsx')).toBe(false);
  });

  it('lists the work an issue overlaps, running shepherds first, never its own', () => {
    const work = [
      { issue: 3, pr: 9, running: false, awaitsPerson: true, files: ['src/x.ts'] },
      { issue: 4, pr: null, running: true, awaitsPerson: false, files: ['src/x.ts', 'src/y.ts'] },
      { issue: 5, pr: null, running: true, awaitsPerson: false, files: ['docs/z.md'] },
    ];
    const overlaps = overlapsOf(3, ['src/x.ts', 'src/y.ts'], work);
    expect(overlaps).toEqual([{ issue: 4, pr: null, running: true, awaitsPerson: false, files: ['src/x.ts', 'src/y.ts'] }]);
    expect(describeOverlap(overlaps[0]!)).toBe('#4 on src/x.ts, src/y.ts');
    expect(describeOverlap(overlapsOf(6, ['src/x.ts'], work)[1]!)).toBe('PR #9 (#3, waiting for a person) on src/x.ts');
  });
});

describe('mayRunAnyway / awaitsPerson / overlapWaits', () => {
  it('only an issue in the way of PRs waiting for a person, with nothing else starting', () => {
    const pr = { issue: 1, pr: 2, running: false, awaitsPerson: true, files: ['a.ts'] };
    expect(mayRunAnyway([pr], 0)).toBe(true);
    expect(mayRunAnyway([pr], 1)).toBe(false);
    expect(mayRunAnyway([{ ...pr, awaitsPerson: false }], 0)).toBe(false);
    expect(mayRunAnyway([{ ...pr, running: true }], 0)).toBe(false);
  });

  it('a PR waits for a person when held, its issue blocked, manual merge, or its role off', () => {
    const config = defaultConfig();
    config.roles.judge.enabled = true;
    config.roles.doctor.enabled = true;
    expect(awaitsPerson([Label.reviewRequested], [Label.building], config)).toBe(false);
    expect(awaitsPerson([Label.changesRequested], null, config)).toBe(false);
    expect(awaitsPerson([Label.pr], null, config)).toBe(false);
    expect(awaitsPerson([Label.pr, Label.manualMerge], null, config)).toBe(true);
    expect(awaitsPerson([Label.reviewRequested], [Label.blocked], config)).toBe(true);
    config.roles.champion.enabled = false;
    expect(awaitsPerson([Label.pr], null, config)).toBe(true);
    expect(awaitsPerson([], null, config)).toBe(true);
  });

  it('counts the waiting issues the way the planner decides', () => {
    const person = { predicted: { '2': ['a.ts'], '3': ['a.ts'], '4': ['b.ts'] }, work: [{ issue: 1, pr: 5, running: false, awaitsPerson: true, files: ['a.ts'] }] };
    expect([...overlapWaits(person, [2, 3, 4]).keys()]).toEqual([2, 3]);
    expect([...overlapWaits(person, [2, 3]).keys()]).toEqual([3]);
    const loom = { ...person, work: [{ ...person.work[0]!, awaitsPerson: false }] };
    expect([...overlapWaits(loom, [2, 3]).keys()]).toEqual([2, 3]);
    expect(overlapWaits(undefined, [2]).size).toBe(0);
  });
});
