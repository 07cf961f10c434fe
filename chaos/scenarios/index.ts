import { brokerFault } from './broker-fault.ts';
import { burst } from './burst.ts';
import { connectionKills } from './connection-kills.ts';
import { malformed } from './malformed.ts';
import { soak } from './soak.ts';
import type { Scenario } from './types.ts';
import { workerKill } from './worker-kill.ts';

export const SCENARIOS: readonly Scenario[] = [workerKill, brokerFault, connectionKills, malformed, soak, burst];
export type { Scenario, ScenarioSettings } from './types.ts';
