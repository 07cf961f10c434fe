/**
 * A command whose reply a dropped connection lost is re-sent by ioredis after it reconnects. With
 * side effects that would strand or duplicate messages: a re-sent fetch would take a second batch
 * (the first stuck in `unacked` until the visibility timeout), a re-sent LPUSH would publish twice.
 * Through a proxy that cuts the connection just before the reply, both run exactly once.
 * Shared Redis, run-unique key prefix.
 */
import net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { buildTaskMessage } from '../../src/protocol/task-message.ts';
import { createTransport } from '../../src/transport/registry.ts';
import type { Transport } from '../../src/transport/types.ts';
import { deleteByPrefix, redisClient, runPrefix, sparePort, TRANSPORT_DB } from './helpers.ts';

const prefix = runPrefix('resend');
const raw = redisClient(TRANSPORT_DB);

/**
 * A TCP proxy to the shared Redis that can cut the connection in place of one reply: the first reply
 * chunk containing a text, or the first one after a request containing a text has reached Redis.
 */
async function cuttingProxy(): Promise<{ port: number; cutReplyContaining(text: string): void; cutReplyAfterRequest(text: string): void; cuts: () => number; close(): void }> {
  const port = await sparePort();
  let replyText: string | undefined;
  let requestText: string | undefined;
  let armed = false;
  let cuts = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(6379, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (d) => {
      const arm = requestText !== undefined && d.includes(requestText);
      if (arm) requestText = undefined;
      upstream.write(d, () => void (arm && (armed = true)));
    });
    upstream.on('data', (d) => {
      if (armed || (replyText !== undefined && d.includes(replyText))) {
        armed = false;
        replyText = undefined;
        cuts++;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(d);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port,
    cutReplyContaining: (t) => void (replyText = t),
    cutReplyAfterRequest: (t) => void (requestText = t),
    cuts: () => cuts,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

let transport: Transport | undefined;
let proxy: Awaited<ReturnType<typeof cuttingProxy>> | undefined;

afterEach(async () => {
  await transport?.close();
  proxy?.close();
});

afterAll(async () => {
  await deleteByPrefix(TRANSPORT_DB, prefix);
  raw.disconnect();
});

function message(id: string) {
  return buildTaskMessage({ id, name: 't.noop', args: [id], origin: 'test', replyTo: 'r' });
}

describe('commands re-sent after a lost reply', () => {
  it('a fetch whose reply was lost returns its batch after reconnecting, and takes no second one', async () => {
    const p = `${prefix}fetch:`;
    proxy = await cuttingProxy();
    transport = createTransport(`redis://127.0.0.1:${proxy.port}/${TRANSPORT_DB}?global_keyprefix=${encodeURIComponent(p)}`);
    for (let i = 0; i < 20; i++) await transport.publish('q', message(`m${i}`));
    await transport.size('q');
    proxy.cutReplyContaining('"m4"');
    const got = await transport.fetch(["q"], 5, 5_000);
    expect(proxy.cuts()).toBe(1);
    expect(got.map((d) => d.message.headers.id)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(await raw.hlen(`${p}unacked`)).toBe(5);
    expect(await raw.llen(`${p}q`)).toBe(15);
    for (const d of got) await d.ack();
    expect(await raw.hlen(`${p}unacked`)).toBe(0);
  });

  it('a re-sent fetch from several queues gives each message its own queue again', async () => {
    const p = `${prefix}fetch2:`;
    proxy = await cuttingProxy();
    transport = createTransport(`redis://127.0.0.1:${proxy.port}/${TRANSPORT_DB}?global_keyprefix=${encodeURIComponent(p)}`);
    for (let i = 0; i < 3; i++) {
      await transport.publish('a', message(`a${i}`));
      await transport.publish('b', message(`b${i}`));
    }
    await transport.size('a');
    proxy.cutReplyContaining('"a2"');
    const got = await transport.fetch(['a', 'b'], 6, 5_000);
    expect(proxy.cuts()).toBe(1);
    // kombu's round robin: a queue goes to the end of the order after each message taken from it.
    expect(got.map((d) => `${d.queue}:${String(d.message.headers.id)}`)).toEqual(['a:a0', 'b:b0', 'a:a1', 'b:b1', 'a:a2', 'b:b2']);
    expect(await raw.hlen(`${p}unacked`)).toBe(6);
    for (const d of got) await d.ack();
    expect(await raw.hlen(`${p}unacked`)).toBe(0);
  });

  it('a publish whose reply was lost is on the queue once', async () => {
    const p = `${prefix}push:`;
    proxy = await cuttingProxy();
    transport = createTransport(`redis://127.0.0.1:${proxy.port}/${TRANSPORT_DB}?global_keyprefix=${encodeURIComponent(p)}`);
    await transport.size('q');
    proxy.cutReplyAfterRequest('only-once');
    await transport.publish('q', message('only-once'));
    expect(proxy.cuts()).toBe(1);
    const entries = await raw.lrange(`${p}q`, 0, -1);
    expect(entries.filter((e) => e.includes('only-once'))).toHaveLength(1);
  });
});
