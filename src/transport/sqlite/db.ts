import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type Database from 'better-sqlite3';
import { maskUrl as censorUrl } from '../../common/censor.ts';
import { ConfigurationError, DatabaseFileGone } from '../../errors.ts';

/**
 * Shared by the SQLite broker and the SQLite result store: URL → file path, opening a
 * connection that several processes can use at once, and a change watcher on the file.
 */

/**
 * SQLAlchemy's convention: `sqlite:///rel/path.db` → `<cwd>/rel/path.db`,
 * `sqlite:////abs/path.db` → `/abs/path.db`; also `sqlite://file.db` (→ `<cwd>/file.db`) and
 * `sqlite://` (→ `<cwd>/celeriac.db`).
 */
export function sqlitePath(url: URL): string {
  if (url.protocol !== 'sqlite:') throw new ConfigurationError(`not a sqlite:// URL: ${maskUrl(url)}`);
  // With an empty host the path starts with the slash that ends `sqlite://`: drop it.
  const raw = decodeURIComponent(url.host ? url.host + url.pathname : url.pathname.replace(/^\//, ''));
  return path.resolve(raw === '' ? 'celeriac.db' : raw);
}

/** The URL as text with any password masked (src/common/censor.ts). */
export function maskUrl(url: URL): string {
  return censorUrl(url);
}

export type SqliteSynchronous = 'off' | 'normal' | 'full';

export interface OpenOptions {
  /** How long a statement waits for another process's write lock (ms). */
  busyTimeoutMs: number;
  /** WAL + NORMAL survives process crashes; FULL also survives power loss. */
  synchronous: SqliteSynchronous;
}

/** The driver (a native addon) is loaded on first use: a process on another broker never pays for it. */
let driver: typeof Database | undefined;
const require = createRequire(import.meta.url);

export function openDatabase(file: string, opts: OpenOptions, schema: string): Database.Database {
  createPrivate(file);
  driver ??= require('better-sqlite3') as typeof Database;
  const db = new driver(file);
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs))}`);
    // Lets the file give back the pages of deleted messages (see Vacuum). Takes effect only on a
    // new file (before its first table); an older file needs one `VACUUM` to switch.
    db.pragma('auto_vacuum = INCREMENTAL');
    // Switching to WAL needs a moment of exclusive access; another process may be opening too.
    retryBusy(() => db.pragma('journal_mode = WAL'), opts.busyTimeoutMs);
    db.pragma(`synchronous = ${opts.synchronous.toUpperCase()}`);
    db.pragma('journal_size_limit = 67108864'); // shrink the WAL back to 64 MB after a burst
    // A commit past 1000 WAL pages would copy the whole WAL into the file (and fsync) before
    // returning: 3 s inside the publish of a 27 MB message here. Checkpoints run on a timer instead (Vacuum).
    db.pragma('wal_autocheckpoint = 0');
    // IF NOT EXISTS inside an IMMEDIATE transaction: idempotent and race-free across processes.
    retryBusy(() => db.transaction(() => db.exec(schema)).immediate(), opts.busyTimeoutMs);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

/**
 * Create the file owner-only (0600) if it is missing: it holds task arguments and results.
 * SQLite gives the -wal and -shm files the mode of the database file. A missing directory is
 * an error, not created: it is most often a mistyped URL.
 */
function createPrivate(file: string): void {
  const dir = path.dirname(file);
  if (!fs.existsSync(dir)) {
    throw new ConfigurationError(
      `SQLite database directory ${dir} does not exist: create it, or fix the URL ` +
      '(sqlite:///rel/path.db is relative to the working directory, sqlite:////abs/path.db is absolute)',
    );
  }
  fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600));
}

/** The file's identity (device and inode), or null if it no longer exists. */
export function fileIdentity(file: string): string | null {
  try {
    const st = fs.statSync(file, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

/**
 * Throws DatabaseFileGone when `file` is no longer the file opened as `identity`. We stop rather
 * than reopen: the messages and locks of the old file are gone with it, and a process that
 * silently switched files would hide that; a supervisor restarting the worker reopens cleanly.
 */
export function assertSameFile(file: string, identity: string | null, what: string): void {
  const now = fileIdentity(file);
  if (now === identity) return;
  throw new DatabaseFileGone(
    `the SQLite ${what} file ${file} was ${now === null ? 'deleted' : 'replaced by another file'} while in use; ` +
    'messages and results written to it since are lost to this process: restart it (and every process using the file)',
  );
}

const VACUUM_EVERY_MS = 1000;
/** Free pages (4 KiB) kept before giving space back, and given back per step. */
const VACUUM_SLACK_PAGES = 2048;
const VACUUM_STEP_PAGES = 8192;

/**
 * Upkeep of the file, off the hot path, every second: a passive WAL checkpoint (in place of
 * SQLite's automatic one, which runs inside whichever commit crosses the threshold), and giving
 * the space of deleted rows back to the filesystem once more than 8 MiB are free, 32 MiB per step
 * (a few ms of write lock), so a large message does not leave the file at its peak size. The
 * space part is a no-op on files without auto_vacuum = INCREMENTAL.
 */
export class Vacuum {
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly db: Database.Database) {
    this.timer = setInterval(() => this.step(), VACUUM_EVERY_MS).unref();
  }

  step(): void {
    try {
      if (!this.db.open) return;
      const free = this.db.pragma('freelist_count', { simple: true }) as number;
      if (free > VACUUM_SLACK_PAGES) this.db.pragma(`incremental_vacuum(${Math.min(VACUUM_STEP_PAGES, free)})`);
      // Also where pages freed by the vacuum reach the main file, and it shrinks.
      this.db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // Busy: the next tick tries again.
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

function retryBusy<T>(fn: () => T, budgetMs: number): T {
  const until = Date.now() + budgetMs;
  for (;;) {
    try {
      return fn();
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (!code.startsWith('SQLITE_BUSY') && !code.startsWith('SQLITE_LOCKED')) throw err;
      if (Date.now() > until) throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

export function parseSynchronous(value: unknown): SqliteSynchronous {
  const v = String(value ?? 'normal').toLowerCase();
  if (v === 'off' || v === 'normal' || v === 'full') return v;
  throw new ConfigurationError(`sqlite option synchronous must be off, normal or full, not ${JSON.stringify(value)}`);
}

/** A positive number from an option (URL query strings included), or the fallback. */
export function numberOption(name: string, value: unknown, fallback: number): number {
  if (value === undefined || value === null || value === '') return fallback;
  const n = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(n) || n < 0) throw new ConfigurationError(`sqlite option ${name} must be a non-negative number, not ${JSON.stringify(value)}`);
  return n;
}

/** Options passed in code, overridden by the URL query (`?visibility_timeout=5`), keys snake_case. */
export function mergeOptions(url: URL, options: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(options)) out[snake(k)] = v;
  for (const [k, v] of url.searchParams) out[snake(k)] = v;
  return out;
}

function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

interface Feed {
  refs: number;
  waiters: Set<() => void>;
  /** Stops the file watchers; null while not watching. */
  stop: (() => void) | null;
  lastWait: number;
  idleTimer: NodeJS.Timeout | null;
  /** The second wake-up that follows a file event (see fileChanged). */
  trailing: NodeJS.Timeout | null;
}
const feeds = new Map<string, Feed>();
const WATCH_IDLE_MS = 2000;
const TRAILING_WAKE_MS = 2;

/**
 * Wake-ups for pollers of one database file, shared by every connection of this process:
 * `notify()` after an in-process write, plus fs.watch on the WAL and main file for writes by
 * other processes where the platform supports it. Only a way to wake early: callers still poll.
 * The watchers run only while someone waits: a busy consumer never waits, and every commit
 * would otherwise cost it a file event.
 */
export class ChangeFeed {
  private readonly feed: Feed;
  private closed = false;

  constructor(readonly file: string) {
    let feed = feeds.get(file);
    if (!feed) feeds.set(file, (feed = { refs: 0, waiters: new Set(), stop: null, lastWait: 0, idleTimer: null, trailing: null }));
    feed.refs++;
    this.feed = feed;
  }

  /** Resolve after `ms`, on the next change, or when `signal` aborts. Never rejects. */
  wait(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      this.startWatching();
      const done = (): void => {
        clearTimeout(timer);
        this.feed.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.feed.waiters.add(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  notify(): void {
    wakeAll(this.feed.waiters);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.notify();
    if (--this.feed.refs === 0) {
      stopWatching(this.feed);
      feeds.delete(this.file);
    }
  }

  private startWatching(): void {
    const feed = this.feed;
    feed.lastWait = Date.now();
    if (feed.stop || this.closed) return;
    feed.stop = watchFiles([`${this.file}-wal`, this.file], () => fileChanged(feed));
    feed.idleTimer = setInterval(() => {
      if (feed.waiters.size === 0 && Date.now() - feed.lastWait > WATCH_IDLE_MS) stopWatching(feed);
    }, WATCH_IDLE_MS).unref();
  }
}

/**
 * A writer's WAL frames raise their events before its commit is visible (the commit is the
 * wal-index update in the -shm mapping, which raises none), so a reader woken by them can still
 * see the old state. A second wake-up shortly after catches the commit; without it the reader
 * slept until its next poll (up to 50-100 ms).
 */
function fileChanged(feed: Feed): void {
  wakeAll(feed.waiters);
  feed.trailing ??= setTimeout(() => {
    feed.trailing = null;
    wakeAll(feed.waiters);
  }, TRAILING_WAKE_MS);
}

function stopWatching(feed: Feed): void {
  if (feed.trailing) clearTimeout(feed.trailing);
  feed.trailing = null;
  if (feed.idleTimer) clearInterval(feed.idleTimer);
  feed.stop?.();
  feed.stop = null;
  feed.idleTimer = null;
}

function wakeAll(waiters: Set<() => void>): void {
  for (const w of [...waiters]) w();
}

function watchFiles(files: string[], onChange: () => void): () => void {
  const watchers: fs.FSWatcher[] = [];
  for (const f of files) {
    try {
      const w = fs.watch(f, { persistent: false }, onChange);
      w.on('error', () => w.close());
      watchers.push(w);
    } catch {
      // Missing file or unsupported filesystem: polling alone still works.
    }
  }
  return () => {
    for (const w of watchers) w.close();
  };
}

/** Is a process of this machine still running? EPERM means it exists but belongs to someone else. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
