"""Find stored credentials whose perceptual hash is within a few bits of an image's, by index.

Multi-index hashing: each 64-bit pHash is stored split into len(PHASH_BAND_BITS) bands (22, 21
and 21 bits), each in an indexed integer column (gallery.models).

The guarantee: two hashes at most `max_bits` apart differ, by pigeonhole, in at most
`max_bits // bands` bits of at least one band (if every one of the 3 bands differed in more, they
would be at least 3 * (max_bits // 3 + 1) > max_bits apart). So asking, for each band, for every
value within that radius of the query's band (an OR of indexed IN lookups) returns every hash
within `max_bits` — none is missed — plus a few others, which the exact Hamming distance computed
here drops. For max_bits = 8 the radius is 2: 1 + 22 + 231 = 254 values for the 22-bit band and
232 for each 21-bit one, 718 parameters in all; a random stored hash is a candidate with a
probability of about 2.8e-4 (some 28 rows of 100,000).
"""

from __future__ import annotations

from itertools import combinations

from django.db.models import Q, QuerySet

from gallery.models import PHASH_BAND_BITS, PHASH_BAND_FIELDS, Credential, phash_bands
from imaging.phash import hamming


def neighbours(value: int, bits: int, radius: int) -> list[int]:
    """Every `bits`-bit value at most `radius` bits from `value`, `value` first."""
    found = [value]
    for flips in range(1, radius + 1):
        for positions in combinations(range(bits), flips):
            mask = 0
            for position in positions:
                mask |= 1 << position
            found.append(value ^ mask)
    return found


def candidates_filter(fingerprint: str, max_bits: int) -> Q:
    """Rows sharing a band within max_bits // bands bits of `fingerprint`'s: a superset of those
    within max_bits of it (see the module docstring)."""
    radius = max_bits // len(PHASH_BAND_BITS)
    condition = Q()
    for name, bits, band in zip(
        PHASH_BAND_FIELDS, PHASH_BAND_BITS, phash_bands(fingerprint), strict=True
    ):
        condition |= Q(**{f"{name}__in": neighbours(band, bits, radius)})
    return condition


def nearest(
    fingerprint: str,
    *,
    max_bits: int,
    limit: int | None = 1,
    queryset: QuerySet[Credential] | None = None,
) -> list[tuple[int, int]]:
    """(bits apart, credential pk) of the stored hashes at most `max_bits` from `fingerprint`,
    nearest first (then oldest), at most `limit` of them (all when None)."""
    queryset = Credential.objects.all() if queryset is None else queryset
    rows = queryset.filter(candidates_filter(fingerprint, max_bits)).values_list("pk", "phash")
    found = sorted(
        (distance, pk)
        for pk, other in rows
        if other and (distance := hamming(fingerprint, other)) <= max_bits
    )
    return found if limit is None else found[:limit]
