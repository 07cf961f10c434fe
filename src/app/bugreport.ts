import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pyRepr } from '../protocol/repr.ts';
import { VERSION } from '../version.ts';
import { filterHiddenSettings, maybeSanitizeUrl } from './censor.ts';
import { celeryTable, type ResolvedConfig } from './config.ts';

/** The libraries that speak to the brokers, whose versions a bug report needs. */
const LIBRARIES = ['amqplib', 'ioredis', 'better-sqlite3'];

/**
 * Celery's `bugreport` (`celery report`, `inspect report`): versions, platform, then the
 * settings that differ from the defaults, secrets censored.
 */
export function bugreport(conf: ResolvedConfig): string {
  const settings = Object.entries(filterHiddenSettings(celeryTable(conf, false))).map(([k, v]) => `${k}: ${pyRepr(v)}`);
  const libs = LIBRARIES.map((name) => `${name}:${libraryVersion(name) ?? 'absent'}`).join(' ');
  return [
    `software -> celeriac:${VERSION} node:${process.version}`,
    `            ${libs}`,
    `platform -> system:${os.type()} arch:${os.arch()}`,
    `            kernel version:${os.release()}`,
    `loader   -> celeriac`,
    `settings -> transport:${conf.broker.split(':')[0]} results:${maybeSanitizeUrl(conf.backend ?? 'disabled')}`,
    '',
    ...settings,
    '',
  ].join('\n');
}

function libraryVersion(name: string): string | undefined {
  try {
    let dir = path.dirname(createRequire(import.meta.url).resolve(name));
    for (;;) {
      const file = path.join(dir, 'package.json');
      if (fs.existsSync(file)) {
        const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name) return pkg.version;
      }
      const up = path.dirname(dir);
      if (up === dir) return undefined;
      dir = up;
    }
  } catch {
    return undefined;
  }
}
