"""API latency: list and show with 1,000 posts, and enqueueing a generation, against the pages.

Everything in-process through Django's test client (no network), on a fresh SQLite database and a
private Redis, so the figures are the API's own cost. Each API figure is set against the page that
does the same for a logged-in creator (the gallery page; the generate form's POST), measured in
the same run. Query counts show that a page of 20 and a page of 100 posts cost the same queries.

    python bench/api.py [--posts 1000] [--repeat 40] [--json]
Target: median POST /api/v1/generations enqueue <= 50 ms.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _common import ROOT, emit, median, table


def timed(call, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = call()
        samples.append(time.perf_counter() - started)
        assert response.status_code < 400, (response.status_code, response.content[:300])
    return median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="candor-bench-api-"))
    from config import processes

    redis_proc = processes.start_redis(work / "redis.sock")
    os.environ.update(
        {
            "CANDOR_VAR_DIR": str(work),
            "REDIS_URL": f"unix://{work / 'redis.sock'}?db=0",
            "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONPATH": str(ROOT),
            "API_RATE_LIMIT": "1000000",
            "ALLOWED_HOSTS": "testserver",
            "SITE_URL": "http://testserver",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from creator.accounts.models import User
    from creator.accounts.tokens import SCOPES, token_create
    from creator.likeness.models import Consent, Subject
    from creator.studio.models import PersonalModel
    from gallery.models import Credential, Post

    try:
        call_command("migrate", verbosity=0)
        user = User.objects.create_user("bench", "bench@example.com", "bench bench bench 1")
        subject = Subject.objects.create(owner=user, name="Bench")
        consent = Consent.objects.create(subject=subject, method="selfie", status="granted")
        # The enqueue path stops at the queue: no weights are read, so a name stands in for them.
        model = PersonalModel.objects.create(
            subject=subject, consent=consent, name="m", base_model="builtin:tiny",
            lora="models/bench.safetensors", lora_sha256="0" * 64,
        )  # fmt: skip
        posts = Post.objects.bulk_create(
            Post(owner=user, image=f"posts/{n}.png", width=64, height=64, sha256="0" * 64,
                 prompt="p", seed=n, generation_settings={}, model_name="m", base_model="b")
            for n in range(args.posts)
        )  # fmt: skip
        Credential.objects.bulk_create(
            Credential(post=p, variant="original", mime="image/png", manifest={}) for p in posts
        )
        raw = token_create(user=user, name="bench", scopes=list(SCOPES))[1]
        api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
        browser = Client()
        browser.force_login(user)
        post_id = posts[len(posts) // 2].pk
        body = {"model_id": model.pk, "prompt": "@me on a hill", "seed": 1}

        def enqueue_api():
            return api.post("/api/v1/generations", body, content_type="application/json")

        def enqueue_page():
            response = browser.post(
                reverse("generation_start", args=[model.pk]), {"prompt": "@me on a hill"}
            )
            return response

        api.get("/api/v1/posts")  # the token's last-used time is written once, here
        queries = {}
        for limit in (20, 100):
            with CaptureQueriesContext(connection) as captured:
                api.get(f"/api/v1/posts?limit={limit}")
            queries[limit] = len(captured)
        measured = [
            ("GET /posts?limit=20", lambda: api.get("/api/v1/posts"),
             "gallery page", lambda: browser.get(reverse("gallery"))),
            ("GET /posts/{id}", lambda: api.get(f"/api/v1/posts/{post_id}"),
             "post page", lambda: browser.get(reverse("post_detail", args=[post_id]))),
            ("POST /generations (enqueue)", enqueue_api, "generate form POST", enqueue_page),
        ]  # fmt: skip
        rows = [
            {"what": what, "ms": timed(ours, args.repeat), "baseline": name,
             "baseline ms": timed(theirs, args.repeat)}
            for what, ours, name, theirs in measured
        ]  # fmt: skip
        for row in rows:
            row["ratio"] = round(row["ms"] / row["baseline ms"], 2)
            row["ms"], row["baseline ms"] = round(row["ms"], 1), round(row["baseline ms"], 1)
    finally:
        processes.stop(redis_proc)

    enqueue = rows[2]["ms"]
    text = table(rows, ["what", "ms", "baseline", "baseline ms", "ratio"])
    text += (
        f"\n\nmedian of {args.repeat} each, {args.posts} posts; queries for a page of 20 posts: "
        f"{queries[20]}, of 100: {queries[100]} (constant: {queries[20] == queries[100]})"
        f"\nenqueue median {enqueue} ms (target <= 50 ms): {'met' if enqueue <= 50 else 'MISSED'}"
    )
    figures = {
        "posts": args.posts,
        "list_ms": rows[0]["ms"],
        "list_page_ms": rows[0]["baseline ms"],
        "show_ms": rows[1]["ms"],
        "show_page_ms": rows[1]["baseline ms"],
        "enqueue_ms": enqueue,
        "enqueue_page_ms": rows[2]["baseline ms"],
        "queries_20": queries[20],
        "queries_100": queries[100],
        "enqueue_target_met": enqueue <= 50,
    }
    emit(text, figures, args.json)


if __name__ == "__main__":
    main()
