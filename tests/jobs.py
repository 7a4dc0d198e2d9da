"""Real job functions for exercising the job runtime in a real worker process."""

import time

from creator.jobs.runtime import JobError, tracked


@tracked
def count_slowly(task, progress, *, steps: int = 10, delay: float = 0.1):
    for step in range(1, steps + 1):
        time.sleep(delay)
        progress.update(step, steps, message=f"Counted to {step}")
    return steps


@tracked
def crash(task, progress):
    raise RuntimeError("database password is hunter2")


@tracked
def refuse(task, progress):
    raise JobError("Your photos are too dark to use.")
