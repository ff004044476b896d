"""Fingerprints of remote models read by HTTP range requests, against a local range-capable server."""

import re
import threading
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from fp_models import PLAN

from scratchcheck import compare, synthetic
from scratchcheck.errors import NotFoundError, UsageError
from scratchcheck.fingerprint import fingerprint


class RangeHandler(BaseHTTPRequestHandler):
    """Serves files of one folder, honouring ``Range: bytes=a-b``; ``flaky`` caps every answer at
    4 KiB (the client must resume) and fails every 5th request with 503 (the client must retry)."""

    def __init__(self, *args, folder, flaky, counter, **kwargs):
        self.folder, self.flaky, self.counter = folder, flaky, counter
        super().__init__(*args, **kwargs)

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.counter.append(self.path)
        path = self.folder / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        if self.flaky and len(self.counter) % 5 == 0:
            self.send_error(503)
            return
        data = path.read_bytes()
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        if match is None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        start, stop = int(match.group(1)), min(int(match.group(2)), len(data) - 1)
        if self.flaky:
            stop = min(stop, start + 4095)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{stop}/{len(data)}")
        self.send_header("Content-Length", str(stop - start + 1))
        self.end_headers()
        self.wfile.write(data[start : stop + 1])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    weights = synthetic.llama_decoder(
        4, layers=2, hidden=512, heads=8, kv_heads=2, intermediate=1024, vocab=4096
    )
    synthetic.save(weights, folder, {"model_type": "llama", "num_attention_heads": 8})
    servers = {}

    def start(flaky):
        if flaky in servers:
            servers[flaky][1].clear()
            return servers[flaky][2], servers[flaky][1]
        counter: list[str] = []
        handler = partial(RangeHandler, folder=folder, flaky=flaky, counter=counter)
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/model.safetensors"
        servers[flaky] = (server, counter, url)
        return url, counter

    yield folder, start
    for server, _, _ in servers.values():
        server.shutdown()
        server.server_close()


def test_remote_fingerprint_equals_the_local_one_and_fetches_a_few_percent(served):
    folder, start = served
    url, _ = start(flaky=False)
    remote = fingerprint(url, plan=PLAN, allow_network=True)
    local = fingerprint(folder, plan=PLAN)
    assert remote.arrays.keys() == local.arrays.keys()
    for name, values in local.arrays.items():
        assert np.array_equal(remote.arrays[name], values), name
    assert [t["sha256"] for t in remote.header["tensors"]] == [t["sha256"] for t in local.header["tensors"]]
    size = (folder / "model.safetensors").stat().st_size
    assert remote.header["reads"]["bytes_fetched"] <= 0.06 * size
    assert remote.files["config.json"] == (folder / "config.json").read_bytes()


def test_short_answers_are_resumed_and_failures_retried(served):
    folder, start = served
    url, requests = start(flaky=True)
    remote = fingerprint(url, plan=PLAN, allow_network=True)
    local = fingerprint(folder, plan=PLAN)
    assert all(np.array_equal(remote.arrays[n], v) for n, v in local.arrays.items())
    assert len(requests) > len(local.arrays)  # resumed and retried requests happened


def test_remote_needs_allow_network_and_a_missing_file_is_one_line(served):
    _, start = served
    url, _ = start(flaky=False)
    with pytest.raises(UsageError, match="--allow-network"):
        fingerprint(url, plan=PLAN)
    with pytest.raises(NotFoundError, match=r"nothing\.safetensors: not found \(HTTP 404\)"):
        fingerprint(url.replace("model", "nothing"), plan=PLAN, allow_network=True)


def test_a_remote_model_compares_with_a_fingerprint_without_downloading_it(served, tmp_path):
    folder, start = served
    url, _ = start(flaky=False)
    fingerprint(folder, tmp_path / "local.scfp", plan=PLAN)
    report = compare(url, [tmp_path / "local.scfp"], allow_network=True)
    assert report.verdict == "identical"
    assert report.sampled["sides"][url.replace("http://", "http:/")] == "model, sampled in memory"
