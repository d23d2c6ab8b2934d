"""POSTs a dry run's request bodies to a receiver, as reqsync sends them.

    python3 scripts/lib/post-bodies.py BODIES_DIR HOST:PORT [SOURCE_ROWS]

Patients first, then doses, each in file order (NNNN-patients.json, NNNN-vaccine-doses.json),
one at a time over one keep-alive connection, as user `bench` with password `bench`. Every
answer must be a 201. Prints the seconds, records/s and MB/s of bodies (and source rows/s when
SOURCE_ROWS, the rows the dry run read, is given). Used by scripts/bench-receiver and
scripts/bench-receiver-instructions.
"""

import base64
import http.client
import json
import os
import sys
import time

bodies_dir, addr = sys.argv[1], sys.argv[2]
source_rows = int(sys.argv[3]) if len(sys.argv) > 3 else 0
host, port = addr.rsplit(":", 1)
auth = "Basic " + base64.b64encode(b"bench:bench").decode()
names = sorted(os.listdir(bodies_dir), key=lambda n: ("dose" in n, n))
bodies = [(n, open(os.path.join(bodies_dir, n), "rb").read()) for n in names]
records = sum(len(next(iter(json.loads(b).values()))) for _, b in bodies)
# A receiver under valgrind answers some 50 times slower than one running natively.
connection = http.client.HTTPConnection(host, int(port), timeout=600)
total = 0
started = time.time()
for name, body in bodies:
    endpoint = "/vaccine_dose_data" if "dose" in name else "/patient_data"
    connection.request(
        "POST", endpoint, body, {"Content-Type": "application/json", "Authorization": auth}
    )
    answer = connection.getresponse()
    answer.read()
    assert answer.status == 201, (name, answer.status)
    total += len(body)
seconds = time.time() - started
rows = f" {source_rows / seconds:.0f} source-rows/s" if source_rows else ""
print(
    f"{seconds:.3f} s {records} records {records / seconds:.0f} records/s "
    f"{total / seconds / 1e6:.1f} MB/s{rows}"
)
