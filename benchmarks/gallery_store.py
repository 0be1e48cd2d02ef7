"""``python -m benchmarks.gallery_store``: the gallery stores side by side (SQLite file, PostgreSQL).

For each store: enrollment throughput (one transaction of 5 samples per enrollment, as the CLI
and the window write them), how long a live process takes to see an enrollment made by another
process (its watcher thread; median and p95 over repeated enrollments), and how long opening a
100,000-sample gallery and building its matching index takes (rows fetched + ``Index.from_rows``).

PostgreSQL: ``--url`` (or ``$REALTIME_BENCH_PG`` / ``$REALTIME_TEST_PG``), else a private server
is started for the run (``tests/pgserver.py``: initdb + pg_ctl on 127.0.0.1). ``run()`` returns
the rows, so ``python -m benchmarks`` can add them to its table.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("benchmarks")

DIM = 128
MODEL_ID = "bench"

# A second process that watches the gallery and prints (wall clock) when each name appears.
WATCHER = r"""
import sys, time
from realtime.gallery import open_gallery
url, wanted = sys.argv[1], int(sys.argv[2])
g = open_gallery(url, "bench", watch=True)
print("ready", flush=True)
seen = set()
while len(seen) < wanted:
    for name in g.index().names:
        if name.startswith("probe-") and name not in seen:
            seen.add(name)
            print(name, time.time(), flush=True)
    time.sleep(0.001)
g.close()
"""


def _unit(rng, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def enroll_throughput(location: str, enrollments: int) -> float:
    """Enrollments per second (5 samples each, one transaction each) into ``location``."""
    from realtime.gallery import open_gallery
    rng = np.random.default_rng(0)
    batches = [_unit(rng, 5) for _ in range(enrollments)]
    with open_gallery(location, MODEL_ID) as g:
        start = time.perf_counter()
        for i, batch in enumerate(batches):
            g.add_samples(f"person-{i % 50}", batch)
        return enrollments / (time.perf_counter() - start)


def change_latency(location: str, probes: int) -> list[float]:
    """Seconds from an enrollment's commit until another (watching) process has it in its index."""
    from realtime.gallery import open_gallery
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-c", WATCHER, location, str(probes)], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    rng = np.random.default_rng(1)
    delays = []
    with open_gallery(location, MODEL_ID) as g:
        for i in range(probes):
            g.add_samples(f"probe-{i}", _unit(rng, 1))
            committed = time.time()
            name, when = child.stdout.readline().split()
            assert name == f"probe-{i}", name
            delays.append(float(when) - committed)
            time.sleep(0.3)
    child.wait(timeout=30)
    return delays


def index_load(location: str, samples: int) -> dict:
    """Fill ``location`` with ``samples`` rows, then time a fresh open + index build (twice, best)."""
    from realtime.gallery import open_gallery
    rng = np.random.default_rng(2)
    vectors = _unit(rng, samples)
    rows = [(f"random-{i // 100:05d}", vectors[i].tobytes(), MODEL_ID, 0.0, None) for i in range(samples)]
    with open_gallery(location, None) as g:
        start = time.perf_counter()
        g.load(rows)
        fill = time.perf_counter() - start
    times = []
    for _ in range(2):
        start = time.perf_counter()
        with open_gallery(location, MODEL_ID) as g:
            size = len(g.index())
        times.append(time.perf_counter() - start)
    assert size == samples, size
    return {"fill_s": fill, "load_s": min(times)}


def _private_server(folder: Path) -> str:
    sys.path.insert(0, str(ROOT / "tests"))
    import pgserver
    return pgserver.start(folder)["REALTIME_TEST_PG"]


def run(url: str | None = None, enrollments: int = 200, probes: int = 20, samples: int = 100_000) -> list[dict]:
    """One row per store: enrollments/s, change seen by another process (median, p95 ms), index load s."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-gallery-"))
    server_dir = None
    try:
        url = url or os.environ.get("REALTIME_BENCH_PG") or os.environ.get("REALTIME_TEST_PG")
        if not url:
            server_dir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
            url = _private_server(server_dir)
        import psycopg
        base = url.rsplit("/", 1)[0]
        rows = []
        for store in ("sqlite", "postgresql"):
            def fresh() -> str:
                if store == "sqlite":
                    return str(tmp / f"{uuid.uuid4().hex}.db")
                name = f"bench_{uuid.uuid4().hex[:10]}"
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"CREATE DATABASE {name}")
                return f"{base}/{name}"
            rate = enroll_throughput(fresh(), enrollments)
            delays = np.array(change_latency(fresh(), probes)) * 1000
            load = index_load(fresh(), samples)
            rows.append({"store": store, "enrollments_per_s": round(rate, 1),
                         "change_seen_ms_p50": round(float(np.median(delays)), 1),
                         "change_seen_ms_p95": round(float(np.percentile(delays, 95)), 1),
                         "index_samples": samples, "index_load_s": round(load["load_s"], 3),
                         "fill_s": round(load["fill_s"], 2)})
        return rows
    finally:
        if server_dir is not None:
            import pgserver
            pgserver.stop(server_dir / "data", pgserver.os_user())
            shutil.rmtree(server_dir, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def markdown(rows: list[dict]) -> str:
    lines = ["| gallery store | enrollments/s (5 samples each) | change seen by another process, p50 / p95 ms | "
             "open + index build at 100k samples |", "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['store']} | {r['enrollments_per_s']} | {r['change_seen_ms_p50']} / "
                     f"{r['change_seen_ms_p95']} | {r['index_load_s']} s |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gallery_store", description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="a PostgreSQL server to use (its user must be allowed to CREATE DATABASE); "
                                 "default: $REALTIME_BENCH_PG, $REALTIME_TEST_PG, else a private server")
    p.add_argument("--enrollments", type=int, default=200)
    p.add_argument("--probes", type=int, default=20)
    p.add_argument("--samples", type=int, default=100_000, help="gallery size for the index load time")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    print(markdown(run(args.url, args.enrollments, args.probes, args.samples)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
