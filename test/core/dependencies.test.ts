import { describe, expect, it } from 'vitest';
import type { DependencyMap } from '../../src/core/dependencies.js';
import { dependencyCycles, dependencyProblems, openDependencies, parseDependencies } from '../../src/core/dependencies.js';

describe('parseDependencies', () => {
  it('reads Depends on / Blocked by lines, several per line and several lines, case-insensitive, without repeats or itself', () => {
    const body = ['Some text mentioning #9 in passing.', 'Depends on #3', '- blocked by: #4, #5 and #3', '> DEPENDS ON #7 (see #8)', 'Depends on #12'].join('\n');
    expect(parseDependencies(body, 12)).toEqual([3, 4, 5, 7, 8]);
  });

  it('ignores numbers outside those lines and lines that only mention the words', () => {
    expect(parseDependencies('Fixes #2.\nThis depends on nothing.\nSee issue#4', 1)).toEqual([]);
  });

  it('takes the list under a bare Depends on: line, in every common list and heading form', () => {
    expect(parseDependencies('Depends on:\n- #1\n- #7 (the parser)\n\nMore text #9', 20)).toEqual([1, 7]);
    expect(parseDependencies('**Blocked by:**\n\n* [ ] #3\n* [x] #4 replaces #8\n1. #5\nNot a list #6', 20)).toEqual([3, 4, 5]);
    expect(parseDependencies('## Depends on\n1) #2\n2) #3', 20)).toEqual([2, 3]);
    expect(parseDependencies('**Depends on:** #11, #12', 20)).toEqual([11, 12]);
    expect(parseDependencies('Depends on [#13](https://example.com/13),#14', 20)).toEqual([13, 14]);
    // A line that names its dependencies does not take the list after it.
    expect(parseDependencies('Depends on #1\n- #2 is unrelated', 20)).toEqual([1]);
    // A list item that does not start with a reference ends the list.
    expect(parseDependencies('Depends on:\n- the parser, #4\n- #5', 20)).toEqual([]);
  });

  it('does not read lines inside fenced code blocks', () => {
    expect(parseDependencies('```\nDepends on #1\n```\n~~~md\nBlocked by #2\n~~~\nDepends on #3', 20)).toEqual([3]);
  });
});

describe('dependency gates', () => {
  const map: DependencyMap = {
    '1': [{ number: 2, state: 'open' }, { number: 9, state: 'done' }],
    '2': [{ number: 3, state: 'open' }],
    '3': [{ number: 2, state: 'open' }],
    '4': [{ number: 5, state: 'not-planned' }, { number: 6, state: 'missing' }],
    '7': [{ number: 7, state: 'open' }, { number: 1, state: 'open' }],
  };

  it('openDependencies lists the open ones only', () => {
    expect(openDependencies(map, 1)).toEqual([2]);
    expect(openDependencies(map, 4)).toEqual([]);
    expect(openDependencies(undefined, 1)).toEqual([]);
  });

  it('finds cycles of two or more issues, not the chain leading into one', () => {
    expect(dependencyCycles(map)).toEqual([[2, 3]]);
    expect(dependencyCycles({ '1': [{ number: 2, state: 'open' }], '2': [{ number: 3, state: 'open' }], '3': [{ number: 1, state: 'open' }] })).toEqual([[1, 2, 3]]);
    // A closed link breaks the cycle.
    expect(dependencyCycles({ '1': [{ number: 2, state: 'done' }], '2': [{ number: 1, state: 'open' }] })).toEqual([]);
  });

  it('reports a cycle touching a ready issue, and not-planned / missing dependencies of ready issues, each once', () => {
    const problems = dependencyProblems(map, [3, 4], []);
    expect(problems.map((p) => p.key)).toEqual(['cycle:2,3', 'not-planned:4:5', 'missing:4:6']);
    expect(problems[0]).toMatchObject({ issue: 2, kind: 'cycle', numbers: [2, 3] });
    expect(dependencyProblems(map, [3, 4], ['cycle:2,3', 'missing:4:6']).map((p) => p.key)).toEqual(['not-planned:4:5']);
    expect(dependencyProblems(map, [1], [])).toEqual([]);
  });
});
