"""Airflow 3 DAGs for the side-by-side bench (scripts/bench_airflow.py): not part of stellarflow.

The plan file named by $STELLARFLOW_AIRFLOW_PLAN (JSON, written by scripts/bench_airflow.py)
holds one DAG: its id and its tasks, each a bash command (the same ``podman run`` of the same
image and the same module command line that the CWL tool runs), its upstream tasks and its
trigger rule. Written as an Airflow user would write a generated DAG: BashOperator tasks, a
step that may be skipped exits 99 (BashOperator's ``skip_on_exit_code``), and the steps after it
run on ``none_failed``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

PLAN = os.environ.get("STELLARFLOW_AIRFLOW_PLAN")

if PLAN and Path(PLAN).is_file():
    plan = json.loads(Path(PLAN).read_text())
    with DAG(dag_id=plan["dag_id"], schedule=None, catchup=False,
             start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
             max_active_tasks=plan.get("max_active_tasks", 16),
             default_args={"retries": plan.get("retries", 0)},
             tags=["stellarflow-bench"]) as dag:
        tasks = {}
        for t in plan["tasks"]:
            tasks[t["task_id"]] = BashOperator(
                task_id=t["task_id"], bash_command=t["bash_command"],
                trigger_rule=t.get("trigger_rule", "all_success"),
                # Commands start in a fresh temporary folder; the plan's paths are absolute.
                append_env=True, env=plan.get("env") or None)
        for t in plan["tasks"]:
            for up in t.get("upstream", []):
                tasks[up] >> tasks[t["task_id"]]
