import readline from 'node:readline';
import repl from 'node:repl';
import { PassThrough } from 'node:stream';
import type { Command } from 'commander';
import * as canvas from '../canvas/index.ts';
import { loadApp } from './load-app.ts';

/**
 * `celeriac shell`: Celery's `celery shell`, Node's REPL with `app` (also `celery`), each task under
 * the last part of its name (`add` for `tasks.add`) and the canvas (`group`, `chain`, `chord`,
 * `signature`, …) in scope. Top-level `await` works; input from a pipe runs line by line.
 */
export function registerShell(program: Command): Command {
  return program
    .command('shell')
    .description('Start a REPL with the app, its tasks and the canvas loaded')
    .option('-T, --without-tasks', 'do not add the tasks to the REPL\'s scope')
    .option('-I, --ipython', 'accepted for Celery\'s sake: the REPL is Node\'s')
    .option('-B, --bpython', 'accepted for Celery\'s sake: the REPL is Node\'s')
    .option('--python', 'accepted for Celery\'s sake: the REPL is Node\'s')
    .option('--eventlet', 'accepted for Celery\'s sake: Node needs no green threads')
    .option('--gevent', 'accepted for Celery\'s sake: Node needs no green threads')
    .action(async (_o: unknown, cmd: Command) => {
      const o = cmd.optsWithGlobals();
      const app = await loadApp(o);
      await app.finalize();
      const scope: Record<string, unknown> = {
        app, celery: app,
        group: canvas.group, chain: canvas.chain, chord: canvas.chord, signature: canvas.signature, subtask: canvas.signature,
        chunks: canvas.chunks, xmap: canvas.xmap, xstarmap: canvas.xstarmap,
      };
      const names: string[] = [];
      if (o.withoutTasks !== true) {
        for (const [name, task] of app.tasks) {
          const short = name.split('.').pop()!;
          if (name.startsWith('celery.') || !/^[A-Za-z_$][\w$]*$/.test(short) || short in scope) continue;
          scope[short] = task;
          names.push(short);
        }
      }
      const tty = process.stdin.isTTY === true;
      if (tty) process.stdout.write(`celeriac shell: app ${app.main}${names.length ? `; tasks: ${names.sort().join(', ')}` : ''}\n`);
      const server = tty
        ? repl.start({ prompt: '>>> ', useGlobal: false })
        : pipedRepl();
      Object.assign(server.context, scope);
      await new Promise<void>((resolve) => server.once('exit', () => resolve()));
      await app.close();
      process.exit(0);
    });
}

/**
 * Input from a pipe, one line at a time: the next line goes in when the REPL asks for it (its
 * prompt), after the previous one is evaluated, awaits included; else `r.id` would run before
 * `const r = await add.delay(1, 2)` settles.
 */
function pipedRepl(): repl.REPLServer {
  const input = new PassThrough();
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })[Symbol.asyncIterator]();
  const next = () => void lines.next().then((r) => (r.done ? input.end() : input.write(r.value + '\n')));
  const server = repl.start({ prompt: '', input, output: process.stdout, terminal: false, useGlobal: false });
  server.displayPrompt = next;
  next();
  return server;
}
