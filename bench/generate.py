"""Generation through the real queue and worker vs a bare pipeline call.

Sets up a throwaway Candor (SQLite and a private Redis in a temp folder), trains three tiny LoRAs,
starts one real worker, queues 10 generation jobs across the three LoRAs, and compares each job's
time in the worker with a bare `pipe(...)` call with the same settings in this process.
Judged by: base-model loads in the worker (target 1) and the median per-job overhead
(target <= 10% + 0.2 s).

    python bench/generate.py [--jobs 10] [--steps 25] [--json]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, emit, median, table, training_images


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--loras", type=int, default=3)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="candor-bench-"))
    from config import processes

    redis_proc = processes.start_redis(work / "redis.sock")
    env = {
        "CANDOR_VAR_DIR": str(work),
        "REDIS_URL": f"unix://{work / 'redis.sock'}?db=0",
        "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "PYTHONPATH": str(ROOT),
        "GENERATION_STEPS": str(args.steps),
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.files.base import File
    from django.core.files.storage import default_storage
    from django.core.management import call_command

    from creator.accounts.models import User
    from creator.engine.generate import GenerationRequest, LoraRef
    from creator.engine.options import full_prompt
    from creator.engine.train import TrainConfig, train_lora
    from creator.jobs.models import Task
    from creator.likeness.models import Consent, Subject
    from creator.studio import pipelines
    from creator.studio.models import PersonalModel
    from creator.studio.services import generation_start

    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench", "bench@example.com", "bench bench bench 1")
    subject = Subject.objects.create(owner=user, name="Bench")
    consent = Consent.objects.create(subject=subject, method="selfie", status="granted")
    images = training_images(work / "images", 6)
    models = []
    for n in range(args.loras):
        result = train_lora(
            TrainConfig(resolution=64, steps=4, checkpoint_every=4, sample_steps=2, seed=n),
            pipe=pipelines.load_base_pipeline(),
            base_id="builtin:tiny",
            images=images,
            out_dir=work / f"lora{n}",
        )
        with open(result.lora_path, "rb") as handle:
            name = default_storage.save(f"models/bench/lora{n}.safetensors", File(handle))
        models.append(
            PersonalModel.objects.create(
                subject=subject,
                consent=consent,
                name=f"lora {n}",
                base_model="builtin:tiny",
                lora=name,
                lora_sha256=result.sha256,
            )
        )

    worker = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "rqworker", "generation"],
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        generations = [
            generation_start(
                model=models[i % len(models)],
                user=user,
                prompt="portrait",
                seed=100 + i,
                steps=args.steps,
            )
            for i in range(args.jobs)
        ]
        deadline = time.monotonic() + 600
        while Task.objects.filter(kind="generation", status__in=Task.ACTIVE).exists():
            if time.monotonic() > deadline:
                raise SystemExit("generation jobs did not finish in 10 minutes")
            time.sleep(0.2)
        tasks = [Task.objects.get(pk=g.task_id) for g in generations]
        failed = [t for t in tasks if t.status != Task.Status.SUCCEEDED]
        if failed:
            raise SystemExit(f"{len(failed)} job(s) failed: {failed[0].error}")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        processes.stop(redis_proc)

    job_seconds = [(t.finished_at - t.started_at).total_seconds() for t in tasks]
    base_loads = max(t.details.get("base_loads", 0) for t in tasks)
    adapter_loads = max(t.details.get("adapter_loads", 0) for t in tasks)

    # The same work as bare pipeline calls, warm, in this process.
    pipe = pipelines.load_base_pipeline()
    import torch

    for model in models:
        pipe.load_lora_weights(
            str(pipelines.local_path(model.lora.name)), adapter_name=model.lora_sha256
        )
    bare_seconds = []
    for generation in generations:
        model = generation.model
        prompt, _ = full_prompt(generation.prompt, generation.style, with_subject=True)
        pipe.set_adapters([model.lora_sha256])
        request = GenerationRequest(
            prompt=prompt,
            seed=generation.seed,
            steps=args.steps,
            width=64,
            height=64,
            lora=LoraRef(model.lora_sha256, ""),
        )
        tick = time.perf_counter()
        pipe(
            prompt=[request.prompt],
            num_inference_steps=request.steps,
            guidance_scale=request.guidance,
            width=64,
            height=64,
            generator=[torch.Generator().manual_seed(request.seed)],
        )
        bare_seconds.append(time.perf_counter() - tick)

    marking = [t.details.get("marking_seconds", 0.0) for t in tasks]
    overheads = [job - bare for job, bare in zip(job_seconds, bare_seconds, strict=True)]
    queue_overheads = [o - m for o, m in zip(overheads, marking, strict=True)]
    med_job, med_bare = median(job_seconds), median(bare_seconds)
    allowed = 0.10 * med_bare + 0.2
    rows = [
        {"what": "jobs (10 across 3 LoRAs)", "value": f"{len(tasks)} succeeded"},
        {"what": "base-model loads in the worker", "value": f"{base_loads} (target 1)"},
        {"what": "LoRA loads in the worker", "value": f"{adapter_loads}"},
        {"what": "first job (cold: loads the base model)", "value": f"{job_seconds[0]:.3f} s"},
        {"what": "median job time in the worker", "value": f"{med_job:.3f} s"},
        {"what": "median bare pipeline call", "value": f"{med_bare:.3f} s"},
        {
            "what": "median overhead per job: queue and worker",
            "value": f"{median(queue_overheads):.3f} s (allowed {allowed:.3f} s = 10% + 0.2 s)",
        },
        {"what": "median signing of 4 files per image", "value": f"{median(marking):.3f} s"},
        {"what": "median overhead, signing included", "value": f"{median(overheads):.3f} s"},
    ]
    figures = {
        "jobs": len(tasks),
        "loras": len(models),
        "steps": args.steps,
        "base_loads": base_loads,
        "adapter_loads": adapter_loads,
        "first_job_s": round(job_seconds[0], 4),
        "median_job_s": round(med_job, 4),
        "median_bare_s": round(med_bare, 4),
        "median_overhead_s": round(median(queue_overheads), 4),
        "median_marking_s": round(median(marking), 4),
        "median_overhead_with_marking_s": round(median(overheads), 4),
        "allowed_overhead_s": round(allowed, 4),
        "overhead_ratio": round(med_job / med_bare, 3),
    }
    emit(
        f"tiny SD model, 64 px, {args.steps} steps per image\n" + table(rows, ["what", "value"]),
        figures,
        args.json,
    )


if __name__ == "__main__":
    main()
