/** The orchestrator's own RabbitMQ channel: how many ready messages a queue holds. */
import amqp from 'amqplib';
import { AMQP_URL } from './config.ts';

let connection: Promise<{ conn: amqp.ChannelModel; channel: amqp.Channel }> | undefined;

function open() {
  connection ??= (async () => {
    const conn = await amqp.connect(AMQP_URL);
    const channel = await conn.createChannel();
    return { conn, channel };
  })();
  return connection;
}

/** Ready messages in the queue (0 when it does not exist). Unacknowledged ones need the management plugin. */
export async function readyCount(queue: string): Promise<number> {
  const { conn, channel } = await open();
  try {
    return (await channel.checkQueue(queue)).messageCount;
  } catch {
    // A failed passive declare closes the channel: open a fresh one next time.
    connection = undefined;
    await conn.close().catch(() => undefined);
    return 0;
  }
}

export async function closeAmqp(): Promise<void> {
  const c = await connection?.catch(() => undefined);
  connection = undefined;
  await c?.conn.close().catch(() => undefined);
}
