import type { ExchangeSpec } from './types.ts';

/** Does a binding of an exchange of this type take a message with this routing key? (AMQP's rules) */
export function bindingMatches(type: ExchangeSpec['type'], bindingKey: string, routingKey: string): boolean {
  return type === 'fanout' || (type === 'topic' ? topicMatches(bindingKey, routingKey) : bindingKey === routingKey);
}

/** AMQP topic matching: words separated by dots, `*` matches one word, `#` zero or more. */
export function topicMatches(pattern: string, routingKey: string): boolean {
  if (pattern === '#') return true;
  return match(pattern.split('.'), 0, routingKey.split('.'), 0);
}

function match(p: string[], i: number, k: string[], j: number): boolean {
  if (i === p.length) return j === k.length;
  const word = p[i];
  if (word === '#') {
    for (let n = j; n <= k.length; n++) if (match(p, i + 1, k, n)) return true;
    return false;
  }
  if (j === k.length) return false;
  return (word === '*' || word === k[j]) && match(p, i + 1, k, j + 1);
}
