"""Python client of the parity tests: `client.py call <task> <queue> <options json>` sends a task
with those apply_async options and prints its result as JSON; `client.py send …` prints its id."""
import json
import sys

from parityapp import app

cmd, task, queue, options = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
result = app.send_task(task, queue=queue, **options)
print(json.dumps(result.get(timeout=30) if cmd == 'call' else result.id))
