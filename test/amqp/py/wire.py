"""AMQP operations done the Python way, for test/amqp/interop.test.ts.

  wire.py declare <url> <queue> [max_priority]   declare the queue as a Celery worker (-Q queue) does
  wire.py peek <url> <queue> <n>                 basic_get n messages with py-amqp (no ack), print
                                                 their headers and properties with Python type names
  wire.py publish <url> <queue> <json headers>   publish a task-like message with py-amqp; header
                                                 values "__big__" become 2**40, "__neg_big__" -2**40
"""
import json
import sys
from urllib.parse import urlparse, unquote

import amqp
from celery import Celery


def typed(v):
    if isinstance(v, dict):
        return {'type': 'dict', 'value': {k: typed(x) for k, x in v.items()}}
    if isinstance(v, (list, tuple)):
        return {'type': 'list', 'value': [typed(x) for x in v]}
    return {'type': type(v).__name__, 'value': v if isinstance(v, (int, float, str, bool)) or v is None else repr(v)}


def connect(url):
    u = urlparse(url)
    vhost = unquote(u.path[1:]) or '/'
    c = amqp.Connection(host='%s:%s' % (u.hostname, u.port or 5672), userid=u.username or 'guest',
                        password=u.password or 'guest', virtual_host=vhost)
    c.connect()
    return c


def main():
    cmd, url, queue = sys.argv[1:4]
    if cmd == 'declare':
        app = Celery(broker=url)
        if len(sys.argv) > 4:
            app.conf.task_queue_max_priority = int(sys.argv[4])
        q = app.amqp.queues.select_add(queue) or app.amqp.queues[queue]
        with app.connection_for_write() as conn:
            q.bind(conn.default_channel).declare()
        print(json.dumps({'declared': queue, 'arguments': q.queue_arguments}))
    elif cmd == 'peek':
        c = connect(url)
        ch = c.channel()
        out = []
        for _ in range(int(sys.argv[4])):
            m = ch.basic_get(queue, no_ack=True)
            if m is None:
                break
            props = dict(m.properties)
            headers = props.pop('application_headers', {})
            out.append({'headers': typed(headers)['value'], 'properties': props, 'body': m.body if isinstance(m.body, str) else m.body.decode('utf-8'),
                        'routing_key': m.delivery_info['routing_key']})
        c.close()
        print(json.dumps(out))
    elif cmd == 'publish':
        headers = json.loads(sys.argv[4])
        special = {'__big__': 2 ** 40, '__neg_big__': -2 ** 40, '__float__': 2.0}
        headers = {k: special.get(v, v) if isinstance(v, str) else v for k, v in headers.items()}
        c = connect(url)
        ch = c.channel()
        body = json.dumps([[2, 3], {}, {'callbacks': None, 'errbacks': None, 'chain': None, 'chord': None}])
        ch.basic_publish(amqp.Message(body, content_type='application/json', content_encoding='utf-8',
                                      application_headers=headers, delivery_mode=2, priority=3,
                                      correlation_id=headers.get('id', 'x')), exchange='', routing_key=queue)
        c.close()
        print(json.dumps({'published': queue}))


main()
