"""The console's login records (django-axes), with their clean-up action declaring the
permission it needs: it deletes attempts, so only who may delete them is offered it."""

from axes.admin import AccessAttemptAdmin  # registers the library's pages first
from axes.models import AccessAttempt
from django.contrib import admin
from django.utils.translation import gettext_lazy as _


class LoginAttemptAdmin(AccessAttemptAdmin):
    @admin.action(description=_("Clean up expired attempts"), permissions=["delete"])
    def cleanup_expired_attempts(self, request, queryset):
        super().cleanup_expired_attempts(request, queryset)


if admin.site.is_registered(AccessAttempt):
    admin.site.unregister(AccessAttempt)
    admin.site.register(AccessAttempt, LoginAttemptAdmin)
