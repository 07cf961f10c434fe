"""Python Celery 5.2 with message signing (app.setup_security), for test/redis/signing.test.ts.

Broker, results, key prefix and the key, certificate and certificate store come from the environment.
"""
import os
import sys

from celery import Celery

app = Celery('signedtasks', broker=os.environ['CELERIAC_TEST_BROKER'], backend=os.environ['CELERIAC_TEST_BACKEND'])
app.conf.update(
    broker_transport_options={'global_keyprefix': os.environ['CELERIAC_TEST_PREFIX']},
    task_default_queue='py',
    task_serializer='auth',
    accept_content=['auth'],
    result_accept_content=['json'],
    security_key=os.environ['SIGNING_KEY'],
    security_certificate=os.environ['SIGNING_CERT'],
    security_cert_store=os.environ['SIGNING_STORE'],
)
app.setup_security()


@app.task(name='signed.add')
def add(x, y):
    return x + y


if __name__ == '__main__':
    # As a client: python3 signedtasks.py <task> <queue> <x> <y>
    r = app.send_task(sys.argv[1], args=[int(sys.argv[3]), int(sys.argv[4])], queue=sys.argv[2])
    print(r.id, r.get(timeout=20))
