from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from gallery import signing
from gallery.provenance import keys


class Command(BaseCommand):
    help = "Show, export or rotate this instance's Content Credentials signing identity."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("show", help="print the signer, issuer, expiry and fingerprint")
        export = sub.add_parser(
            "export", help="write the public trust anchor and chain to a folder"
        )
        export.add_argument("folder")
        sub.add_parser("rotate", help="make a new instance CA and signing certificate")

    def handle(self, *args, action: str, **options):
        if action == "rotate":
            if settings.C2PA_CERT_CHAIN_FILE:
                raise CommandError("An operator certificate is configured; rotate it at its CA.")
            keys.identity_create(settings.C2PA_KEYS_DIR, instance_name=settings.SITE_NAME)
            signing.reset()
            self.stdout.write(
                "New signing identity made. The old root is kept: images signed before stay "
                "Trusted here, and the published trust anchor now lists both roots."
            )
        identity = signing.identity()
        if action == "export":
            folder = Path(options["folder"])
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "trust-anchor.pem").write_bytes(signing.instance_roots_pem())
            (folder / "signing-chain.pem").write_bytes(identity.chain_pem)
            self.stdout.write(f"Wrote trust-anchor.pem and signing-chain.pem to {folder}")
            return
        self.stdout.write(
            f"source:      {identity.source}\n"
            f"signer:      {identity.subject}\n"
            f"issuer:      {identity.issuer}\n"
            f"valid until: {identity.not_after:%Y-%m-%d}\n"
            f"sha256:      {identity.fingerprint}\n"
            f"timestamps:  {settings.C2PA_TSA_URL or 'none (set C2PA_TSA_URL)'}"
        )
