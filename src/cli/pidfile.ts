/** Celery's pid lock (celery/platforms.py Pidfile): one file holding the pid and a newline. */
import fs from 'node:fs';
import path from 'node:path';
import { CeleriacError } from '../errors.ts';

/** Exit status of a process that finds its pid file held (EX_CANTCREAT, as Celery). */
export const EX_CANTCREAT = 73;

export class PidfileLocked extends CeleriacError {
  readonly exitCode = EX_CANTCREAT;
}

/** The pid in the file; undefined when there is no file; throws on a file that is not a pid and a newline. */
export function readPid(file: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const line = text.split('\n')[0]!;
  if (!text.includes('\n') || !/^\d+$/.test(line.trim())) throw new Error(`pidfile ${file} contents invalid`);
  return Number(line.trim());
}

/** The process is alive (signal 0 reaches it, or exists under another user). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove a pid file whose process is gone (or that is unreadable); true if the file is free now. */
export function removeIfStale(file: string): boolean {
  let pid: number | undefined;
  try {
    pid = readPid(file);
  } catch {
    process.stderr.write('Broken pidfile found - Removing it.\n');
    fs.rmSync(file, { force: true });
    return true;
  }
  if (pid === undefined) return true;
  if (isAlive(pid)) return false;
  process.stderr.write('Stale pidfile exists - Removing it.\n');
  fs.rmSync(file, { force: true });
  return true;
}

/** Fail as Celery's create_pidlock when the file names a live process. */
export function checkPidfileFree(file: string): void {
  if (!removeIfStale(file)) {
    throw new PidfileLocked(`Pidfile (${file}) already exists.\nSeems we're already running? (pid: ${readPid(file)})`);
  }
}

/**
 * Write this process's pid to `file` (created exclusively, mode 0644) and remove it when the
 * process exits; returns the release function.
 */
export function createPidlock(file: string): () => void {
  const abs = path.resolve(file);
  checkPidfileFree(abs);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  const content = `${process.pid}\n`;
  const fd = fs.openSync(abs, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o644);
  try {
    fs.writeSync(fd, content);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  const release = () => {
    process.off('exit', release);
    // Only our own: a successor may have taken the name since.
    try {
      if (readPid(abs) === process.pid) fs.rmSync(abs, { force: true });
    } catch {
      /* unreadable: not ours */
    }
  };
  process.on('exit', release);
  return release;
}
