import type { Row } from './harness.ts';

const HEAD = ['scenario', 'broker', 'sent', 'ran once', 'ran twice', 'lost', 'stuck', 'recovery s', 'worker crashed', 'peak RSS MB'];

function cells(r: Row): string[] {
  const twice = r.twiceOutsideWindow > 0 ? `${r.ranTwice} (${r.twiceOutsideWindow} outside)` : String(r.ranTwice);
  return [r.scenario, r.broker, String(r.sent), String(r.ranOnce), twice, String(r.lost), String(r.stuck), r.recoveryS === null ? '-' : r.recoveryS.toFixed(1), r.workerCrashed > 0 ? `yes (${r.workerCrashed})` : 'no', String(r.peakRssMb)];
}

/** One Markdown table (it reads as well in a terminal), notes below it. */
export function formatTable(rows: Row[]): string {
  const body = rows.map(cells);
  const widths = HEAD.map((h, i) => Math.max(h.length, ...body.map((c) => c[i]!.length)));
  const line = (cs: string[]) => `| ${cs.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const out = [line(HEAD), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)];
  const notes = rows.filter((r) => r.notes).map((r) => `- ${r.scenario} / ${r.broker}: ${r.notes}`);
  return [...out, ...(notes.length > 0 ? ['', ...notes] : [])].join('\n');
}

/** The figures to hold; a list of what broke them (empty when all hold). */
export function violations(rows: Row[]): string[] {
  const out: string[] = [];
  for (const r of rows) {
    const at = `${r.scenario} / ${r.broker}`;
    const durable = r.broker !== 'redis' || !r.scenario.startsWith('broker-');
    if (r.acksLate && durable && r.lost > 0) out.push(`${at}: ${r.lost} lost under acksLate`);
    if (r.acksLate && durable && r.stuck > 0) out.push(`${at}: ${r.stuck} stuck under acksLate`);
    if (r.twiceOutsideWindow > 0) out.push(`${at}: ${r.twiceOutsideWindow} run twice outside the at-least-once window`);
    if (r.workerCrashed > 0) out.push(`${at}: the worker crashed ${r.workerCrashed} time(s)`);
  }
  return out;
}
