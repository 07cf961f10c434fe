"""Python Celery 5.2 side of test/amqp/tls.test.ts: an app that reaches RabbitMQ over TLS.

broker_use_ssl as Celery documents it for py-amqp: the test CA, a client certificate and its key,
the server's certificate required. The broker URL (a private node's TLS port) and the files come
from the environment.

Usage as a client: python3 tlsapp.py <task> <json args> <queue>   prints the JSON result
"""
import json
import os
import ssl
import sys

from celery import Celery

app = Celery('tlsapp', broker=os.environ['CELERIAC_TLS_BROKER'], backend='rpc://')
app.conf.broker_use_ssl = {
    'ca_certs': os.environ['CELERIAC_TLS_CA'],
    'certfile': os.environ['CELERIAC_TLS_CERT'],
    'keyfile': os.environ['CELERIAC_TLS_KEY'],
    'cert_reqs': ssl.CERT_REQUIRED,
}


@app.task(name='tlspy.mul')
def mul(x, y):
    return x * y


if __name__ == '__main__':
    name, args, queue = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    print(json.dumps(app.send_task(name, args=args, queue=queue).get(timeout=20)))
