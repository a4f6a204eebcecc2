#!/usr/bin/env python3
"""Side-by-side benchmark: dpa-explorer against transformers/PyTorch on the same files and inputs.

Builds ONE random-weight MistralForSequenceClassification with Mistral-7B's widths (hidden 4096,
intermediate 14336, 32 heads, 8 key/value heads, head dim 128, vocab 32001, 10 labels) and
--layers layers, saved once as bf16 safetensors with config.json and the real tokenizer; then
times, each in its own process (so that peak memory is that mode's own):
  - transformers (PyTorch) f32 and bf16,
  - dpa-explorer in each of its modes (target/release/examples/bench_model),
  - with --llamacpp, llama.cpp's llama-bench on the same body as GGUF (scripts/bench_engines.py),
  - with --gemm, a plain GEMM of the projection shapes beside our projections alone,
on inputs of --tokens tokens, and prints a table (median of --runs passes, ratio to PyTorch,
achieved GFLOP/s, peak RSS, max |score - PyTorch f32 score|) that it writes into BENCHMARKS.md.

  python3 scripts/bench_vs_pytorch.py                       # CPU, 2 layers, 128 and 512 tokens
  python3 scripts/bench_vs_pytorch.py --smoke               # tiny widths: checks the harness
  python3 scripts/bench_vs_pytorch.py --llamacpp f32,bf16,q8_0,q4_0 --gemm --rounds 7
                                                            # three engines, GEMM rates, ranges
  python3 scripts/bench_vs_pytorch.py --layers 32 --rounds 1 --modes bf16,q8_0,q4_0 \
      --torch-modes bf16 --out docs/bench-full-size.md       # the full 7B shape in 24 GB (f32: 28 GB)
  python3 scripts/bench_vs_pytorch.py --layers 32 --build-only
                                                            # only build the model; prints its folder
  python3 scripts/bench_vs_pytorch.py --layers 32 --rounds 1 --modes bf16,q8_0,q4_0 \
      --torch-modes "" --tokens 364 --runs 3 --append 5     # as you type at full size: start-up,
                                                            # first pass, one word appended, floor
  python3 scripts/bench_vs_pytorch.py --device cuda --layers 32 --tokens 300 --batch 1,32 \
      --modes bf16 --torch-modes bf16 --bin ./bench_model   # GPU: latency and throughput

Needs torch, transformers, safetensors, tokenizers (not needed by the Rust build or its tests).
Build the Rust side first: cargo build --release --example bench_model --example bench_linear
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_engines  # noqa: E402
from bench_report import QUANTISED, append_table, table, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = (
    "[INST] You must read the following conversation carefully and rate the assistant's response "
    "from score 0-100 in these aspects: helpfulness, correctness, coherence, honesty, complexity, "
    "verbosity\n\nUser: {prompt}\n\nAssistant: {response} [/INST]"
)
FILLER = (
    "The committee reviewed the proposal in detail, weighing its costs against the expected "
    "benefits for the community, and asked for a clearer schedule, a risk register and a plan "
    "for maintenance after the first year. "
)


def shape(args) -> dict:
    if args.smoke:
        return dict(hidden_size=256, intermediate_size=512, num_attention_heads=4,
                    num_key_value_heads=2, head_dim=64)
    return dict(hidden_size=4096, intermediate_size=14336, num_attention_heads=32,
                num_key_value_heads=8, head_dim=128)


def config(args) -> dict:
    c = dict(
        architectures=["MistralForSequenceClassification"],
        model_type="mistral",
        num_hidden_layers=args.layers,
        vocab_size=32001,
        num_labels=10,
        hidden_act="silu",
        max_position_embeddings=32768,
        rms_norm_eps=1e-5,
        rope_theta=1000000.0,
        sliding_window=None,
        pad_token_id=32000,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
        torch_dtype="bfloat16",
    )
    c.update(shape(args))
    return c


def model_dir_for(args) -> Path:
    cfg = config(args)
    key = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]
    return Path(args.dir) / f"mistral-{args.layers}l-{key}"


def model_built(out: Path) -> bool:
    return (out / "config.json").is_file() and (
        (out / "model.safetensors").is_file() or (out / "model.safetensors.index.json").is_file())


def build_model(args) -> Path:
    """The random model, made once per configuration under --dir.

    Written as transformers does: one `model.safetensors`, or, above --max-shard-gb, numbered
    shards with `model.safetensors.index.json`. Only one shard is held in memory at a time, so the
    full 7B (14.5 GB in bf16) is built in about 5 GB; the values do not depend on the sharding.
    """
    import torch
    from safetensors.torch import save_file

    cfg = config(args)
    out = model_dir_for(args)
    if model_built(out):
        return out
    out.mkdir(parents=True, exist_ok=True)
    print(f"building the random model in {out} ...", file=sys.stderr)
    # Drawn on the GPU when benchmarking one (7B values take minutes on a CPU).
    dev = args.device if args.device.startswith("cuda") else "cpu"
    g = torch.Generator(device=dev).manual_seed(0)
    h, i = cfg["hidden_size"], cfg["intermediate_size"]
    q = cfg["num_attention_heads"] * cfg["head_dim"]
    kv = cfg["num_key_value_heads"] * cfg["head_dim"]

    # (name, shape, random?) in the order the values are drawn.
    plan = [("model.embed_tokens.weight", (cfg["vocab_size"], h), True)]
    for li in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{li}"
        plan += [
            (f"{p}.input_layernorm.weight", (h,), False),
            (f"{p}.post_attention_layernorm.weight", (h,), False),
            (f"{p}.self_attn.q_proj.weight", (q, h), True),
            (f"{p}.self_attn.k_proj.weight", (kv, h), True),
            (f"{p}.self_attn.v_proj.weight", (kv, h), True),
            (f"{p}.self_attn.o_proj.weight", (h, q), True),
            (f"{p}.mlp.gate_proj.weight", (i, h), True),
            (f"{p}.mlp.up_proj.weight", (i, h), True),
            (f"{p}.mlp.down_proj.weight", (h, i), True),
        ]
    plan += [("model.norm.weight", (h,), False),
             ("score.weight", (cfg["num_labels"], h), True)]

    def nbytes(s):
        n = 2  # bf16
        for d in s:
            n *= d
        return n

    # Greedy, in order, as transformers' save_pretrained cuts shards.
    limit = int(args.max_shard_gb * 1e9)
    groups, size = [[]], 0
    for item in plan:
        b = nbytes(item[1])
        if groups[-1] and size + b > limit:
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += b

    def randn(*s):
        # std 0.02 as transformers initialises; drawn in f32 a slice at a time, kept as bf16.
        t = torch.empty(*s, dtype=torch.bfloat16)
        for a in range(0, s[0], 4096):
            b = min(s[0], a + 4096)
            t[a:b] = (torch.randn(b - a, *s[1:], generator=g, device=dev) * 0.02).to(
                torch.bfloat16).cpu()
        return t

    weight_map, total = {}, 0
    for n, group in enumerate(groups, 1):
        name = ("model.safetensors" if len(groups) == 1
                else f"model-{n:05d}-of-{len(groups):05d}.safetensors")
        t = {k: randn(*s) if rnd else torch.ones(*s, dtype=torch.bfloat16)
             for k, s, rnd in group}
        save_file(t, str(out / name), metadata={"format": "pt"})
        total += sum(v.numel() * v.element_size() for v in t.values())
        weight_map.update({k: name for k in t})
        del t
        if len(groups) > 1:
            print(f"  wrote {name}", file=sys.stderr)
    if len(groups) > 1:
        (out / "model.safetensors.index.json").write_text(json.dumps(
            {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    tok = ROOT / "assets/tokenizer/tokenizer.json"
    (out / "tokenizer.json").write_bytes(tok.read_bytes())
    return out


def make_inputs(model_dir: Path, lengths: list[int]) -> Path:
    """Token ids of the scoring template, cut from the left (as training did) to each length."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    inputs = []
    for n in lengths:
        reps = n // 30 + 2
        text = TEMPLATE.format(prompt="Summarise the committee's view. " + FILLER * (reps // 2),
                               response=FILLER * reps)
        ids = tok.encode(text, add_special_tokens=False).ids
        inputs.append([1] + ids[len(ids) - (n - 1):])
    path = model_dir / f"inputs-{'-'.join(map(str, lengths))}.json"
    path.write_text(json.dumps({"inputs": inputs}))
    return path


def peak_rss() -> int | None:
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def torch_worker(args) -> None:
    """One transformers mode in this process; prints the same JSON as bench_model."""
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.set_num_threads(args.threads)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[args.dtype]
    dev = torch.device(args.device)
    t0 = time.perf_counter()
    model = AutoModelForSequenceClassification.from_pretrained(args.model, dtype=dtype)
    model = model.to(dev).eval()
    load_s = time.perf_counter() - t0
    rss_loaded = peak_rss()
    inputs = json.loads(Path(args.inputs).read_text())["inputs"]
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    results = []
    with torch.inference_mode():
        for ids in inputs:
            for b in args.batch:
                x = torch.tensor([ids] * b, device=dev)

                def run():
                    sync()
                    t = time.perf_counter()
                    logits = model(input_ids=x).logits.float().cpu()
                    sync()
                    return time.perf_counter() - t, logits[0].tolist()

                run()
                times, scores = [], []
                for _ in range(max(1, args.runs)):
                    t, scores = run()
                    times.append(t)
                results.append(dict(tokens=len(ids), batch=b, median_s=statistics.median(times),
                                    min_s=min(times), times_s=times, scores=scores))
    print(json.dumps(dict(engine="pytorch", mode=args.dtype, requested=args.dtype,
                          device=args.device,
                          attention=getattr(model.config, "_attn_implementation", None), load_s=load_s, weight_bytes=weight_bytes,
                          peak_rss_after_load=rss_loaded, peak_rss=peak_rss(),
                          threads=torch.get_num_threads(), torch=torch.__version__,
                          results=results)))


def mem_available() -> int | None:
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def run_json(cmd: list[str], env=None, timeout=3600, min_free_gb=0.0) -> dict:
    """Runs one worker and returns the JSON object it prints last.

    With min_free_gb, the worker is stopped if the machine's available memory falls below it (a
    full-size model on a small machine), so that the kernel's OOM killer never has to choose.
    """
    print("$ " + " ".join(cmd), file=sys.stderr)
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        start, why = time.monotonic(), None
        while p.poll() is None:
            if time.monotonic() - start > timeout:
                why = f"timed out after {timeout} s"
            free = mem_available() if min_free_gb > 0 else None
            if free is not None and free < min_free_gb * 2**30:
                why = f"stopped: available memory fell to {free / 2**30:.2f} GiB"
            if why:
                p.kill()
                p.wait()
                break
            time.sleep(0.2)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if why or p.returncode != 0:
        sys.stderr.write(stderr[-4000:])
        raise SystemExit(f"failed ({why or p.returncode}): {' '.join(cmd)}")
    return json.loads(stdout.strip().splitlines()[-1])



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("worker", nargs="?", choices=["torch-worker", "gemm-worker"])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--tokens", default="128,512")
    ap.add_argument("--runs", type=int, default=3, help="timed passes per process")
    ap.add_argument("--rounds", type=int, default=2,
                    help="processes per mode, one per round, in a different order each round")
    ap.add_argument("--batch", default="1")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--modes", default="f32,bf16,q8_0,q4_0", help="dpa-explorer modes")
    ap.add_argument("--torch-modes", default="f32,bf16")
    ap.add_argument("--llamacpp", default="", metavar="MODES",
                    help="llama.cpp as a third engine in these modes (f32,bf16,q8_0,q4_0); "
                         "built by scripts/build_llamacpp.sh")
    ap.add_argument("--gemm", action="store_true",
                    help="each round also times a plain GEMM of the projection shapes (PyTorch) "
                         "and our projections alone (examples/bench_linear)")
    ap.add_argument("--dir", default=str(ROOT / "target/bench"))
    ap.add_argument("--bin", default=str(ROOT / "target/release/examples/bench_model"))
    ap.add_argument("--linear-bin", default=str(ROOT / "target/release/examples/bench_linear"))
    ap.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--no-write", action="store_true", help="print only, leave BENCHMARKS.md")
    ap.add_argument("--note", default="", help="a sentence added to the section's header")
    ap.add_argument("--smoke", action="store_true", help="tiny widths, 1 run: checks the harness")
    ap.add_argument("--max-shard-gb", type=float, default=5.0,
                    help="checkpoint shard size (transformers' default); larger models are sharded")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds allowed per process")
    ap.add_argument("--min-free-gb", type=float, default=1.0,
                    help="stop a process that leaves less available memory than this (0: never)")
    ap.add_argument("--build-only", action="store_true",
                    help="build the random model for --layers (if not built yet), print its "
                         "folder and exit")
    ap.add_argument("--append", type=int, default=0, metavar="N",
                    help="dpa-explorer also scores N tokens appended to each input against its "
                         "kept key/value cache, times its first pass after the load and measures "
                         "read bandwidth; adds the as-you-type table (start-up, cold score, "
                         "append, floor, peak RSS)")
    ap.add_argument("--append-runs", type=int, default=15, metavar="N",
                    help="timed appends per mode with --append (after a warm-up; an append "
                         "costs a fraction of a pass)")
    # worker-only
    ap.add_argument("--model")
    ap.add_argument("--dtype")
    ap.add_argument("--inputs")
    ap.add_argument("--config")
    args = ap.parse_args()
    args.batch = [int(b) for b in args.batch.split(",")]
    if args.worker == "torch-worker":
        return torch_worker(args)
    if args.worker == "gemm-worker":
        return bench_engines.gemm_worker(args)
    if args.smoke:
        args.runs, args.rounds, args.no_write = 1, 1, True

    model_dir = model_dir_for(args)
    if not model_built(model_dir):
        # In a child process: the memory it used to draw the weights (gigabytes at full size)
        # would otherwise stay with this process while the workers are measured.
        import multiprocessing

        child = multiprocessing.get_context("spawn").Process(target=build_model, args=(args,))
        child.start()
        child.join()
        if child.exitcode != 0 or not model_built(model_dir):
            raise SystemExit(f"building the model in {model_dir} failed")
    if args.build_only:
        print(model_dir)
        return
    lengths = [int(t) for t in args.tokens.split(",")]
    inputs = make_inputs(model_dir, lengths)
    cfg = json.loads((model_dir / "config.json").read_text())
    env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
    # A fresh cache directory, so that the first start of a quantised mode really quantises.
    qcache = Path(args.dir) / f"quantized-{os.getpid()}"
    jobs = [("pytorch", m) for m in args.torch_modes.split(",") if m]
    jobs += [("dpa-explorer", m) for m in args.modes.split(",") if m]
    llama_modes = [m for m in args.llamacpp.split(",") if m]
    jobs += [("llama.cpp", m) for m in llama_modes]
    gemm_jobs = [("gemm", "pytorch"), ("gemm", "dpa-explorer")] if args.gemm else []
    peak = bench_engines.peak_cmd(Path(args.dir)) if args.gemm else None
    gemm_jobs += [("gemm", "peak")] if peak else []
    if llama_modes:
        ll = bench_engines.llamacpp_dir(sys.executable)
        ggufs = bench_engines.gguf_files(model_dir, ll, llama_modes, sys.executable, args.threads)

    def run_one(engine: str, m: str, inputs_path: Path = inputs, runs: int = args.runs,
                extra: tuple = ()) -> dict:
        common = ["--inputs", str(inputs_path), "--runs", str(runs),
                  "--batch", ",".join(map(str, args.batch))]
        if engine == "pytorch":
            cmd = [sys.executable, __file__, "torch-worker", "--model", str(model_dir),
                   "--dtype", m, "--device", args.device, "--threads", str(args.threads)] + common
            return run_json(cmd, timeout=args.timeout, min_free_gb=args.min_free_gb)
        if engine == "llama.cpp":
            return bench_engines.run_llamacpp(ll, ggufs[m], m, lengths, runs, args.threads,
                                              args.timeout)
        if engine == "gemm":
            if m == "peak":
                return run_json(peak, env=dict(env, OMP_NUM_THREADS=str(args.threads)))
            if m == "pytorch":
                cmd = [sys.executable, __file__, "gemm-worker", "--config",
                       str(model_dir / "config.json"), "--tokens", args.tokens,
                       "--threads", str(args.threads), "--runs", str(runs)]
            else:
                cmd = [args.linear_bin, "--tokens", args.tokens, "--runs", str(runs),
                       "--modes", args.modes, "--hidden", str(cfg["hidden_size"]),
                       "--intermediate", str(cfg["intermediate_size"]),
                       "--kv", str(cfg["num_key_value_heads"] * cfg["head_dim"])]
            return run_json(cmd, env=env, timeout=args.timeout, min_free_gb=args.min_free_gb)
        cmd = [args.bin, "--model", str(model_dir), "--dtype", m, "--device", args.device,
               "--quant-cache", str(qcache)] + common + list(extra)
        if args.append:
            cmd += ["--append", str(args.append), "--append-runs", str(args.append_runs),
                    "--cold"]
        return run_json(cmd, env=env, timeout=args.timeout, min_free_gb=args.min_free_gb)

    def first_load(m: str) -> dict:
        # Only the load is of interest: no pass.
        r = run_one("dpa-explorer", m, shortest, 1, ("--load-only",))
        return dict(load_s=r["load_s"], peak_rss_after_load=r["peak_rss_after_load"])

    def first_start(engine: str, m: str) -> bool:
        # A quantised mode's first start quantises; the as-you-type table shows every mode's.
        return engine == "dpa-explorer" and (m in QUANTISED or args.append > 0)

    shortest = make_inputs(model_dir, [min(lengths)])
    first_loads: dict = {}
    merged: dict = {}
    gemm_rounds: dict = {}
    linear_kernels: dict = {}  # our mode -> the instruction set its kernel ran on

    # Each worker's result as it comes, so that a later failure loses none of it.
    partial = Path(args.dir) / f"partial-{args.device}.jsonl"
    partial.unlink(missing_ok=True)

    def merge(key, r: dict, rnd: int) -> None:
        with partial.open("a") as f:
            f.write(json.dumps(dict(r, round=rnd)) + "\n")
        if key[0] == "gemm":
            gemm_rounds.setdefault(rnd, {})[key[1]] = (r if key[1] == "peak"
                                                      else bench_engines.gemm_rates(r))
            if key[1] == "dpa-explorer":
                linear_kernels.update({m["mode"]: m.get("kernel", "") for m in r["modes"]})
            return
        for x in r["results"]:
            x["round_medians"] = [x["median_s"]]
        if key not in merged:
            merged[key] = r
            return
        acc = merged[key]
        for x, y in zip(acc["results"], r["results"]):
            x["times_s"] += y["times_s"]
            x["round_medians"] += y["round_medians"]
            x["median_s"] = statistics.median(x["times_s"])
            x["min_s"] = min(x["times_s"])
            if "append_times_s" in x and "append_times_s" in y:
                x["append_times_s"] += y["append_times_s"]
                x["append_median_s"] = statistics.median(x["append_times_s"])
                x["append_min_s"] = min(x["append_times_s"])
        if r.get("cold_s") is not None and acc.get("cold_s") is not None:
            acc["cold_rounds"] = acc.get("cold_rounds", [acc["cold_s"]]) + [r["cold_s"]]
            acc["cold_s"] = statistics.median(acc["cold_rounds"])
        if r.get("bandwidth_gbs") and acc.get("bandwidth_gbs"):
            # The best read of any round; the floor follows it.
            acc["bandwidth_gbs"] = max(acc["bandwidth_gbs"], r["bandwidth_gbs"])
            acc["floor_s"] = acc["pass_weight_bytes"] / (acc["bandwidth_gbs"] * 1e9)
        for f in ("peak_rss", "peak_rss_after_load"):
            if r.get(f):
                acc[f] = max(acc.get(f) or 0, r[f])
        if r.get("load_s") is not None:
            acc["load_s"] = min(acc["load_s"], r["load_s"])

    loads = [os.getloadavg()[0]]
    try:
        if args.rounds == 1:
            # One mode after another: a quantised mode's cache is made (timing that start), read by
            # the timed process, then removed, so only one cache file is ever on disk (a 7B's q8_0
            # file alone is 7.7 GB).
            for engine, m in jobs + gemm_jobs:
                if first_start(engine, m):
                    first_loads[m] = first_load(m)
                merge((engine, m), run_one(engine, m), 0)
                for f in qcache.glob("*.gguf"):
                    f.unlink()
        else:
            # Quantise once first (timing that start), so that every timed start reads the cache.
            for engine, m in jobs:
                if first_start(engine, m):
                    first_loads[m] = first_load(m)
            # Every round runs every engine and mode once, in a different order (rotated, and
            # reversed every other round), so that a change of load on a shared machine does not
            # favour one of them; each cell keeps its rounds' medians.
            every = jobs + gemm_jobs
            for rnd in range(args.rounds):
                k = (rnd // 2) % len(every)
                order = every[k:] + every[:k]
                for engine, m in (order if rnd % 2 == 0 else list(reversed(order))):
                    merge((engine, m), run_one(engine, m), rnd)
                loads.append(os.getloadavg()[0])
                print(f"round {rnd + 1} of {args.rounds} done, load average {loads[-1]:.2f}",
                      file=sys.stderr)
    finally:
        shutil.rmtree(qcache, ignore_errors=True)
    runs = [merged[k] for k in jobs]
    for r in runs:
        if r["engine"] == "dpa-explorer" and r["requested"] in first_loads:
            r["first_load_s"] = first_loads[r["requested"]]["load_s"]
            r["first_load_peak_rss"] = first_loads[r["requested"]]["peak_rss_after_load"]

    raw = Path(args.dir) / f"last-run-{args.device}.json"
    gemm_raw = {str(k): {e: rates if e == "peak" else [[t, m, v] for (m, t), v in rates.items()]
                         for e, rates in g.items()} for k, g in gemm_rounds.items()}
    raw.write_text(json.dumps(dict(runs=runs, gemm_gflops=gemm_raw), indent=1))
    report = table(args, cfg, runs)
    if args.append:
        report += "\n" + append_table(args, runs)
    if gemm_rounds:
        pairs = [(g["pytorch"], g["dpa-explorer"]) for _, g in sorted(gemm_rounds.items())
                 if "pytorch" in g and "dpa-explorer" in g]
        report += ("\n\n**Projections alone against a plain GEMM of the same shapes** (one "
                   "layer's four products, GFLOP/s, median and range over the rounds)\n\n"
                   + bench_engines.gemm_table(pairs, lengths)
                   + bench_engines.peak_line([g["peak"] for g in gemm_rounds.values()
                                              if "peak" in g], pairs, lengths,
                                             linear_kernels))
    if llama_modes:
        info = merged[("llama.cpp", llama_modes[0])]
        report += (f"\n\nllama.cpp: {info['build']}, flash attention "
                   f"{info['flash_attn']}, n_batch {info['n_batch']}, n_ubatch "
                   f"{info['n_ubatch']}, K cache {info['type_k']}; CPU: {info['cpu_info']}.")
    print(report)
    if not args.no_write:
        load = (f" 1-minute load average {loads[0]:.2f} at the start"
                + (f", {min(loads[1:]):.2f}–{max(loads[1:]):.2f} after the rounds"
                   if len(loads) > 1 else "") + ".")
        write_report(Path(args.out), args, report, load + (" " + args.note if args.note else ""))


if __name__ == "__main__":
    main()
