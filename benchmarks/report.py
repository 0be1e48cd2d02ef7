"""The results as one markdown document (and the same numbers as JSON)."""
from __future__ import annotations

from benchmarks import strangers
from benchmarks.pipelines import STAGES


def _ms(stat: dict) -> str:
    return f"{stat['median']:.1f} / {stat['p95']:.1f}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def loop_table(rows: list[dict]) -> list[str]:
    head = ("| input | faces | loop | fps | encodings / s | CPU ms / frame | latency p50 / p95 ms | "
            + " | ".join(f"{s} p50 / p95 ms" for s in STAGES) + " | speed-up (fps) |")
    out = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        for loop in ("fast", "baseline"):
            s = r[loop]
            ratio = f"**{r['speedup']:.1f}x**" if loop == "fast" else ""
            out.append(f"| {r['size']} | {r['faces']} | {loop} | {s['fps']:.1f} | {s.get('encodings_per_s', 0):.1f} | "
                       f"{s['cpu_ms_per_frame']:.1f} | "
                       f"{_ms(s['latency_ms'])} | "
                       + " | ".join(_ms(s["stages_ms"][st]) for st in STAGES) + f" | {ratio} |")
    return out


def match_table(rows: list[dict]) -> list[str]:
    mode = rows[0]["mode"] if rows else "nearest"
    other = rows[0]["other_mode"] if rows else "mean"
    out = [f"| gallery samples | people | int8 scores | fast ({mode}), 1 face p50 / p95 ms | fast, 3 faces | "
           f"float32 scan only, 1 face | baseline loop, 1 face | baseline loop, 3 faces | same answers (nearest sample) | "
           f"{other} mode, 1 face | floor: one read of the float32 matrix |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['samples']:,} | {r['people']:,} | {'yes' if r.get('int8') else 'no'} | {_ms(r['fast_1'])} | "
                   f"{_ms(r['fast_3'])} | {_ms(r['float32_1'])} | {_ms(r['baseline_1'])} | {_ms(r['baseline_3'])} | "
                   f"{r['agree']} | {_ms(r[other + '_1'])} | {_ms(r['read_floor'])} |")
    return out


def ablation_table(rows: list[dict]) -> list[str]:
    out = ["| settings | fps | CPU ms / frame | latency p50 / p95 ms | detect p50 / p95 ms | encode p50 / p95 ms | "
           "fps vs all on |", "|---|---|---|---|---|---|---|"]
    top = rows[0]["run"]["fps"] if rows else 0
    for r in rows:
        s = r["run"]
        rel = f"{s['fps'] / top:.2f}x" if top else "-"
        out.append(f"| {r['label']} | {s['fps']:.1f} | {s['cpu_ms_per_frame']:.1f} | {_ms(s['latency_ms'])} | {_ms(s['stages_ms']['detect'])} | "
                   f"{_ms(s['stages_ms']['encode'])} | {rel} |")
    return out


def accuracy_table(rows: list[dict]) -> list[str]:
    out = ["| video | frames scored (fast / baseline) | box: fast | box: baseline | right name: fast | "
           "right name: baseline |", "|---|---|---|---|---|---|"]
    for r in rows:
        f, b = r["fast"], r["baseline"]
        out.append(f"| {r['video']} | {f['frames']} / {b['frames']} | {_pct(f['box'])} | {_pct(b['box'])} | "
                   f"{_pct(f['name'])} | {_pct(b['name'])} |")
    return out


def targets_table(rows: list[dict]) -> list[str]:
    out = ["| target | measured | met |", "|---|---|---|"]
    for r in rows:
        out.append(f"| {r['target']} | {r['measured']} | {'yes' if r['met'] else '**no**'} |")
    return out


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [
        "# Live-loop benchmark",
        "",
        f"`{meta['command']}`  ",
        f"{meta['date']}, {meta['machine']}, model `{meta['model']}` ({meta['model_id'][:12]}), "
        f"{meta['seconds']:.0f} s in all.  ",
        f"Load (`uptime`) before: {meta['load_before']}; after: {meta['load_after']}.",
        "",
        "**fast** = `config.yaml`'s `recognition:` switches "
        f"({meta['fast_settings']}) as `python -m realtime` runs a video file (detection inline; the worker-thread mode cameras get is an ablation row); **baseline** = the seed's way: full-frame Haar at full "
        "resolution every frame, one Keras `model.predict` per face on `encoder.keras`, a per-face matching loop. "
        "Same video files, same run. Stage times are per frame; *match* includes tracking and voting for the "
        f"fast loop; the gallery holds {meta['loop_gallery']:,} samples. Latency = read to drawn. *CPU ms / frame* is "
        "the process's CPU time (all threads) per frame: what a frame costs without the other programs that shared "
        "this machine during the run (wall-clock fps and latency include waiting for the CPU).",
        "",
        "## Targets",
        "",
        *targets_table(result["targets"]),
        "",
        "## Loop speed",
        "",
        *loop_table(result["loop"]),
        "",
        "## Matching time per frame",
        "",
        "`realtime.matching.match` on the gallery's cached index against the baseline's per-face "
        "`np.linalg.norm` loop; random unit vectors plus the real enrolled people (random people of up to 1,000 "
        "samples each). From 20,000 samples up the index also holds the samples as int8 in a one-operator "
        "LiteRT model: its scores, each within a proven error bound, rule out nearly every sample, and the rest "
        "are compared in float32, so the answers stay those of the exact search (*same answers* checks it "
        "against the baseline). *float32 scan only* is the exact search without the int8 scores; the floor "
        "column is `embeddings.sum()`, one read of the float32 matrix (100,000 x 128 x 4 bytes = 51 MB), which "
        "no float32-only search can beat.",
        "",
        *match_table(result["match"]),
        "",
        f"## Ablation ({result['ablation_input']}): each row turns one switch off",
        "",
        *ablation_table(result["ablation"]),
        "",
        "## Accuracy",
        "",
        "Share of face frames with a box and with the right name (largest face; the un-enrolled "
        "stranger must be unknown). 4 people enrolled from `celebrity5/train`, each clip's person from "
        f"its first {meta['enroll_frames']} frames (not scored). {meta['accuracy_note']}",
        "",
        *accuracy_table(result["accuracy"]),
        "",
        "## Strangers and enrolled people (`benchmarks/strangers.py`)",
        "",
        "All five celebrity5 people enrolled from their `train` photos; the clips' people were never enrolled. "
        "Largest face of each face frame, through the live loop as `python -m realtime --headless` runs a file.",
        "",
        strangers.markdown(result["strangers"]) if result.get("strangers") else "(not measured)",
        "",
    ]
    return "\n".join(lines)
