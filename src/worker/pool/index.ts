export { Autoscaler } from './autoscale.ts';
export { ChildPool, type ChildPoolOptions } from './children.ts';
export { InlinePool } from './inline.ts';
export { parsePoolName, POOL_NAMES, type Pool, type PoolName } from './types.ts';
