/**
 * Workflow cases run by several worker set-ups (workflows-processes: two worker processes;
 * workflows-pools: pool children): nesting, a failed chord header, replace.
 */
import { expect, it } from 'vitest';
import { chain, chord, GroupResult, group, TaskError } from '../../src/index.ts';

type CanvasApp = typeof import('./app.ts');

export function sharedWorkflowCases(t: CanvasApp): void {
  it('chain, group, and nesting three levels deep', async () => {
    const r1 = await chain(t.add.s(1, 2), t.add.s(3), t.mul.s(4)).applyAsync();
    const r2 = await group(chain(t.add.s(1, 1), t.mul.s(2)), chain(t.add.s(2, 2), t.mul.s(3))).applyAsync();
    const inner = chord([group(chain(t.add.s(1, 1), t.mul.s(2)), chain(t.add.s(2, 2), t.mul.s(3))), t.add.s(5, 5)], t.xsum.s());
    const r3 = await chain(inner, t.mul.s(2)).applyAsync();
    expect(await r1.get({ timeout: 30 })).toBe(24);
    expect(await r2.get({ timeout: 30 })).toEqual([4, 12]);
    expect(r2).toBeInstanceOf(GroupResult);
    expect(await r3.get({ timeout: 30 })).toBe((4 + 12 + 10) * 2);
  });

  it('a failed header task fails the chord with a ChordError', async () => {
    const r = await chord([t.add.s(1, 1), t.fail.s('part')], t.xsum.s()).applyAsync();
    const err = await r.get({ timeout: 30 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskError);
    expect((err as TaskError).excType).toBe('ChordError');
  });

  it('replace in another process: the original id gets the replacement’s result', async () => {
    expect(await (await t.replaceWithChain.delay(4)).get({ timeout: 30 })).toBe(50);
  });
}
