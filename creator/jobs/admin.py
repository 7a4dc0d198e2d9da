from django.contrib import admin

from creator.jobs.models import Task


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ("label", "owner", "kind", "status", "percent", "created_at")
    list_filter = ("status", "kind", "queue")
    search_fields = ("label", "owner__handle", "rq_job_id")
    readonly_fields = [f.name for f in Task._meta.fields]
