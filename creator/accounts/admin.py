from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from creator.accounts.models import User


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("handle",)
    list_display = ("handle", "email", "display_name", "is_staff", "date_joined")
    search_fields = ("handle", "email", "display_name")
    fieldsets = (
        (None, {"fields": ("handle", "email", "password")}),
        ("Profile", {"fields": ("display_name",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("handle", "email", "password1", "password2")}),
    )
