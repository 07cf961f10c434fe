/** The cluster suite (remote control, revokes, mingle, gossip, events, elections) on RabbitMQ, in a vhost of its own. */
import { afterAll, beforeAll } from 'vitest';
import { createTestApp } from '../../src/testing.ts';
import { clusterSuite } from '../helpers/cluster-suite.ts';
import { createVhosts, deleteVhosts, runId, vhostUrl } from './helpers.ts';

const vhost = runId('cluster');
beforeAll(() => createVhosts([vhost]));
afterAll(() => deleteVhosts([vhost]));

clusterSuite('RabbitMQ broker', (main, config) => createTestApp(main, { broker: vhostUrl(vhost), ...config }));
