/**
 * Redis MONITOR on a plain socket. ioredis' monitor mode races when the server is busy: a
 * command line arriving in the same read as MONITOR's +OK is taken for the reply of a command it
 * never sent ("Command queue state error", thrown out of its parser).
 */
import net from 'node:net';

export interface RedisMonitor {
  close(): void;
}

/** Calls `onCommand` with each command's arguments and database until closed; resolves once monitoring. */
export function monitorRedis(host: string, port: number, onCommand: (args: string[], database: string) => void): Promise<RedisMonitor> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host, () => socket.write('MONITOR\r\n'));
    let buffered = '';
    let monitoring = false;
    socket.setEncoding('latin1');
    socket.once('error', reject);
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let end: number;
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (!monitoring) {
          if (line !== '+OK') return reject(new Error(`MONITOR answered ${line}`));
          monitoring = true;
          socket.removeListener('error', reject);
          socket.on('error', () => undefined);
          resolve({ close: () => socket.destroy() });
          continue;
        }
        const m = /^\+\d+\.\d+ \[(\d+) [^\]]*\] (.*)$/.exec(line);
        if (m) onCommand(quotedArgs(m[2]!), m[1]!);
      }
    });
  });
}

const ESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', a: '\x07', b: '\b', '"': '"', '\\': '\\' };

/** The arguments of a MONITOR line: each in double quotes, escaped as Redis' sdscatrepr does. */
function quotedArgs(text: string): string[] {
  const args: string[] = [];
  let i = 0;
  while (i < text.length) {
    if (text[i] !== '"') {
      i++;
      continue;
    }
    let arg = '';
    for (i++; i < text.length && text[i] !== '"'; i++) {
      if (text[i] !== '\\') {
        arg += text[i];
      } else if (text[i + 1] === 'x') {
        arg += String.fromCharCode(parseInt(text.slice(i + 2, i + 4), 16));
        i += 3;
      } else {
        arg += ESCAPES[text[i + 1]!] ?? text[i + 1];
        i++;
      }
    }
    args.push(arg);
    i++;
  }
  return args;
}
