"""Loads the storage benchmark's spans (NDJSON) into ClickHouse (chdb) and DuckDB and prints the
bytes each keeps on disk, as JSON: {"clickhouse_bytes": N, "duckdb_bytes": N, "versions": {...}}.

ClickHouse gets a SigNoz-style traces table: MergeTree ordered by service, name and time; ZSTD,
Delta, DoubleDelta and T64 codecs; LowCardinality strings; typed attribute maps. Both are measured
after their own compaction (OPTIMIZE FINAL, CHECKPOINT).
"""

import json
import os
import sys
import tempfile

import chdb
import duckdb
from chdb.session import Session

CLICKHOUSE_TABLE = """
CREATE TABLE spans (
    timestamp DateTime64(9) CODEC(DoubleDelta, ZSTD(1)),
    trace_id FixedString(32) CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    parent_span_id String CODEC(ZSTD(1)),
    service_name LowCardinality(String) CODEC(ZSTD(1)),
    name LowCardinality(String) CODEC(ZSTD(1)),
    kind Int8 CODEC(T64, ZSTD(1)),
    duration_nano UInt64 CODEC(T64, ZSTD(1)),
    status_code Int16 CODEC(T64, ZSTD(1)),
    status_message String CODEC(ZSTD(1)),
    attributes_string Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    attributes_number Map(LowCardinality(String), Float64) CODEC(ZSTD(1)),
    attributes_bool Map(LowCardinality(String), Bool) CODEC(ZSTD(1)),
    resources_string Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    events Array(String) CODEC(ZSTD(2))
) ENGINE = MergeTree
PARTITION BY toDate(timestamp)
ORDER BY (service_name, name, toStartOfHour(timestamp), timestamp)
"""


def clickhouse_load(s, path):
    """Creates the table in an open session and loads the export into it, compacted."""
    s.query("CREATE DATABASE IF NOT EXISTS bench ENGINE = Atomic")
    s.query("USE bench")
    s.query(CLICKHOUSE_TABLE)
    # The export's times are Unix nanoseconds: converted, not cast (a cast reads them as seconds
    # and saturates every row to the same instant).
    s.query(
        f"INSERT INTO spans SELECT fromUnixTimestamp64Nano(toInt64(timestamp)) AS timestamp, * EXCEPT (timestamp) "
        f"FROM file('{path}', 'JSONEachRow', "
        "'timestamp UInt64, trace_id String, span_id String, parent_span_id String, service_name String, "
        "name String, kind Int8, duration_nano UInt64, status_code Int16, status_message String, "
        "attributes_string Map(String, String), attributes_number Map(String, Float64), "
        "attributes_bool Map(String, Bool), resources_string Map(String, String), events Array(String)') "
        "SETTINGS input_format_json_read_numbers_as_strings = 0"
    )
    s.query("OPTIMIZE TABLE spans FINAL")


def clickhouse(path):
    with tempfile.TemporaryDirectory() as d:
        s = Session(d)
        clickhouse_load(s, path)
        rows = int(str(s.query("SELECT count() FROM spans", "CSV")).strip())
        size = int(str(s.query(
            "SELECT sum(bytes_on_disk) FROM system.parts WHERE database = 'bench' AND table = 'spans' AND active", "CSV"
        )).strip())
        s.close()
        return rows, size


def duck_load(con, path):
    """Loads the export into an open DuckDB database, sorted as ClickHouse keeps it."""
    con.execute(
        f"CREATE TABLE spans AS SELECT * FROM read_json('{path}', format = 'newline_delimited', "
        "columns = {timestamp: 'UBIGINT', trace_id: 'VARCHAR', span_id: 'VARCHAR', parent_span_id: 'VARCHAR', "
        "service_name: 'VARCHAR', name: 'VARCHAR', kind: 'TINYINT', duration_nano: 'UBIGINT', status_code: 'SMALLINT', "
        "status_message: 'VARCHAR', attributes_string: 'MAP(VARCHAR, VARCHAR)', attributes_number: 'MAP(VARCHAR, DOUBLE)', "
        "attributes_bool: 'MAP(VARCHAR, BOOLEAN)', resources_string: 'MAP(VARCHAR, VARCHAR)', events: 'VARCHAR[]'}) "
        "ORDER BY service_name, name, timestamp"
    )
    con.execute("CHECKPOINT")


def duck(path):
    with tempfile.TemporaryDirectory() as d:
        db = os.path.join(d, "spans.duckdb")
        con = duckdb.connect(db)
        duck_load(con, path)
        rows = con.execute("SELECT count(*) FROM spans").fetchone()[0]
        con.close()
        return rows, os.path.getsize(db)


def main():
    path = os.path.abspath(sys.argv[1])
    ch_rows, ch_bytes = clickhouse(path)
    dk_rows, dk_bytes = duck(path)
    if ch_rows != dk_rows:
        sys.exit(f"row counts differ: clickhouse {ch_rows}, duckdb {dk_rows}")
    json.dump(
        {
            "rows": ch_rows,
            "clickhouse_bytes": ch_bytes,
            "duckdb_bytes": dk_bytes,
            "versions": {"chdb": chdb.__version__, "duckdb": duckdb.__version__},
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
