"""The tables of scripts/bench_vs_pytorch.py (imported by it): times, ratios, memory, and the
section of BENCHMARKS.md they are written into."""

from __future__ import annotations

import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
from pathlib import Path

# dpa-explorer's modes that keep the ranking on every trained body measured (BENCHMARKS.md,
# accuracy; DTypeChoice::meets_rank_bar): q8_0 left them on 2026-12-02, at 0.944 on one body;
# q12 (12-bit integer weights) joined them on 2026-12-03.
ACCURATE = ("f32", "q12", "bf16", "f16")
# Modes whose first start quantises the weights and writes them to the cache.
QUANTISED = ("q12", "q8_0", "q4_0", "q4_k", "q4k")


def flops(cfg: dict, tokens: int) -> float:
    h, i = cfg["hidden_size"], cfg["intermediate_size"]
    q = cfg["num_attention_heads"] * cfg["head_dim"]
    kv = cfg["num_key_value_heads"] * cfg["head_dim"]
    proj = h * (q + 2 * kv) + q * h + 3 * h * i
    attn = 2 * tokens * q
    return cfg["num_hidden_layers"] * 2.0 * tokens * (proj + attn)


def machine() -> str:
    model, flags = platform.processor(), []
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() == "Model name":
                model = v.strip()
            if k.strip() == "Flags":
                have = set(v.split())
                flags = [f for f in ["avx2", "fma", "avx512f", "avx512bw", "avx512_bf16",
                                     "avx512_vnni", "avx512_fp16", "amx_bf16", "amx_int8"]
                         if f in have]
        cores = os.cpu_count()
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        return f"{model}, {cores} cores, {mem:.0f} GiB; {' '.join(flags) or 'no AVX2'}"
    except Exception:  # noqa: BLE001 - a description only
        return model or platform.machine()


def gpu_name() -> str:
    try:
        import torch
        return torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001
        return "?"


def fmt_bytes(n) -> str:
    return "-" if n is None else f"{n / 2**30:.2f} GiB"


def mode_of(r: dict) -> str:
    return r.get("requested") or r["mode"]


def cell(x: dict) -> float:
    """A cell's time: the median of its rounds' medians (of all passes with one round)."""
    rounds = x.get("round_medians") or []
    return statistics.median(rounds) if len(rounds) > 1 else x["median_s"]


def table(args, cfg: dict, runs: list[dict]) -> str:
    ref = next((r for r in runs if r["engine"] == "pytorch" and r["mode"] == "f32"), None)
    # Without a PyTorch f32 run (the GPU benchmark), scores are compared with PyTorch's first.
    ref = ref or next((r for r in runs if r["engine"] == "pytorch"), None)
    torch_runs = [r for r in runs if r["engine"] == "pytorch"]
    llama = {mode_of(r): r for r in runs if r["engine"] == "llama.cpp"}
    multi = args.rounds > 1
    lines = []
    keys = sorted({(x["tokens"], x["batch"]) for r in runs for x in r["results"]})
    for tokens, batch in keys:
        def res(r):
            return next(x for x in r["results"] if x["tokens"] == tokens and x["batch"] == batch)

        best_torch = min(torch_runs, key=lambda r: cell(res(r))) if torch_runs else None
        title = f"{tokens} tokens" + (f" × batch {batch}" if batch > 1 else "")
        scale = max(abs(v) for v in res(ref)["scores"]) if ref else float("nan")
        rm = ref["mode"] if ref else "-"
        lines.append(f"\n**{title}**" + (f" (largest abs(score) of PyTorch {rm}: {scale:.2f})"
                                             if ref else "") + "\n")
        head = "| engine | mode | median ms |"
        rule = "|---|---|---:|"
        if multi:
            head += " range ms (rounds) |"
            rule += "---:|"
        head += (f" inputs/s | vs PyTorch {rm} | vs PyTorch best "
                 f"({best_torch['mode'] if best_torch else '-'}) |")
        rule += "---:|---:|---:|"
        if llama:
            head += " vs llama.cpp same mode (rounds) |"
            rule += "---:|"
        lines += [head + f" GFLOP/s | max abs(Δ score) vs PyTorch {rm} |", rule + "---:|---:|"]
        for r in runs:
            x = res(r)
            s = cell(x)
            row = f"| {r['engine']} | {r['mode']} | {s * 1e3:.1f} |"
            if multi:
                rr = x.get("round_medians") or [x["median_s"]]
                row += f" {min(rr) * 1e3:.1f}–{max(rr) * 1e3:.1f} |"
            vs_f32 = (f"{s / cell(res(ref)):.2f}×" if ref and r is not ref
                      else ("1.00×" if r is ref else "-"))
            vs_best = f"{s / cell(res(best_torch)):.2f}×" if best_torch else "-"
            row += f" {batch / s:.2f} | {vs_f32} | {vs_best} |"
            if llama:
                other = llama.get(mode_of(r))
                if other is None or r["engine"] == "llama.cpp":
                    row += " - |"
                else:
                    y = res(other)
                    a, b = x.get("round_medians") or [], y.get("round_medians") or []
                    per = [p / q for p, q in zip(a, b)]
                    span = f" ({min(per):.2f}–{max(per):.2f})" if len(per) > 1 else ""
                    row += f" **{s / cell(y):.2f}×**{span} |"
            gf = flops(cfg, tokens) * batch / s / 1e9
            if ref and r is not ref and x.get("scores"):
                d = max(abs(a - b) for a, b in zip(x["scores"], res(ref)["scores"]))
                diff = f"{d:.2e}"
            else:
                diff = "-"
            lines.append(row + f" {gf:.0f} | {diff} |")
    if llama:
        lines.append(targets(runs, keys, llama))
    lines.append("\n**Memory and start-up** (each mode in its own process)\n")
    lines.append("| engine | mode | weights in memory | peak RSS after load | peak RSS | "
                 "after load / weights | peak RSS / weights | load s | first load s (quantising) "
                 "| peak RSS of first load |")
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")

    def ratio(n, r):
        return f"{n / r['weight_bytes']:.2f}" if n and r.get("weight_bytes") else "-"

    for r in runs:
        quantises = r["engine"] == "dpa-explorer" and mode_of(r) in QUANTISED
        first = f"{r['first_load_s']:.1f}" if "first_load_s" in r and quantises else "-"
        load = f"{r['load_s']:.1f}" if r.get("load_s") is not None else "-"
        first_peak = r.get("first_load_peak_rss") if quantises else None
        lines.append(f"| {r['engine']} | {r['mode']} | {fmt_bytes(r['weight_bytes'])} | "
                     f"{fmt_bytes(r.get('peak_rss_after_load'))} | "
                     f"{fmt_bytes(r.get('peak_rss'))} | {ratio(r.get('peak_rss_after_load'), r)} | "
                     f"{ratio(r.get('peak_rss'), r)} | {load} | {first} | "
                     f"{fmt_bytes(first_peak)} |")
    return "\n".join(lines)


def secs(v) -> str:
    """Seconds to about three significant figures."""
    if v is None:
        return "-"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.3g}"


def append_table(args, runs: list[dict]) -> str:
    """The as-you-type table (--append): start-up, the first pass after the load, one word
    appended to an input whose keys and values are kept, against the floor of reading every
    weight a pass reads once at the measured bandwidth, and memory."""
    ours = [r for r in runs if r["engine"] == "dpa-explorer"]
    # The machine's bandwidth: the best any process of the run measured (other work on a shared
    # machine only lowers it), the same for every mode's floor.
    best_bw = max((r["bandwidth_gbs"] for r in ours if r.get("bandwidth_gbs")), default=None)
    lines = [
        "\n**As you type** (dpa-explorer, each mode in two processes: the first, with an empty "
        "quantised-weight cache, only loads (reading the checkpoint, and for a quantised mode "
        "quantising and writing the cache); the second loads again from that cache, scores the "
        "input once (the cold score: the first pass after the load, keeping the input's keys "
        f"and values as the explorer does) and times {args.runs} more passes, then scores "
        f"{args.append} appended tokens against the kept cache, keeping the longer one: median "
        f"and range of {args.append_runs} after a warm-up). Own floor: "
        "the same bytes over the bandwidth that mode's own process read, which other work on "
        "the machine lowers while that process runs\n",
        "| mode | first load s | later load s | cold score s (tokens) | append one word s "
        "(range; tokens after) | floor s | append / floor | append / own floor | peak RSS GiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in ours:
        floor = (r["pass_weight_bytes"] / (best_bw * 1e9)
                 if best_bw and r.get("pass_weight_bytes") else None)
        cold = (f"{secs(r['cold_s'])} ({r.get('cold_tokens', '?')})"
                if r.get("cold_s") is not None else "-")
        for x in r["results"]:
            if x.get("append_median_s") is None:
                continue
            a = x["append_median_s"]
            times = x.get("append_times_s") or [a]
            own = (r["pass_weight_bytes"] / (r["bandwidth_gbs"] * 1e9)
                   if r.get("bandwidth_gbs") and r.get("pass_weight_bytes") else None)
            tag = f" × batch {x['batch']}" if x.get("batch", 1) > 1 else ""
            rss = r.get("peak_rss")
            lines.append(
                f"| {r['mode']}{tag} | {secs(r.get('first_load_s'))} | {secs(r.get('load_s'))} | "
                f"{cold} | {secs(a)} ({secs(min(times))}–{secs(max(times))}; "
                f"{x['append_tokens']} after {x['tokens']}) | "
                f"{secs(floor)} | {f'{a / floor:.2f}×' if floor else '-'} | "
                f"{f'{a / own:.2f}×' if own else '-'} | "
                f"{f'{rss / 2**30:.2f}' if rss else '-'} |")
    bw = [f"{mode_of(r)} {r['bandwidth_gbs']:.1f} GB/s ({r['pass_weight_bytes'] / 1e9:.3g} GB "
          "read)" for r in ours if r.get("bandwidth_gbs")]
    if bw:
        lines.append(
            f"\nRead bandwidth, measured in each second process after its passes ({args.threads} "
            "threads, each summing its own part of a 1 GiB buffer, best of 20 reads): "
            + "; ".join(bw) + f". The floor is the weights every pass reads in full (all but the "
            "embedding table, of which a pass reads only its tokens' rows) over the best of these, "
            f"{best_bw:.1f} GB/s; the keys and values read beside them are left out.")
    return "\n".join(lines)


def targets(runs: list[dict], keys, llama: dict) -> str:
    """Issue 13's two speed targets against llama.cpp, from the medians above."""
    ours = {mode_of(r): r for r in runs if r["engine"] == "dpa-explorer"}
    lines = ["\n**Against llama.cpp** (medians above)\n",
             "| tokens | every mode ≤ 1.0× llama.cpp's same mode | our fastest accurate mode "
             f"({'/'.join(ACCURATE)}) vs llama.cpp's fastest (target ≤ 0.8×) |", "|---:|---|---|"]
    for tokens, batch in keys:
        def t(r):
            return cell(next(x for x in r["results"]
                             if x["tokens"] == tokens and x["batch"] == batch))

        same = []
        for m, r in ours.items():
            if m in llama:
                q = t(r) / t(llama[m])
                same.append(f"{m} {q:.2f}× {'yes' if q <= 1.0 else '**no**'}")
        acc = [r for m, r in ours.items() if m in ACCURATE]
        if acc:
            best = min(acc, key=t)
            lb = min(llama.values(), key=t)
            q = t(best) / t(lb)
            fast = (f"{mode_of(best)} / llama.cpp {mode_of(lb)}: {q:.2f}× "
                    f"{'yes' if q <= 0.8 else '**no**'}")
        else:
            fast = "-"
        lines.append(f"| {tokens} | {'; '.join(same) or '-'} | {fast} |")
    return "\n".join(lines)


def write_report(path: Path, args, report: str, extra: str = "") -> None:
    import torch

    where = gpu_name() if args.device.startswith("cuda") else machine()
    tag = ((":llamacpp" if args.llamacpp else "")
           + (":append" if getattr(args, "append", 0) else ""))
    marker = f"<!-- bench:{args.device}:{args.layers}l:{args.tokens}:{args.batch}{tag} -->"
    engines = "dpa-explorer, PyTorch" + (", llama.cpp" if args.llamacpp else "")
    how = (f"{args.rounds} rounds, each running every engine and mode once in its own process, "
           "in a different order each round (rotated, and reversed every other round); a cell "
           "is the median of its rounds' medians, the range their smallest and largest"
           if args.rounds > 1 else "one process per mode")
    section = (
        f"{marker}\n{'####' if getattr(args, 'append', 0) else '###'} {args.device.upper()}, {args.layers} layer(s), tokens {args.tokens}"
        f"{', batch ' + ','.join(map(str, args.batch)) if args.batch != [1] else ''}"
        f"{' (' + engines + ')' if args.llamacpp else ''}\n\n"
        f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on {where}; "
        f"PyTorch {torch.__version__} ({args.threads} threads); {how}; {args.runs} passes per "
        f"process after a warm-up.{extra}\n"
        f"{report}\n{marker}\n"
    )
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(marker) + r".*?" + re.escape(marker) + r"\n", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text + "\n" + section
    path.write_text(text)
    print(f"wrote {path}", file=sys.stderr)
