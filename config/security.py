"""Response headers and debug pages that keep secrets and scripts where they belong."""

import re

from django.conf import settings
from django.views.debug import SafeExceptionReporterFilter


class ContentSecurityPolicyMiddleware:
    """Send settings.CONTENT_SECURITY_POLICY with every response that has none yet."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


class SecretsHiddenFilter(SafeExceptionReporterFilter):
    """Django hides settings named like KEY or PASS; a URL can carry a password too
    (DATABASE_URL, REDIS_URL, the queues' URL), so those are hidden as well."""

    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|DSN|LOCATION", flags=re.IGNORECASE
    )
