"""GPU speed at real size, for each base-model family (SD 1.5, SDXL, FLUX.1-dev shapes with random
weights built in code by bench/real_configs.py: nothing is downloaded).

Per family:
- LoRA training, batch 1, bf16, same photos, same prompt: Candor's trainer and diffusers' official
  `train_dreambooth_lora*.py` script for the family (run from the folder given with --anchors,
  never copied here) on the same saved model folder. Seconds per step (median of the timed steps
  after the warm-up ones), steps/s and peak memory (torch.cuda.max_memory_allocated of the
  process at its last step, loading included). Target: Candor >= 1.5x the script's steps/s.
  Candor's step times are the gaps between its `should_stop` calls (one per step); the script's
  are the gaps between its progress bar's per-step updates (bench/_anchor_run.py explains).
- MFU: FLOPs of one denoiser forward+backward at the training size (FlopCounterMode, model FLOPs:
  gradient checkpointing's recomputation not counted) / seconds per step / the GPU's dense bf16
  peak (a small table by device name; an unknown GPU gives null).
- Generation at the native resolution and the family's usual steps (SD 512/25, SDXL 1024/30,
  FLUX 1024/28): Candor's PipelineCache cold (first call: loading the model from the page cache
  included) and warm; the same pipeline called directly (bare diffusers) uncompiled and with
  `torch.compile(denoiser)`; Candor with compile=True and the trained LoRA hot-swapped in. Target:
  Candor's warm generation within 10% of the bare compiled pipeline.

Everything runs against one deadline (--budget seconds; bench/gpu.sh passes what is left of its
10 minutes): each stage runs in its own process with what is left, minus a reserve for the later
families' essential rows, and a row that can't fit says "skipped (budget)".

    bash bench/gpu.sh /path/to/anchors/diffusers           (CUDA machine: installs, then runs this)
    python bench/gpu.py --anchors DIR [--families sd sdxl flux] [--steps 20] [--json]
    python bench/gpu.py --smoke [--anchors DIR] --json     (CPU: tiny built-in models, 64 px)
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _common import ROOT, emit, table, training_images

BENCH = Path(__file__).resolve().parent
STANDIN = BENCH / "_torchvision_standin"  # torchvision.transforms for CPU smoke runs only
PROMPT = "a photo of ohwx person"
SCRIPTS = {
    "sd": "train_dreambooth_lora.py",
    "sdxl": "train_dreambooth_lora_sdxl.py",
    "flux": "train_dreambooth_lora_flux.py",
}
# Dense bf16 tensor-core peaks (no sparsity), TFLOPS, by a substring of the device name; the
# first match wins. From the vendors' data sheets (SXM parts unless named).
BF16_PEAK_TFLOPS = (
    ("H200", 989.4),
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),
    ("A100", 312.0),
    ("L40S", 362.05),
    ("L4", 121.0),
)
SKIPPED = "skipped (budget)"
GC = {True: " (grad ckpt)", False: ""}


@dataclass(frozen=True)
class Plan:
    family: str
    model: str  # a builtin spec (smoke) or "" (a real-size folder built by the train stage)
    train_resolution: int
    rank: int
    resolution: int  # generation: the native size
    gen_steps: int
    guidance: float
    # Rough seconds per stage on one H200, for planning the budget (not measurements).
    est: dict = field(default_factory=dict)

    def essential(self) -> float:
        return sum(self.est[k] for k in ("train", "script", "generate"))


GPU_PLANS = {
    # SD 1.5: diffusers' README_dreambooth (512 px, rank 4); 25 steps of DPM++.
    "sd": Plan("sd", "", 512, 4, 512, 25, 7.5, {"train": 45, "script": 45, "generate": 35}),
    # SDXL: README_sdxl (1024 px, rank 4); 30 steps.
    "sdxl": Plan("sdxl", "", 1024, 4, 1024, 30, 5.0, {"train": 80, "script": 80, "generate": 50}),
    # FLUX.1-dev: trained at 512 px (README_flux) to fit the budget, rank 16 (Candor's default);
    # generated at its native 1024 px, 28 steps, guidance 3.5.
    "flux": Plan("flux", "", 512, 16, 1024, 28, 3.5, {"train": 150, "script": 110, "generate": 70}),
}
COMPILE_EST = {"sd": 50, "sdxl": 80, "flux": 120}  # one torch.compile'd path: compile + calls
_SMOKE_EST = {"train": 5, "script": 5, "generate": 5}
SMOKE_PLANS = {
    "sd": Plan("sd", "builtin:tiny", 64, 4, 64, 2, 7.0, _SMOKE_EST),
    "sdxl": Plan("sdxl", "builtin:tiny-sdxl", 64, 4, 64, 2, 5.0, _SMOKE_EST),
    "flux": Plan("flux", "builtin:tiny-flux", 64, 4, 64, 2, 3.5, _SMOKE_EST),
}
SMOKE_COMPILE_EST = 60


def peak_tflops(name: str) -> float | None:
    return next((peak for key, peak in BF16_PEAK_TFLOPS if key in name), None)


def log(message: str) -> None:
    print(f"[gpu.py {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- child stages: each runs in its own process and writes one JSON object ----------------------


def _cuda():
    import torch

    return torch.cuda.is_available()


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _peak_gib() -> tuple[float, str]:
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30, "cuda_max_allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "cpu_peak_rss"


class _Saved(dict):
    """A stage's results, written to its JSON file at every change: a stage stopped for time
    still reports what it had measured."""

    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        staging = self.path.with_suffix(".tmp")
        staging.write_text(json.dumps(self))
        os.replace(staging, self.path)


def _placement():
    from creator.engine.device import placement

    return placement("bf16" if _cuda() else "auto")


def job_train(args, plan: Plan) -> dict:
    """Build the real-size model if needed, then train Candor's LoRA and count one step's FLOPs."""
    import torch

    from creator.engine import base_models
    from creator.engine.train import TrainConfig, train_lora

    out = _Saved(args.out)
    model = plan.model or str(args.model_dir)
    if not plan.model and not (args.model_dir / "model_index.json").exists():
        import real_configs

        log(f"{plan.family}: building the real-size model in {args.model_dir}")
        out["build"] = real_configs.build(plan.family, args.model_dir, "cuda")
    where = _placement()
    if where.is_cuda:
        torch.cuda.reset_peak_memory_stats()  # the peak from loading on, as for the script
    images = sorted(args.images_dir.glob("*.jpg"))
    tick = time.perf_counter()
    base = base_models.resolve(model, args.work / "models")
    pipe = base_models.load_pipeline(base, where)
    _sync()
    out["load_s"] = round(time.perf_counter() - tick, 2)
    gc = {"auto": None, "on": True, "off": False}[args.candor_gc]
    config = TrainConfig(
        resolution=plan.train_resolution,
        rank=plan.rank,
        learning_rate=1e-4,
        # One step more than the script's: a step is timed from its should_stop call to the next.
        steps=args.warmup + args.steps + 1,
        batch_size=1,
        seed=0,
        mixed_precision="bf16" if where.is_cuda else "auto",
        checkpoint_every=10**6,  # one checkpoint and sample, after the timed steps
        sample_steps=2,
        gradient_checkpointing=gc,
        compile=args.train_compile,
    )
    times: list[float] = []
    peaks: list[tuple[float, str]] = []

    def should_stop() -> bool:
        _sync()
        times.append(time.perf_counter())
        peaks.append(_peak_gib())
        return False

    result = train_lora(
        config,
        pipe=pipe,
        base_id=model,
        images=images,
        out_dir=args.work / f"candor-{plan.family}",
        should_stop=should_stop,
        where=where,
    )
    # should_stop runs before each step: the gap after call k is step k (steps warmup+1 ..).
    gaps = [b - a for a, b in itertools.pairwise(times)]
    timed = gaps[args.warmup : args.warmup + args.steps]
    denoiser = getattr(pipe, "transformer" if plan.family == "flux" else "unet")
    out["candor"] = {
        "s_per_step": statistics.median(timed),
        "timed_steps": len(timed),
        "peak_gib": peaks[-1][0],
        "peak": peaks[-1][1],
        "gradient_checkpointing": bool(denoiser.is_gradient_checkpointing),
    }
    out["lora"] = str(result.lora_path)
    out["flops_per_step"] = denoiser_flops(pipe, plan, where)
    del pipe
    if where.is_cuda:
        torch.cuda.empty_cache()
    return out


def denoiser_flops(pipe, plan: Plan, where) -> float:
    """FLOPs of one forward and backward of the denoiser (LoRA attached) at the training size,
    batch 1, as Candor's step runs it; gradient checkpointing off so recomputation isn't
    counted (model FLOPs, as MFU is usually defined)."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from creator.engine import denoisers, families

    family = families.FAMILIES[plan.family]
    model = denoisers.denoiser(pipe, family)
    checkpointing = model.is_gradient_checkpointing
    if checkpointing:
        model.disable_gradient_checkpointing()
    model.train()
    cond = denoisers.encode_prompt(pipe, family, PROMPT, plan.train_resolution, where.device)
    scheduler = denoisers.train_scheduler(pipe, family)
    size = plan.train_resolution // int(pipe.vae_scale_factor)
    channels = int(pipe.vae.config.latent_channels)
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(1, channels, size, size, generator=generator).to(where.device)
    noise = torch.randn(latents.shape, generator=generator).to(where.device)
    noisy, timesteps, target = denoisers.noised(family, scheduler, latents, noise, generator)
    autocast = torch.autocast(
        where.device.type, dtype=where.dtype, enabled=where.dtype != torch.float32
    )
    with FlopCounterMode(display=False) as counter:
        with autocast:
            prediction = denoisers.predict(
                family, model, noisy, timesteps, cond, where.dtype, int(pipe.vae_scale_factor)
            )
        F.mse_loss(prediction.float(), target.float()).backward()
    model.zero_grad(set_to_none=True)
    if checkpointing:
        model.enable_gradient_checkpointing()
    return float(counter.get_total_flops())


def _timed(call) -> float:
    _sync()
    tick = time.perf_counter()
    call()
    _sync()
    return time.perf_counter() - tick


def job_generate(args, plan: Plan) -> dict:
    """Generation at the native size: Candor cold and warm, bare diffusers, the compiled paths."""
    import torch

    from creator.engine import base_models, denoisers, families
    from creator.engine.generate import GenerationRequest, LoraRef, PipelineCache

    family = families.FAMILIES[plan.family]
    where = _placement()
    base = base_models.resolve(plan.model or str(args.model_dir), args.work / "models")
    request = GenerationRequest(
        prompt=PROMPT,
        seed=0,
        steps=plan.gen_steps,
        guidance=plan.guidance,
        width=plan.resolution,
        height=plan.resolution,
    )
    out = _Saved(args.out)
    out["steps"], out["resolution"] = plan.gen_steps, plan.resolution
    cache = PipelineCache(lambda: base_models.load_pipeline(base, where))
    cold = _timed(lambda: cache.generate(request))
    warm = [_timed(lambda: cache.generate(request)) for _ in range(args.warm_calls)]
    pipe = cache.pipeline()
    out["native_resolution"] = base_models.native_resolution(pipe)
    out["candor"] = {"cold_s": cold, "warm_s": statistics.median(warm)}

    def bare():
        pipe(
            prompt=PROMPT,
            num_inference_steps=plan.gen_steps,
            guidance_scale=plan.guidance,
            width=plan.resolution,
            height=plan.resolution,
            generator=torch.Generator().manual_seed(0),
            **denoisers.pipe_options(pipe, family),
        )

    out["bare"] = {"warm_s": _timed(bare)}
    compile_est = args.compile_est

    def fits() -> bool:
        return time.time() + compile_est < args.soft_deadline

    if not args.compile:
        out["bare_compiled"] = out["candor_compiled_lora"] = "off (--compile off)"
        return out
    if fits():
        original = getattr(pipe, family.denoiser)
        setattr(pipe, family.denoiser, torch.compile(original, fullgraph=False))
        first = _timed(bare)
        warm = [_timed(bare) for _ in range(args.warm_calls)]
        setattr(pipe, family.denoiser, original)
        out["bare_compiled"] = {"first_s": first, "warm_s": statistics.median(warm)}
    else:
        out["bare_compiled"] = SKIPPED
    if args.lora and Path(args.lora).exists() and fits():
        torch._dynamo.reset()
        compiled = PipelineCache(lambda: pipe, compile=True)
        with_lora = GenerationRequest(**{**request.__dict__, "lora": LoraRef("bench", args.lora)})
        first = _timed(lambda: compiled.generate(with_lora))
        warm = [_timed(lambda: compiled.generate(with_lora)) for _ in range(args.warm_calls)]
        out["candor_compiled_lora"] = {"first_s": first, "warm_s": statistics.median(warm)}
    else:
        out["candor_compiled_lora"] = SKIPPED if args.lora else "no LoRA (training failed)"
    return out


# --- the parent: stages, budget, the official scripts, the tables ---------------------------------


class Budget:
    def __init__(self, seconds: float):
        self.started = time.time()
        self.deadline = self.started + seconds

    def left(self) -> float:
        return self.deadline - time.time()


def run_stage(job: str, plan: Plan, args, work: Path, limit: float, extra=()) -> dict:
    """Run a child stage with at most `limit` seconds; its JSON, or {"error": ...}."""
    out = work / f"{job}-{plan.family}.json"
    out.unlink(missing_ok=True)
    command = [
        sys.executable, __file__, "--job", job, "--family", plan.family,
        "--work", str(work), "--out", str(out), "--steps", str(args.steps),
        "--warmup", str(args.warmup), "--warm-calls", str(args.warm_calls),
        "--candor-gc", args.candor_gc, "--compile", "on" if args.compile else "off",
        *(["--smoke"] if args.smoke else []), *(["--train-compile"] if args.train_compile else []),
        *extra,
    ]  # fmt: skip
    return _run(command, out, limit, work / f"{job}-{plan.family}.log")


def _run(command: list[str], out: Path, limit: float, log_path: Path, env=None) -> dict:
    code = None  # None: stopped at the time limit
    with open(log_path, "w") as handle, contextlib.suppress(subprocess.TimeoutExpired):
        code = subprocess.run(
            command,
            stdout=handle,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            timeout=max(limit, 1),
            check=False,
        ).returncode
    # What the stage wrote, even when it was stopped or failed part-way.
    result = json.loads(out.read_text()) if out.exists() else {}
    if code is None:
        result["error"] = f"timed out after {limit:.0f} s (budget)"
    elif code != 0 or not result:
        result["error"] = f"failed (exit {code})"
    if "error" in result:
        result["log"] = _tail(log_path)
    return result


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_script(anchors: Path, plan: Plan, args, folder: Path, work: Path, limit: float) -> dict:
    """diffusers' official script for the family, on the same folder, photos and settings."""
    result = work / f"script-{plan.family}.json"
    result.unlink(missing_ok=True)
    command = [
        sys.executable, str(BENCH / "_anchor_run.py"), str(result),
        str(anchors / SCRIPTS[plan.family]),
        "--pretrained_model_name_or_path", str(folder),
        "--instance_data_dir", str(args.images_dir),
        "--instance_prompt", PROMPT,
        "--output_dir", str(work / f"script-{plan.family}"),
        "--resolution", str(plan.train_resolution),
        "--rank", str(plan.rank),
        "--train_batch_size", "1",
        "--max_train_steps", str(args.warmup + args.steps),
        "--learning_rate", "1e-4",
        "--lr_scheduler", "constant",
        "--lr_warmup_steps", "0",
        "--checkpointing_steps", "1000000",
        "--mixed_precision", "no" if args.smoke else "bf16",
        "--report_to", "all",
        "--seed", "0",
    ]  # fmt: skip
    if plan.family == "flux":
        # Its --cache_latents (SD's and SDXL's scripts have none: they encode at every step);
        # the T5 length Candor uses for this model (FLUX.1-dev: 512; the tiny model: 64).
        command += ["--cache_latents", "--max_sequence_length", "64" if args.smoke else "512"]
    if args.script_gc:
        command.append("--gradient_checkpointing")
    env = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    if args.smoke:
        # torchvision can't be imported with a CPU-only torch: Candor's transforms-only stand-in.
        env["CANDOR_TORCHVISION_STANDIN"] = str(STANDIN)
    measured = _run(command, result, limit, work / f"script-{plan.family}.log", env)
    if "error" in measured:
        return measured
    timed = measured["step_seconds"][max(args.warmup - 1, 0) :]
    if not timed:
        return {"error": "no timed steps", "log": _tail(work / f"script-{plan.family}.log")}
    return {
        "s_per_step": statistics.median(timed),
        "timed_steps": len(timed),
        "peak_gib": measured["peak_gib"],
        "peak": measured["peak"],
        "gradient_checkpointing": bool(args.script_gc),
    }


def run_family(plan: Plan, args, work: Path, budget: Budget, reserve: float) -> dict:
    """All stages of one family; `reserve` seconds stay for the later families."""
    record: dict = {"train_resolution": plan.train_resolution, "rank": plan.rank}
    folder = work / f"{plan.family}-real"
    if plan.model:
        from creator.engine import tiny

        folder = tiny.tiny_model_path(work / "models", plan.model)
    extra = ["--model-dir", str(folder), "--images-dir", str(args.images_dir)]

    def limit(*later: str) -> float:
        """Time for a stage: what is left, less the later families' essential stages and half
        the estimates of this family's `later` stages (a stage past it is stopped)."""
        return budget.left() - reserve - sum(plan.est[stage] for stage in later) / 2

    if limit("script", "generate") < plan.est["train"] / 3:
        record["train"] = {"error": SKIPPED}
    else:
        log(f"{plan.family}: Candor's trainer ({args.steps} timed steps)")
        record["train"] = run_stage("train", plan, args, work, limit("script", "generate"), extra)
    train = record["train"]
    if "build" in train:
        record["build"] = train.pop("build")
    if not args.anchors:
        record["script"] = {"error": "no anchors folder given"}
    elif not (folder / "model_index.json").exists():
        record["script"] = {"error": "no model folder (the train stage failed)"}
    elif limit("generate") < plan.est["script"] / 3:
        record["script"] = {"error": SKIPPED}
    else:
        log(f"{plan.family}: diffusers' {SCRIPTS[plan.family]}")
        record["script"] = run_script(args.anchors, plan, args, folder, work, limit("generate"))
    if limit() < plan.est["generate"] / 3 or not (folder / "model_index.json").exists():
        record["generate"] = {"error": SKIPPED}
    else:
        log(f"{plan.family}: generation at {plan.resolution} px, {plan.gen_steps} steps")
        soft = budget.deadline - reserve - 10
        compile_est = SMOKE_COMPILE_EST if args.smoke else COMPILE_EST[plan.family]
        more = [
            "--soft-deadline", str(soft), "--compile-est", str(compile_est),
            "--lora", train.get("lora", ""),
        ]  # fmt: skip
        record["generate"] = run_stage("generate", plan, args, work, limit(), extra + more)
    if not plan.model and not args.keep_models:
        shutil.rmtree(folder, ignore_errors=True)  # FLUX's folder is ~34 GB: one at a time
    return record


def summarise(record: dict, flops_peak: float | None) -> None:
    """Ratios, MFU and targets, added to the family's record."""
    train, script = record.get("train", {}), record.get("script", {})
    candor = train.get("candor")
    flops = train.get("flops_per_step")
    for figures in (candor, script):
        if isinstance(figures, dict) and "s_per_step" in figures:
            figures["steps_per_s"] = 1 / figures["s_per_step"]
            if flops and flops_peak:
                figures["mfu"] = flops / figures["s_per_step"] / flops_peak
            else:
                figures["mfu"] = None
    if candor and "s_per_step" in script:
        speedup = script["s_per_step"] / candor["s_per_step"]
        record["train_speedup"] = speedup
        record["train_target_met"] = speedup >= 1.5
    generate = record.get("generate", {})
    bare = generate.get("bare_compiled")
    best = generate.get("candor_compiled_lora")
    if isinstance(bare, dict) and "candor" in generate:
        record["warm_vs_bare_compiled"] = generate["candor"]["warm_s"] / bare["warm_s"]
        if isinstance(best, dict):
            record["compiled_warm_vs_bare_compiled"] = best["warm_s"] / bare["warm_s"]
            record["generation_target_met"] = record["compiled_warm_vs_bare_compiled"] <= 1.10


def _num(value, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, int | float) else "—"


def _why(value) -> str:
    if value is None:
        return "not reached (see Skipped)"
    if isinstance(value, dict):
        return str(value.get("error", "—")).splitlines()[0][:40]
    return str(value)[:40]


def render(results: dict, meta: dict) -> str:
    train_rows, gen_rows = [], []
    for family, record in results.items():
        train = record.get("train", {})
        for figures, label in (
            (train.get("candor", train), "Candor"),
            (record.get("script", {}), "diffusers script"),
        ):
            if "s_per_step" not in figures:
                train_rows.append({"family": family, "trainer": label, "s/step": _why(figures)})
                continue
            train_rows.append(
                {
                    "family": family,
                    "px": record["train_resolution"],
                    "rank": record["rank"],
                    "trainer": label + GC[figures["gradient_checkpointing"]],
                    "s/step": _num(figures["s_per_step"], ".4f"),
                    "steps/s": _num(figures["steps_per_s"], ".2f"),
                    "peak GiB": _num(figures["peak_gib"], ".2f"),
                    "MFU": _num(figures["mfu"], ".1%"),
                }
            )
        if "train_speedup" in record:
            met = "met" if record["train_target_met"] else "NOT met"
            train_rows.append(
                {
                    "family": family,
                    "trainer": "Candor / script steps/s",
                    "s/step": f"{record['train_speedup']:.2f}x (target >= 1.5x: {met})",
                }
            )
        generate = record.get("generate", {})
        if "candor" not in generate:
            gen_rows.append({"family": family, "path": "—", "warm s/image": _why(generate)})
            continue
        size = f"{generate['resolution']} px / {generate['steps']} steps"
        for key, label in (
            ("candor", "Candor PipelineCache"),
            ("bare", "bare diffusers"),
            ("bare_compiled", "bare diffusers, torch.compile"),
            ("candor_compiled_lora", "Candor compile=True + LoRA"),
        ):
            value = generate.get(key)
            row = {"family": family, "size": size, "path": label}
            if isinstance(value, dict):
                row["cold/first s"] = _num(value.get("cold_s", value.get("first_s")), ".2f")
                row["warm s/image"] = _num(value["warm_s"], ".3f")
            else:
                row["warm s/image"] = _why(value)
            gen_rows.append(row)
        if "compiled_warm_vs_bare_compiled" in record:
            met = "met" if record["generation_target_met"] else "NOT met"
            gen_rows.append(
                {
                    "family": family,
                    "path": "Candor compiled / bare compiled",
                    "warm s/image": f"{record['compiled_warm_vs_bare_compiled']:.3f} "
                    f"(target <= 1.10: {met})",
                }
            )
    peak = meta["bf16_peak_tflops"]
    head = (
        f"{'SMOKE (tiny built-in models) ' if meta['smoke'] else ''}on {meta['device']} "
        f"(bf16 peak {peak if peak else 'unknown'} TFLOPS); {meta['steps']} timed steps after "
        f"{meta['warmup']} warm-up, batch 1; {meta['elapsed_s']:.0f} s of {meta['budget_s']:.0f}"
    )
    train_cols = ["family", "px", "rank", "trainer", "s/step", "steps/s", "peak GiB", "MFU"]
    gen_cols = ["family", "size", "path", "cold/first s", "warm s/image"]
    parts = [head, "", "LoRA training", table(train_rows, train_cols), "", "Generation"]
    parts.append(table(gen_rows, gen_cols))
    if meta["skipped"]:
        parts += ["", "Skipped or failed: " + "; ".join(meta["skipped"])]
    return "\n".join(parts)


def _round(value):
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items() if k != "log"}
    return value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--anchors", type=Path, help="folder of diffusers' official scripts")
    parser.add_argument("--families", nargs="+", choices=list(GPU_PLANS), default=list(GPU_PLANS))
    parser.add_argument("--steps", type=int, help="timed training steps (GPU 20, smoke 2)")
    parser.add_argument("--warmup", type=int, help="untimed first steps (GPU 3, smoke 1)")
    parser.add_argument("--warm-calls", type=int, default=2, help="warm generations, median")
    parser.add_argument("--budget", type=float, default=570, help="seconds for the whole run")
    choice = {"choices": ["auto", "on", "off"], "default": "auto"}
    parser.add_argument("--compile", **choice, help="compiled generation rows (auto: on CUDA)")
    parser.add_argument("--candor-gc", **choice, help="Candor's gradient checkpointing (auto: "
                        "its default, on with CUDA)")  # fmt: skip
    parser.add_argument("--script-gc", action="store_true", help="pass --gradient_checkpointing "
                        "to the scripts (default: theirs, off)")  # fmt: skip
    parser.add_argument("--train-compile", action="store_true", help="TrainConfig(compile=True)")
    parser.add_argument("--smoke", action="store_true", help="tiny built-in models, CPU is fine")
    parser.add_argument("--keep-models", action="store_true")
    parser.add_argument("--work", type=Path, help="work folder (default: a temporary one)")
    parser.add_argument("--json", action="store_true")
    # Child stages (internal).
    parser.add_argument("--job", choices=["train", "generate"], help=argparse.SUPPRESS)
    parser.add_argument("--family", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--images-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--soft-deadline", type=float, default=float("inf"), help=argparse.SUPPRESS)
    parser.add_argument("--compile-est", type=float, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--lora", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.steps = args.steps or (2 if args.smoke else 20)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.smoke else 3)
    plans = SMOKE_PLANS if args.smoke else GPU_PLANS

    if args.job:
        args.compile = args.compile == "on"
        runner = job_train if args.job == "train" else job_generate
        runner(args, plans[args.family])  # writes args.out as it goes
        return

    import torch

    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("bench/gpu.py needs a CUDA GPU (or --smoke for the tiny models).")
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    peak = peak_tflops(device) if torch.cuda.is_available() else None
    args.compile = args.compile == "on" or (args.compile == "auto" and not args.smoke)
    if args.anchors:
        args.anchors = args.anchors.resolve()
        missing = [s for s in SCRIPTS.values() if not (args.anchors / s).is_file()]
        if missing:
            raise SystemExit(f"{args.anchors} lacks {', '.join(missing)}.")
    budget = Budget(args.budget)
    results: dict = {}
    if args.work is None and not args.smoke:
        args.work = ROOT / "var"  # on the disk (git-ignored): FLUX's folder is ~34 GB
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="candor-gpu-", dir=args.work) as tmp:
        work = Path(tmp)
        args.images_dir = work / "images"
        training_images(args.images_dir, 6)
        chosen = [plans[f] for f in args.families]
        for index, plan in enumerate(chosen):
            reserve = sum(p.essential() for p in chosen[index + 1 :])
            results[plan.family] = run_family(plan, args, work, budget, reserve)
            summarise(results[plan.family], peak * 1e12 if peak else None)
    skipped = []
    for family, record in results.items():
        for stage in ("train", "script", "generate"):
            value = record.get(stage, {})
            if isinstance(value, dict) and "error" in value:
                skipped.append(f"{family} {stage}: {value['error']}")
                if value.get("log"):
                    log(f"{family} {stage} log tail:\n{value['log']}")
            for key, inner in value.items() if isinstance(value, dict) else ():
                if isinstance(inner, str) and inner.startswith(("skipped", "no LoRA")):
                    skipped.append(f"{family} {stage} {key}: {inner}")
    meta = {
        "device": device,
        "bf16_peak_tflops": peak,
        "smoke": args.smoke,
        "steps": args.steps,
        "warmup": args.warmup,
        "budget_s": args.budget,
        "elapsed_s": time.time() - budget.started,
        "skipped": skipped,
        "anchors": str(args.anchors) if args.anchors else None,
        "candor_gradient_checkpointing": args.candor_gc,
        "script_gradient_checkpointing": bool(args.script_gc),
        "compile": args.compile,
    }
    emit(render(results, meta), _round({**meta, "families": results}), args.json)


if __name__ == "__main__":
    main()
