"""The Flink SQL peer's job runner: run by the Flink venv's python, never imported by cdcsync.

Reads a JSON object from stdin, ``{"config": {key: value}, "statements": [DDL...], "insert": "INSERT ..."}``,
builds a streaming TableEnvironment (a local mini-cluster in the gateway JVM that PyFlink starts), runs
the DDL, submits the INSERT and blocks until the job ends or the process is signalled. The statements
hold the source and target passwords, so they travel through stdin only, never a file or an argument.
"""

from __future__ import annotations

import json
import sys

from pyflink.common import Configuration
from pyflink.table import EnvironmentSettings, TableEnvironment


def main() -> None:
    spec = json.load(sys.stdin)
    config = Configuration()  # given at creation, so that the mini-cluster's memory and state settings apply
    for key, value in spec["config"].items():
        config.set_string(key, value)
    env = TableEnvironment.create(
        EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(config).build()
    )
    for statement in spec["statements"]:
        env.execute_sql(statement)
    result = env.execute_sql(spec["insert"])
    job = result.get_job_client()
    print(f"submitted job {job.get_job_id() if job is not None else '?'}", flush=True)
    result.wait()


if __name__ == "__main__":
    main()
