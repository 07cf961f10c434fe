"""Python Celery 5.2 side of the parity tests (test/parity/*): the tasks of test/parity/app.ts.

Broker and result backend come from PARITY_BROKER and PARITY_BACKEND.
"""
import os
import time

from celery import Celery

app = Celery('parity', broker=os.environ['PARITY_BROKER'], backend=os.environ['PARITY_BACKEND'])


@app.task(name='parity.props', bind=True)
def props(self):
    return {'properties': self.request.properties, 'delivery_info': self.request.delivery_info}


@app.task(name='parity.retry_once', bind=True)
def retry_once(self):
    if self.request.retries == 0:
        raise self.retry(countdown=0)
    return {'retries': self.request.retries, 'priority': self.request.properties.get('priority'), 'delivery_info': self.request.delivery_info}


@app.task(name='parity.sleep')
def sleep(seconds):
    time.sleep(seconds)
    return seconds
