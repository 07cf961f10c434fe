import { createTestApp } from '../src/testing.ts';
import { clusterSuite } from './helpers/cluster-suite.ts';

clusterSuite('memory broker', createTestApp);
