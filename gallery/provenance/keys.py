"""The instance's signing identity: a root CA and an ES256 signing certificate it issues.

No Django imports. On first use `identity_load_or_create(folder)` writes a root CA and a leaf under
`folder` (keys mode 0600). The profile is one c2pa validates as Trusted when the root is a trust
anchor: root CA:TRUE (critical) with keyCertSign+cRLSign and SKI; leaf CA:FALSE, digitalSignature
(critical), EKU emailProtection, SKI + AKI, P-256. Without a timestamp authority a signature turns
invalid when the leaf expires, so the leaf lives long (set C2PA_TSA_URL to timestamp signatures).
An operator can bring a chain and key from a CA on the C2PA trust list instead.

Rotating makes a new root and leaf; the old root is kept under `roots/` (its keys are not), so
images signed before stay Trusted here and the published trust anchor lists every root.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT_YEARS = 30
LEAF_YEARS = 25
RETIRED_ROOTS = "roots"


@dataclass(frozen=True)
class Identity:
    chain_pem: bytes  # leaf first, then intermediates; the root is not included
    key_pem: bytes
    root_pem: bytes  # the trust anchor verifiers need (empty for an operator chain)
    source: str  # "instance" or "operator"

    @property
    def leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificates(self.chain_pem)[0]

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.leaf.public_bytes(serialization.Encoding.DER)).hexdigest()

    @property
    def subject(self) -> str:
        """The signer as people read it: its common name (and organisation)."""
        name = self.leaf.subject
        common = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        organisation = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        if not common:
            return name.rfc4514_string()
        text = str(common[0].value)
        if organisation and str(organisation[0].value) not in text:
            text += f" ({organisation[0].value})"
        return text

    @property
    def issuer(self) -> str:
        return self.leaf.issuer.rfc4514_string()

    @property
    def not_after(self) -> dt.datetime:
        return self.leaf.not_valid_after_utc


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )


def _write_private(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write atomically: a reader sees the old file or the whole new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _retire_root(folder: Path) -> None:
    """Keep the current root (public part only) among the retired ones before it is replaced."""
    current = folder / "root.pem"
    if current.exists():
        pem = current.read_bytes()
        name = hashlib.sha256(pem).hexdigest()[:16] + ".pem"
        _write_private(folder / RETIRED_ROOTS / name, pem, 0o644)


def roots_pem(folder: Path) -> bytes:
    """Every root this instance has signed under: the current one first, then retired ones."""
    folder = Path(folder)
    paths = [folder / "root.pem", *sorted((folder / RETIRED_ROOTS).glob("*.pem"))]
    seen: list[bytes] = []
    for path in paths:
        if path.exists():
            pem = path.read_bytes().strip() + b"\n"
            if pem not in seen:
                seen.append(pem)
    return b"".join(seen)


def identity_create(
    folder: Path,
    *,
    instance_name: str,
    leaf_lifetime: dt.timedelta = dt.timedelta(days=365 * LEAF_YEARS),
) -> Identity:
    """Make a new root CA and signing certificate under `folder`. A root already there is
    retired, not lost (see `roots_pem`)."""
    folder = Path(folder)
    _retire_root(folder)
    issued = dt.datetime.now(dt.UTC)
    now = issued - dt.timedelta(minutes=5)  # some slack for clocks behind ours
    organisation = f"{instance_name} (Candor instance)"
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(f"{instance_name} Content Credentials Root", organisation)
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=365 * ROOT_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(root_ski, critical=False)
        .sign(root_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{instance_name} Content Credentials", organisation))
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(issued + leaf_lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski), critical=False
        )
        .sign(root_key, hashes.SHA256())
    )
    _write_private(folder / "root.key", _pem_key(root_key))
    _write_private(folder / "signer.key", _pem_key(leaf_key))
    _write_private(folder / "root.pem", root.public_bytes(serialization.Encoding.PEM), 0o644)
    # Written last: its presence means the whole identity is there.
    _write_private(folder / "signer.pem", leaf.public_bytes(serialization.Encoding.PEM), 0o644)
    return identity_load(folder)


def identity_load(folder: Path) -> Identity:
    folder = Path(folder)
    return Identity(
        chain_pem=(folder / "signer.pem").read_bytes(),
        key_pem=(folder / "signer.key").read_bytes(),
        root_pem=(folder / "root.pem").read_bytes(),
        source="instance",
    )


def identity_load_or_create(folder: Path, *, instance_name: str) -> Identity:
    """Load the identity, making it first if there is none. Web and worker processes may both
    get here on a fresh install: a lock makes sure only one identity is ever made."""
    import fcntl

    folder = Path(folder)
    if (folder / "signer.pem").exists():
        return identity_load(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / "signer.pem").exists():
            return identity_load(folder)
        return identity_create(folder, instance_name=instance_name)


def operator_identity(chain_pem: bytes, key_pem: bytes, anchors_pem: bytes = b"") -> Identity:
    """An operator's own chain (leaf first) and key, e.g. from a CA on the C2PA trust list."""
    certificates = x509.load_pem_x509_certificates(chain_pem)
    if not certificates:
        raise ValueError("The certificate chain holds no certificate.")
    key = serialization.load_pem_private_key(key_pem, password=None)
    if key.public_key().public_numbers() != certificates[0].public_key().public_numbers():
        raise ValueError("The private key does not belong to the first certificate of the chain.")
    return Identity(chain_pem=chain_pem, key_pem=key_pem, root_pem=anchors_pem, source="operator")


def watermark_secret(folder: Path) -> bytes:
    """The instance's watermark secret: made once under `folder` (0600) and never rotated with
    the signing identity, so images marked before a rotation are still recognised after it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "watermark.secret"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(secrets.token_bytes(32))
    return path.read_bytes()
