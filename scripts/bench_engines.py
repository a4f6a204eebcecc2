"""The third engine and the GEMM reference of scripts/bench_vs_pytorch.py (imported by it).

llama.cpp: `scripts/build_llamacpp.sh` builds `llama-bench` and `llama-quantize` from the source
the `llama-cpp-python` sdist vendors. The benchmark model (a MistralForSequenceClassification) is
rewritten as a MistralForCausalLM with the same body and `tie_word_embeddings` (llama.cpp's output
layer is then the embedding table: no new weights, one 4096 × 32001 product for the last token),
converted to GGUF by the vendored `convert_hf_to_gguf.py` (which needs `sentencepiece` for this
tokenizer) in f32 and bf16, and quantised from the
bf16 file by `llama-quantize` to Q8_0 and Q4_0 (its default mix for those types). Each round runs
`llama-bench -n 0 -p <tokens> -t <threads> -r <runs> -o json` once per mode.

GEMM reference: a plain product of each projection shape of one layer (q/k/v and gate/up fused,
as dpa-explorer stores them) at the benchmark's token counts, in PyTorch with the benchmark's
threads: f32 and bf16 `torch.nn.functional.linear` (oneDNN), and int8 `torch._int_mm`
(int8 × int8 → int32, oneDNN's VNNI product), beside dpa-explorer's own projections
(`examples/bench_linear`) in the same round.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def llamacpp_dir(python: str) -> Path:
    """Builds llama.cpp (or finds the finished build) and returns its directory."""
    env = dict(os.environ, PYTHON=python)
    bindir = str(Path(python).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    out = subprocess.run([str(ROOT / "scripts/build_llamacpp.sh")], env=env, check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    line = [x for x in out.splitlines() if x.startswith("LLAMACPP=")][-1]
    return Path(line.split("=", 1)[1])


def causal_lm(model_dir: Path) -> Path:
    """The benchmark model's body as a MistralForCausalLM (tied embeddings, no score head)."""
    out = model_dir / "causal-lm"
    if (out / "model.safetensors").is_file():
        return out
    from safetensors import safe_open
    from safetensors.torch import save_file

    out.mkdir(exist_ok=True)
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg.update(architectures=["MistralForCausalLM"], tie_word_embeddings=True)
    cfg.pop("num_labels", None)
    files = sorted(model_dir.glob("model*.safetensors"))
    tensors = {}
    for f in files:
        with safe_open(str(f), "pt") as s:
            for k in s.keys():
                if not k.startswith("score."):
                    tensors[k] = s.get_tensor(k)
    save_file(tensors, str(out / "model.tmp"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    (out / "tokenizer.json").write_bytes((model_dir / "tokenizer.json").read_bytes())
    (out / "model.tmp").rename(out / "model.safetensors")
    return out


def gguf_files(model_dir: Path, ll: Path, modes: list[str], python: str, threads: int) -> dict:
    """mode -> GGUF file, made once per model under model_dir/gguf/."""
    gdir = model_dir / "gguf"
    gdir.mkdir(exist_ok=True)
    paths = {m: gdir / f"model-{m}.gguf" for m in ["f32", "bf16", "q8_0", "q4_0"]}
    need = set(modes)
    if need & {"q8_0", "q4_0"}:
        need.add("bf16")
    src = None
    env = dict(os.environ, PYTHONPATH=str(ll / "src/gguf-py"))
    for m in ["f32", "bf16"]:
        if m in need and not paths[m].is_file():
            src = src or causal_lm(model_dir)
            tmp = paths[m].with_suffix(".tmp")
            print(f"$ convert_hf_to_gguf.py --outtype {m}", file=sys.stderr)
            subprocess.run([python, str(ll / "src/convert_hf_to_gguf.py"), str(src),
                            "--outtype", m, "--outfile", str(tmp)], env=env, check=True,
                           stdout=subprocess.DEVNULL)
            tmp.rename(paths[m])
    for m in ["q8_0", "q4_0"]:
        if m in need and not paths[m].is_file():
            tmp = paths[m].with_suffix(".tmp")
            print(f"$ llama-quantize {m}", file=sys.stderr)
            subprocess.run([str(ll / "build/bin/llama-quantize"), str(paths["bf16"]), str(tmp),
                            m.upper(), str(threads)], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            tmp.rename(paths[m])
    return {m: paths[m] for m in modes}


def run_llamacpp(ll: Path, gguf: Path, mode: str, tokens: list[int], runs: int, threads: int,
                 timeout: int) -> dict:
    """One llama-bench process; returns the harness's result object (no scores)."""
    cmd = [str(ll / "build/bin/llama-bench"), "-m", str(gguf), "-n", "0",
           "-p", ",".join(map(str, tokens)), "-t", str(threads), "-r", str(runs), "-o", "json"]
    print("$ " + " ".join(cmd), file=sys.stderr)
    t0 = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        while True:
            # wait4: the child's own peak RSS (its mapped weights count as they are read).
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - t0 > timeout:
                p.kill()
                raise SystemExit(f"timed out: {' '.join(cmd)}")
            time.sleep(0.1)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if p.returncode != 0:
        sys.stderr.write(stderr[-4000:])
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}")
    rows = json.loads(stdout)
    results = []
    for n in tokens:
        r = next(x for x in rows if x["n_prompt"] == n and x["n_gen"] == 0)
        times = [s / 1e9 for s in r["samples_ns"]]
        results.append(dict(tokens=n, batch=1, median_s=statistics.median(times),
                            min_s=min(times), times_s=times, scores=None))
    info = rows[0]
    return dict(engine="llama.cpp", mode=mode, requested=mode, device="cpu",
                load_s=None, weight_bytes=gguf.stat().st_size,
                peak_rss=usage.ru_maxrss * 1024, peak_rss_after_load=None, threads=threads,
                wall_s=time.monotonic() - t0,
                build=f"llama-cpp-python {ll.name}'s vendored llama.cpp",
                flash_attn={-1: "auto", 0: "off", 1: "on"}.get(info.get("flash_attn"),
                                                               info.get("flash_attn")), n_batch=info.get("n_batch"),
                n_ubatch=info.get("n_ubatch"), type_k=info.get("type_k"),
                model_type=info.get("model_type"), cpu_info=info.get("cpu_info"),
                results=results)


def peak_cmd(out_dir: Path) -> list[str] | None:
    """scripts/peak_rates.c compiled for this CPU (None without a C compiler or AVX512-VNNI)."""
    exe = out_dir / "peak_rates"
    src = ROOT / "scripts/peak_rates.c"
    if not exe.is_file() or exe.stat().st_mtime < src.stat().st_mtime:
        cc = os.environ.get("CC", "cc")
        r = subprocess.run([cc, "-O2", "-mavx512f", "-mavx512bw", "-mavx512vnni", "-mavx512bf16",
                            "-fopenmp", str(src), "-o", str(exe)], capture_output=True)
        if r.returncode != 0:
            return None
    return [str(exe)]


def layer_shapes(cfg: dict) -> list[tuple[str, int, int]]:
    h, i = cfg["hidden_size"], cfg["intermediate_size"]
    q = cfg["num_attention_heads"] * cfg["head_dim"]
    kv = cfg["num_key_value_heads"] * cfg["head_dim"]
    return [("qkv", q + 2 * kv, h), ("o", h, q), ("gate_up", 2 * i, h), ("down", h, i)]


def gemm_modes() -> list[str]:
    """The reference products this CPU has a fast path for. Without AVX512-BF16 or VNNI (AVX2
    laptops) PyTorch's bf16 and int8 products fall back to loops that took over 20 minutes for
    one round here, and measure no limit worth holding a kernel against."""
    try:
        flags = set(next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        flags = set()
    modes = ["f32"]
    if flags & {"avx512_bf16", "amx_bf16"}:
        modes.append("bf16")
    if flags & {"avx512_vnni", "avx_vnni", "amx_int8"}:
        modes.append("int8")
    return modes


def gemm_worker(args) -> None:
    """PyTorch's plain products of one layer's projection shapes; prints one JSON object."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    cfg = json.loads(Path(args.config).read_text())
    tokens = [int(t) for t in args.tokens.split(",")]
    g = torch.Generator().manual_seed(0)
    modes = []
    for mode in gemm_modes():
        rows = []
        for name, n, k in layer_shapes(cfg):
            w = torch.randn(n, k, generator=g) * 0.02
            w8 = None
            if mode == "bf16":
                w = w.bfloat16()
            if mode == "int8":
                # [k, n], as _int_mm takes it; contiguous (its fastest layout here)
                w8 = torch.randint(-127, 128, (k, n), dtype=torch.int8, generator=g)
            for m in tokens:
                x = torch.randn(m, k, generator=g)
                if mode == "int8":
                    x8 = torch.randint(-127, 128, (m, k), dtype=torch.int8, generator=g)

                    def f(x8=x8, w8=w8):
                        return torch._int_mm(x8, w8)
                else:
                    xx = x.to(w.dtype)

                    def f(xx=xx, w=w):
                        return F.linear(xx, w)
                f()
                times = []
                for _ in range(max(1, args.runs)):
                    t = time.perf_counter()
                    f()
                    times.append(time.perf_counter() - t)
                times.sort()
                rows.append(dict(shape=name, tokens=m, n=n, k=k, flop=2.0 * m * n * k,
                                 median_s=times[len(times) // 2], times_s=times))
            del w, w8
        modes.append(dict(mode=mode, shapes=rows))
    print(json.dumps(dict(engine="pytorch-gemm", threads=torch.get_num_threads(),
                          torch=torch.__version__, modes=modes)))


def gemm_rates(r: dict) -> dict:
    """(mode, tokens) -> GFLOP/s over one layer's four products."""
    out = {}
    for m in r["modes"]:
        for t in sorted({s["tokens"] for s in m["shapes"]}):
            rows = [s for s in m["shapes"] if s["tokens"] == t]
            out[(m["mode"], t)] = (sum(s["flop"] for s in rows)
                                   / sum(s["median_s"] for s in rows) / 1e9)
    return out


# Which reference each of our modes is held against (issue 13: bf16 products against the bf16
# GEMM rate, integer products against the int8 rate; q8_0 and q12 multiply 16-bit activations
# with vpdpwssd, which does half the multiply-adds of vpdpbusd per instruction, so they are also
# shown against half the int8 rate).
REFERENCE = {"f32": [("f32", 1.0)], "bf16": [("bf16", 1.0)],
             "q12": [("int8", 1.0), ("int8", 0.5)],
             "q8_0": [("int8", 1.0), ("int8", 0.5)], "q4_0": [("int8", 1.0)]}


def peak_line(peaks: list[dict], rounds: list[tuple[dict, dict]], tokens: list[int],
              kernels: dict | None = None) -> str:
    """The instructions' peak rates, and our projections as a share of the one each uses
    (kernels: our mode -> the instruction set its kernel ran on, as bench_linear reports it)."""
    if not peaks:
        return ""
    med = {k: statistics.median(p[k] for p in peaks)
           for k in ["vpdpbusd_gops", "vpdpwssd_gops", "vdpbf16ps_gflops", "vfmadd_gflops"]}
    # bf16 runs on its dot product, or widened to f32 on FMA where that measured faster.
    bf16_dot = (kernels or {}).get("bf16", "AVX512-BF16") == "AVX512-BF16"
    uses = {"f32": "vfmadd_gflops", "bf16": "vdpbf16ps_gflops" if bf16_dot else "vfmadd_gflops",
            "q12": "vpdpwssd_gops", "q8_0": "vpdpwssd_gops", "q4_0": "vpdpbusd_gops"}
    shares = []
    for t in tokens:
        for mode, k in uses.items():
            if rounds and (mode, t) in rounds[0][1]:
                ours = statistics.median(r[1][(mode, t)] for r in rounds)
                shares.append(f"{mode} at {t} tokens {100 * ours / med[k]:.0f} %")
    return (f"\n\nInstruction peaks on these {peaks[0]['threads']} threads (scripts/peak_rates.c, "
            f"median over the rounds): `vpdpbusd` {med['vpdpbusd_gops']:.0f} GOP/s, `vpdpwssd` "
            f"{med['vpdpwssd_gops']:.0f} GOP/s, `vdpbf16ps` {med['vdpbf16ps_gflops']:.0f} GFLOP/s, "
            f"`vfmadd231ps` {med['vfmadd_gflops']:.0f} GFLOP/s; "
            f"our projections as a share of the peak of the instruction each uses: "
            + ", ".join(shares) + ".")


def gemm_table(rounds: list[tuple[dict, dict]], tokens: list[int]) -> str:
    """rounds: (PyTorch rates, our rates) per round; median and range of each across rounds."""
    def rng(vals, fmt):
        return (f"{fmt(statistics.median(vals))} ({fmt(min(vals))}–{fmt(max(vals))})"
                if len(vals) > 1 else fmt(vals[0]))

    def gf(v):
        return f"{v:.0f}"

    def pct(v):
        return f"{100 * v:.0f} %"

    lines = ["| tokens | PyTorch f32 | PyTorch bf16 | PyTorch int8 (`_int_mm`) | ours | "
             "our GFLOP/s | % of reference |", "|---:|---:|---:|---:|---|---:|---|"]
    for t in tokens:
        # A reference this CPU has no fast path for was not measured (see gemm_modes).
        refs = {m: [r[0][(m, t)] for r in rounds if (m, t) in r[0]] for m in ["f32", "bf16", "int8"]}
        cell = {m: rng(v, gf) if v else "–" for m, v in refs.items()}
        for mode, against in REFERENCE.items():
            if (mode, t) not in rounds[0][1]:
                continue
            ours = [r[1][(mode, t)] for r in rounds]
            shares = []
            for ref, scale in against:
                if not refs[ref]:
                    continue
                per_round = [r[1][(mode, t)] / (r[0][(ref, t)] * scale) for r in rounds]
                name = ref if scale == 1.0 else f"½ {ref} (int16 estimate)"
                shares.append(f"{rng(per_round, pct)} of {name}")
            lines.append(f"| {t} | {cell['f32']} | {cell['bf16']} | {cell['int8']} | {mode} | "
                         f"{rng(ours, gf)} | {'; '.join(shares) or '–'} |")
    return "\n".join(lines)
