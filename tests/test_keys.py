"""The signing identity's life: rotation keeps earlier roots trusted, an expired leaf says so,
and a timestamp from a time-stamp authority (C2PA_TSA_URL) keeps a signature valid past it."""

import datetime as dt
import hashlib
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.core.management import call_command
from django.urls import reverse

from gallery import signing
from gallery.provenance import c2pa, keys
from gallery.provenance.manifest import ImageFacts, manifest_definition
from gallery.services import post_create
from tests import images

FACTS = ImageFacts(
    title="image.jpg", mime="image/jpeg", author_handle="alice",
    author_url="http://127.0.0.1:8000/@alice", instance_name="Test Candor",
    software_version="0.1.0", base_model="builtin:tiny", model_name="m",
)  # fmt: skip


def sign_with(identity: keys.Identity) -> bytes:
    jpeg = images.encode(images.astronaut_variant(0))
    return c2pa.Signer(identity).sign(jpeg, "image/jpeg", manifest_definition(FACTS))


def roots_in(pem: bytes) -> set[bytes]:
    return {c.fingerprint(c.signature_hash_algorithm) for c in x509.load_pem_x509_certificates(pem)}


@pytest.fixture
def instance_keys(settings, tmp_path, private_media):
    settings.C2PA_KEYS_DIR = tmp_path / "instance-keys"
    signing.reset()
    yield settings.C2PA_KEYS_DIR
    signing.reset()


def test_rotating_keeps_the_earlier_roots_but_not_their_keys(tmp_path):
    first = keys.identity_create(tmp_path, instance_name="Test Candor")
    second = keys.identity_create(tmp_path, instance_name="Test Candor")
    third = keys.identity_create(tmp_path, instance_name="Test Candor")

    kept = keys.roots_pem(tmp_path)
    assert roots_in(kept) == roots_in(first.root_pem + second.root_pem + third.root_pem)
    assert kept.startswith(third.root_pem)  # the current root first
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".key") == [
        "root.key", "signer.key",
    ]  # fmt: skip
    assert not any(p.suffix == ".key" for p in (tmp_path / keys.RETIRED_ROOTS).iterdir())


def test_after_a_rotation_earlier_images_stay_trusted_and_every_root_is_published(
    alice, anonymous, instance_keys
):
    post = post_create(
        owner=alice, image=images.astronaut_variant(1), prompt="p", seed=1,
        generation_settings={}, model_name="m", base_model="builtin:tiny",
    )  # fmt: skip
    before = signing.identity()

    call_command("signing_identity", "rotate")
    after = signing.identity()

    assert after.fingerprint != before.fingerprint
    anchors = signing.trust_anchors_pem()
    for field in ("image", "display", "thumb", "preview"):
        result = c2pa.read(getattr(post, field).read(), trust_anchors_pem=anchors)
        assert result.state == "Trusted", (field, result.failures)
    assert c2pa.read(sign_with(after), trust_anchors_pem=anchors).state == "Trusted"
    published = anonymous.get(reverse("trust_anchor")).content
    assert roots_in(published) == roots_in(before.root_pem + after.root_pem)


def test_after_a_rotation_a_stripped_earlier_image_is_still_found_by_its_watermark(
    alice, instance_keys
):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client
    from PIL import Image

    from gallery import verify

    post = post_create(
        owner=alice, image=images.astronaut_variant(1), prompt="p", seed=1,
        generation_settings={}, model_name="m", base_model="builtin:tiny",
    )  # fmt: skip
    call_command("signing_identity", "rotate")
    signing.reset()
    buffer = io.BytesIO()
    Image.open(post.display.open()).save(buffer, "JPEG", quality=85)  # metadata stripped
    response = Client().post(
        reverse("verify_api"), {"image": SimpleUploadedFile("x.jpg", buffer.getvalue())}
    )
    assert response.json()["verdict"] == verify.RECOVERED_BY_WATERMARK


def test_the_export_holds_every_root(instance_keys, tmp_path):
    before = signing.identity()
    call_command("signing_identity", "rotate")
    call_command("signing_identity", "export", str(tmp_path / "out"))
    exported = (tmp_path / "out" / "trust-anchor.pem").read_bytes()
    assert roots_in(exported) == roots_in(before.root_pem + signing.identity().root_pem)


def test_the_operator_s_anchors_come_on_top_of_every_instance_root(
    settings, instance_keys, tmp_path
):
    before = signing.identity()
    call_command("signing_identity", "rotate")
    theirs = keys.identity_create(tmp_path / "theirs", instance_name="Another CA")
    (tmp_path / "anchors.pem").write_bytes(theirs.root_pem)
    settings.C2PA_TRUST_ANCHORS_FILE = str(tmp_path / "anchors.pem")

    assert roots_in(signing.trust_anchors_pem()) == roots_in(
        before.root_pem + signing.identity().root_pem + theirs.root_pem
    )


def test_c2pa_refuses_to_sign_with_an_expired_certificate(tmp_path):
    expired = keys.identity_create(
        tmp_path, instance_name="Test Candor", leaf_lifetime=dt.timedelta(seconds=-1)
    )
    with pytest.raises(Exception, match="not valid at time of signing"):
        sign_with(expired)


def test_an_image_signed_by_a_since_expired_certificate_reads_as_expired(tmp_path):
    short_lived = keys.identity_create(
        tmp_path, instance_name="Test Candor", leaf_lifetime=dt.timedelta(seconds=2)
    )
    data = sign_with(short_lived)
    assert c2pa.read(data, trust_anchors_pem=short_lived.root_pem).state == "Trusted"

    time.sleep(max(0.0, (short_lived.not_after - dt.datetime.now(dt.UTC)).total_seconds()) + 1.1)
    result = c2pa.read(data, trust_anchors_pem=short_lived.root_pem)

    # Without a timestamp, c2pa checks the leaf at reading time: expired, not tampered.
    assert result.state == "Invalid"
    assert "signingCredential.expired" in result.failure_codes
    assert not any(code.startswith("assertion.") for code in result.failure_codes)


# --- a local RFC 3161 time-stamp authority ------------------------------------------------------
# No RFC 3161 server is in the dependencies (cryptography builds CMS only for id-data content), so
# this one writes its DER by hand: just what a TimeStampResp needs, signed with cryptography.


def _tlv(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _set(*items: bytes) -> bytes:
    return _tlv(0x31, b"".join(sorted(items)))  # DER orders a SET OF by encoding


def _int(n: int) -> bytes:
    return _tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big", signed=True))


def _octets(data: bytes) -> bytes:
    return _tlv(0x04, data)


def _oid(dotted: str) -> bytes:
    first, second, *rest = (int(p) for p in dotted.split("."))
    body = bytes([40 * first + second])
    for part in rest:
        chunk = [part & 0x7F]
        while part := part >> 7:
            chunk.append(0x80 | (part & 0x7F))
        body += bytes(reversed(chunk))
    return _tlv(0x06, body)


def _elements(der: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, offset, offset of the value, end) of each DER element between start and end."""
    found = []
    while start < end:
        tag, size, at = der[start], der[start + 1], start + 2
        if size & 0x80:
            at, size = at + (size & 0x7F), int.from_bytes(der[at : at + (size & 0x7F)], "big")
        found.append((tag, start, at, at + size))
        start = at + size
    return found


SHA256 = _seq(_oid("2.16.840.1.101.3.4.2.1"))
TST_INFO = "1.2.840.113549.1.9.16.1.4"


def _usage(**flags: bool) -> x509.KeyUsage:
    names = [
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
        "encipher_only",
        "decipher_only",
    ]
    return x509.KeyUsage(**{name: flags.get(name, False) for name in names})


def _certificate(subject: str, key, issuer: str, issuer_key, *, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(_usage(key_cert_sign=True, crl_sign=True), critical=True)
    else:
        builder = builder.add_extension(_usage(digital_signature=True), critical=True)
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
        )
    return builder.sign(issuer_key, hashes.SHA256())


class TimestampAuthority:
    """Answers RFC 3161 requests over HTTP on 127.0.0.1 with a token from its own root."""

    def __init__(self):
        root_key = ec.generate_private_key(ec.SECP256R1())
        self.key = ec.generate_private_key(ec.SECP256R1())
        root = _certificate("Test TSA Root", root_key, "Test TSA Root", root_key, ca=True)
        self.cert = _certificate("Test TSA", self.key, "Test TSA Root", root_key, ca=False)
        self.root_pem = root.public_bytes(serialization.Encoding.PEM)
        self.requests = 0

    def respond(self, request: bytes) -> bytes:
        """A granted TimeStampResp for a TimeStampReq (version, messageImprint, nonce...)."""
        self.requests += 1
        _, _, start, end = _elements(request, 0, len(request))[0]
        fields = [request[at:stop] for tag, at, _, stop in _elements(request, start, end)]
        imprint = fields[1]  # copied as is
        nonce = next((f for f in fields[2:] if f[0] == 0x02), b"")
        when = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%SZ").encode()
        tst_info = _seq(
            _int(1), _oid("1.2.3.4.1"), imprint, _int(self.requests), _tlv(0x18, when), nonce
        )
        der = self.cert.public_bytes(serialization.Encoding.DER)
        signed_attributes = _set(
            _seq(_oid("1.2.840.113549.1.9.3"), _set(_oid(TST_INFO))),
            _seq(_oid("1.2.840.113549.1.9.5"), _set(_tlv(0x17, when[2:]))),
            _seq(_oid("1.2.840.113549.1.9.4"), _set(_octets(hashlib.sha256(tst_info).digest()))),
            _seq(  # signingCertificateV2 (ESSCertIDv2 with the default SHA-256)
                _oid("1.2.840.113549.1.9.16.2.47"),
                _set(_seq(_seq(_seq(_octets(hashlib.sha256(der).digest()))))),
            ),
        )
        signature = self.key.sign(signed_attributes, ec.ECDSA(hashes.SHA256()))
        signer_info = _seq(
            _int(1),
            _seq(self.cert.issuer.public_bytes(), _int(self.cert.serial_number)),
            SHA256,
            b"\xa0" + signed_attributes[1:],  # [0] IMPLICIT: the SET signed above, retagged
            _seq(_oid("1.2.840.10045.4.3.2")),
            _octets(signature),
        )
        signed_data = _seq(
            _int(3),
            _set(SHA256),
            _seq(_oid(TST_INFO), _tlv(0xA0, _octets(tst_info))),
            _tlv(0xA0, der),
            _set(signer_info),
        )
        token = _seq(_oid("1.2.840.113549.1.7.2"), _tlv(0xA0, signed_data))
        return _seq(_seq(_int(0)), token)  # status granted, then the token


@pytest.fixture
def tsa():
    authority = TimestampAuthority()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            reply = authority.respond(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    authority.url = f"http://127.0.0.1:{server.server_port}/"
    yield authority
    server.shutdown()
    server.server_close()


def test_a_timestamped_signature_stays_trusted_after_its_certificate_expires(tmp_path, tsa):
    short_lived = keys.identity_create(
        tmp_path, instance_name="Test Candor", leaf_lifetime=dt.timedelta(seconds=2)
    )
    jpeg = images.encode(images.astronaut_variant(0))
    signer = c2pa.Signer(short_lived, tsa_url=tsa.url)
    data = signer.sign(jpeg, "image/jpeg", manifest_definition(FACTS))
    assert tsa.requests == 1
    anchors = short_lived.root_pem + tsa.root_pem

    time.sleep(max(0.0, (short_lived.not_after - dt.datetime.now(dt.UTC)).total_seconds()) + 1.1)
    result = c2pa.read(data, trust_anchors_pem=anchors)

    assert result.state == "Trusted", result.failures
    assert result.manifest["signature_info"]["time"]  # the authority's time, not the reader's
    # A timestamp from an authority nobody trusts does not count: the leaf is checked now.
    untrusted = c2pa.read(data, trust_anchors_pem=short_lived.root_pem)
    assert "signingCredential.expired" in untrusted.failure_codes


def test_every_file_is_timestamped_when_a_tsa_is_configured(
    settings, alice, instance_keys, tsa, capsys
):
    settings.C2PA_TSA_URL = tsa.url
    signing.reset()
    post = post_create(
        owner=alice, image=images.astronaut_variant(1), prompt="p", seed=1,
        generation_settings={}, model_name="m", base_model="builtin:tiny",
    )  # fmt: skip
    assert tsa.requests == 4  # the original and each size made from it
    anchors = signing.trust_anchors_pem() + tsa.root_pem
    result = c2pa.read(post.image.read(), trust_anchors_pem=anchors)
    assert result.state == "Trusted", result.failures
    call_command("signing_identity", "show")
    assert f"timestamps:  {tsa.url}" in capsys.readouterr().out
