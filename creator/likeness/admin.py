"""The operator's view of the block list: a wrong entry (say, a decline by someone the request
wasn't meant for) is removed here. Signatures are numbers only; nothing else is shown."""

from django.contrib import admin

from creator.likeness.models import FaceBlock


@admin.register(FaceBlock)
class FaceBlockAdmin(admin.ModelAdmin):
    list_display = ("__str__", "created_at")
    readonly_fields = ("signature", "created_at")

    def has_add_permission(self, request) -> bool:
        return False  # entries come only from the person shown
