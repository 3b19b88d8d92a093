"""Times bench-sql's four queries on ClickHouse (chdb) and DuckDB, each loaded with the same
spans (bench-storage's export) into the tables storage_peers.py builds. Prints JSON:
{"clickhouse": {"q1": {"ms": [...], "rows": [...]}, ...}, "duckdb": {...}, "versions": {...}}.

Usage: sql_peers.py SPANS.ndjson POD SINCE_NS RUNS
"""

import json
import os
import sys
import tempfile
import time

import chdb
import duckdb
from chdb.session import Session

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storage_peers import clickhouse_load, duck_load  # noqa: E402


def queries(pod, since):
    """The four questions in each engine's dialect (status 2 = error, kind 3 = client)."""
    return {
        "clickhouse": {
            "q1": "SELECT service_name, name, count(), avg(status_code = 2), quantile(0.99)(duration_nano) / 1e6 "
            "FROM spans GROUP BY service_name, name ORDER BY service_name, name",
            "q2": "SELECT toStartOfMinute(timestamp) AS m, count(), countIf(status_code = 2) FROM spans GROUP BY m ORDER BY m",
            "q3": "SELECT attributes_string['db.query.text'] AS q, count(), avg(duration_nano) / 1e6 AS a FROM spans "
            "WHERE kind = 3 AND q != '' GROUP BY q ORDER BY a DESC LIMIT 10",
            "q4": f"SELECT count(DISTINCT trace_id) FROM spans WHERE resources_string['k8s.pod.name'] = '{pod}' "
            f"AND timestamp >= fromUnixTimestamp64Nano({since})",
        },
        "duckdb": {
            "q1": "SELECT service_name, name, count(*), avg(CASE WHEN status_code = 2 THEN 1.0 ELSE 0.0 END), "
            "approx_quantile(duration_nano, 0.99) / 1e6 FROM spans GROUP BY ALL ORDER BY service_name, name",
            "q2": "SELECT timestamp // 60000000000 AS m, count(*), count(*) FILTER (WHERE status_code = 2) FROM spans "
            "GROUP BY m ORDER BY m",
            "q3": "SELECT attributes_string['db.query.text'] AS q, count(*), avg(duration_nano) / 1e6 AS a FROM spans "
            "WHERE kind = 3 AND q IS NOT NULL GROUP BY q ORDER BY a DESC LIMIT 10",
            "q4": f"SELECT count(DISTINCT trace_id) FROM spans WHERE resources_string['k8s.pod.name'] = '{pod}' "
            f"AND timestamp >= {since}",
        },
    }


def timed(run, sql, runs):
    rows = run(sql)
    ms = []
    for _ in range(runs):
        t = time.perf_counter()
        rows = run(sql)
        ms.append((time.perf_counter() - t) * 1000)
    return {"ms": ms, "rows": rows}


def main():
    path, pod, since, runs = os.path.abspath(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    qs = queries(pod, since)
    out = {"versions": {"chdb": chdb.__version__, "duckdb": duckdb.__version__}}
    with tempfile.TemporaryDirectory() as d:
        s = Session(d)
        clickhouse_load(s, path)
        ch = lambda sql: str(s.query(sql, "CSV")).strip().splitlines()
        out["clickhouse"] = {k: timed(ch, q, runs) for k, q in qs["clickhouse"].items()}
        s.close()
    with tempfile.TemporaryDirectory() as d:
        con = duckdb.connect(os.path.join(d, "spans.duckdb"))
        duck_load(con, path)
        dk = lambda sql: [",".join(map(str, r)) for r in con.execute(sql).fetchall()]
        out["duckdb"] = {k: timed(dk, q, runs) for k, q in qs["duckdb"].items()}
        con.close()
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
