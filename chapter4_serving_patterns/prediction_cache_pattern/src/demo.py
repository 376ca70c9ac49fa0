"""`make cache_demo` (a Procfile.jobs line; pattern.toml's demo runs it too): what the cache
does, with the X-Cache header and the latency of each request (SPEC 3.8 Demo).

1. An image no one sent before (item 0000 with a fresh PNG text chunk: the same pixels, other
   bytes, so another sha256) twice through `POST /predict/label`: MISS (preprocess, pred),
   then HIT (one Redis GET), with their latencies.
2. A burst of 10 identical requests for another new image: one MISS, the others COALESCED or
   HIT, one inference in pred.
"""

from __future__ import annotations

import base64
import struct
import time
import uuid
import zlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from src.configurations import DemoSettings

BURST = 10
PNG_END = b"IEND"


def unique_png(data: bytes, text: str | None = None) -> bytes:
    """The same PNG picture with a tEXt chunk inserted before IEND: new bytes, same pixels."""
    end = data.rindex(PNG_END) - 4  # the IEND chunk starts with its 4-byte length
    body = b"tEXt" + b"nonce\0" + (text or uuid.uuid4().hex).encode()
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    return data[:end] + chunk + data[end:]


def timed(client: httpx.Client, body: dict[str, Any]) -> tuple[str, float, str]:
    started = time.perf_counter()
    response = client.post("/predict/label", json=body)
    elapsed_ms = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return response.headers.get("X-Cache", "?"), elapsed_ms, response.text


def main() -> int:
    settings = DemoSettings()
    sample = (settings.data_dir / "0000.png").read_bytes()
    with httpx.Client(base_url=settings.proxy_url, timeout=30.0) as client:
        body = {"image_data": base64.b64encode(unique_png(sample)).decode()}
        for attempt in (1, 2):
            cache, elapsed_ms, text = timed(client, body)
            print(
                f"a new image, request #{attempt}: X-Cache {cache:<9} {elapsed_ms:7.2f} ms  {text}"
            )
        body = {"image_data": base64.b64encode(unique_png(sample)).decode()}
        with ThreadPoolExecutor(BURST) as pool:
            results = list(pool.map(lambda _: timed(client, body), range(BURST)))
    tally = Counter(cache for cache, _, _ in results)
    print(
        f"burst of {BURST} identical requests (a new image): "
        + ", ".join(f"{count} {cache}" for cache, count in sorted(tally.items()))
    )
    print(f"identical bodies: {len({text for _, _, text in results}) == 1}")
    return 0 if tally["MISS"] == 1 else 1  # a burst that ran the model twice is a failure


if __name__ == "__main__":
    raise SystemExit(main())
