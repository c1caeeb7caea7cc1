"""Where a file's networks come from: carried in its own payload, or referred to by the
SHA-256 of their records (a file that refers to networks it does not carry). One record
for every format that may share networks: a collection (format 5) writes it today; an
image that uses networks shipped with asmr (or a collection's, to code a new image
against them) would write the same record in its header and be resolved the same way.

    source u8 (0 carried, 1 by reference) | [sha256 of the network records, 32 bytes]

The digest is over the network records' bytes exactly as a file that carries them holds
them, so a carried copy can be checked against the reference before it is used."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from ..core.errors import AsmrError
from .records import Reader, check

CARRIED, BY_REFERENCE = 0, 1
DIGEST_BYTES = 32


@dataclass(frozen=True)
class NetworkSource:
    kind: int = CARRIED
    digest: bytes = b""  # by reference: sha256 of the network records

    @property
    def carried(self) -> bool:
        return self.kind == CARRIED


def digest(records: bytes) -> bytes:
    return hashlib.sha256(records).digest()


def pack_source(s: NetworkSource) -> bytes:
    return bytes([s.kind]) + (s.digest if s.kind == BY_REFERENCE else b"")


def read_source(r: Reader) -> NetworkSource:
    kind, = r.unpack("B")
    check(kind in (CARRIED, BY_REFERENCE), f"network source {kind}")
    if kind == CARRIED:
        return NetworkSource()
    return NetworkSource(BY_REFERENCE, r.take(DIGEST_BYTES))


def resolve(source: NetworkSource, store: Mapping[bytes, bytes] | None) -> bytes:
    """The network records a by-reference file names, from `store` (digest -> records:
    what the caller has, e.g. the records of the collection the file was made against),
    checked against the digest."""
    records = None if store is None else store.get(source.digest)
    if records is None:
        raise AsmrError(f"this file refers to networks it does not carry (sha256 {source.digest.hex()[:16]}...); "
                        "give the file that carries them")
    if digest(records) != source.digest:
        raise AsmrError("the networks given do not match the file's reference (sha256 differs)")
    return records
