"""Run one of diffusers' official DreamBooth-LoRA scripts and time its training steps.

    python bench/_anchor_run.py RESULT.json SCRIPT.py [the script's arguments...]

The script runs unchanged, in this process (`runpy`, as `__main__`), from wherever it lives; this
wrapper only watches it:

- Steps: the script calls `progress_bar.update(1)` (a tqdm bar named "Steps") once per optimizer
  step, after `optimizer.step()`; the wrapper records the time of each call (after a CUDA
  synchronize). The gap between two calls is one whole step: data loading, VAE and text encoding
  where the script does them per step, forward, backward, clipping, optimizer. The script's own
  `loss.item()` for its log synchronizes at every step too.
- Memory: `torch.cuda.max_memory_allocated()` at the last step (on a CPU: the process's peak RSS),
  i.e. the peak of the whole run up to then, loading and caching included — measured the same way
  as for Candor's trainer.
- Trackers: `--report_to all` with accelerate's tracker discovery emptied, so nothing is logged.
- CPU smoke runs: with CANDOR_TORCHVISION_STANDIN set to a folder (bench/_torchvision_standin),
  transformers and diffusers are imported first, so that they record torchvision as missing, and
  only then is the folder put on `sys.path` for the script's own `from torchvision import
  transforms`.
- End: once the last step is recorded, RESULT.json is written and the process exits at once
  (`os._exit(0)`): the script's final LoRA save and its reload of the whole pipeline for a final
  validation are not part of the measurement, and skipping them saves minutes at FLUX size.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import runpy
import sys
import time


def main() -> None:
    result_path, script, *script_args = sys.argv[1:]
    total = _arg(script_args, "--max_train_steps")
    import accelerate.tracking
    import torch
    from tqdm.auto import tqdm

    standin = os.environ.get("CANDOR_TORCHVISION_STANDIN")
    if standin:
        import diffusers  # noqa: F401 - records, now, that torchvision is missing
        from transformers.utils import import_utils

        import_utils.is_torchvision_available()  # cached: False from here on
        sys.path.insert(0, standin)

    accelerate.tracking.get_available_trackers = lambda: []  # "--report_to all": none installed
    cuda = torch.cuda.is_available()
    times: list[float] = []
    original = tqdm.update

    def update(self, n=1):
        if getattr(self, "desc", "").startswith("Steps"):
            if cuda:
                torch.cuda.synchronize()
            times.extend([time.perf_counter()] * int(n or 0))
            if total and len(times) >= total:
                _finish(result_path, times, cuda)
        return original(self, n)

    tqdm.update = update
    sys.argv = [script, *script_args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
    _finish(result_path, times, cuda, exit_now=False)


def _arg(args: list[str], name: str) -> int | None:
    if name in args:
        return int(args[args.index(name) + 1])
    return None


def _finish(path: str, times: list[float], cuda: bool, *, exit_now: bool = True) -> None:
    import torch

    if cuda:
        peak, kind = torch.cuda.max_memory_allocated() / 2**30, "cuda_max_allocated"
    else:
        peak, kind = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, "cpu_peak_rss"
    gaps = [b - a for a, b in itertools.pairwise(times)]
    with open(path, "w") as handle:
        figures = {"step_seconds": gaps, "steps": len(times), "peak_gib": peak, "peak": kind}
        json.dump(figures, handle)
    if exit_now:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
