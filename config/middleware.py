"""Checks of the site's configuration against the requests that really arrive."""

import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http.request import split_domain_port

logger = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": "80", "https": "443"}

# Once per process: the warning is for the operator's log, not a line per request.
_warned = False


def _host_and_port(netloc: str, scheme: str) -> tuple[str, str]:
    domain, port = split_domain_port(netloc.lower())
    return domain, port or DEFAULT_PORTS.get(scheme, "")


class SiteUrlHostMiddleware:
    """Warn once when a request arrives under a host that SITE_URL does not name: absolute links
    (emails, share previews, signed credentials) would then send people somewhere else."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not _warned:
            self._check(request)
        return self.get_response(request)

    def _check(self, request) -> None:
        global _warned
        try:
            # get_host() honours USE_X_FORWARDED_HOST, as the rest of Django does.
            seen = request.get_host()
        except DisallowedHost:
            return  # CommonMiddleware answers 400; not a SITE_URL matter
        site = urlsplit(settings.SITE_URL)
        if _host_and_port(seen, site.scheme) == _host_and_port(site.netloc, site.scheme):
            return
        _warned = True
        logger.warning(
            "Requests arrive for host %s but SITE_URL is %s, so links in emails, share pages "
            "and signed credentials point at %s. Set SITE_URL to the address people use "
            "(e.g. SITE_URL=%s://%s).",
            seen,
            settings.SITE_URL,
            site.netloc,
            request.scheme,
            seen,
        )
