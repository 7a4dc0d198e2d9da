from django.core.management.base import BaseCommand, CommandError

from creator.jobs import runtime
from creator.jobs.services import tasks_reconcile


class Command(BaseCommand):
    help = "Fail job rows whose worker died or whose RQ job failed or vanished (safe to cron)."

    def handle(self, *args, **options):
        try:
            changed = tasks_reconcile()
        except runtime.QueueUnavailable as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Reconciled {changed} job(s).")
