"""A moto S3 server in its own process on 127.0.0.1, with its own environment (request recording, IAM).

The session's `moto_s3` fixture runs moto in this process; tests that need moto's process-wide settings
(MOTO_ENABLE_RECORDING, INITIAL_NO_AUTH_ACTION_COUNT) start one of these instead.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_server(workdir: Path, **env: str) -> Iterator[str]:
    """The endpoint (http://127.0.0.1:<port>) of a moto server started with `env` added to its environment."""
    port = _free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / "moto.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env={**os.environ, **env},
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        endpoint = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 60
            while True:
                try:
                    urllib.request.urlopen(endpoint + "/moto-api/data.json", timeout=2).read()
                    break
                except OSError:
                    if proc.poll() is not None or time.time() > deadline:
                        tail = (workdir / "moto.log").read_text()[-2000:]
                        raise RuntimeError(f"moto server did not start: {tail}") from None
                    time.sleep(0.2)
            yield endpoint
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def recorder(endpoint: str, action: str) -> str:
    """Drive moto's request recorder: reset-recording, start-recording, stop-recording, download-recording."""
    method = "GET" if action == "download-recording" else "POST"
    req = urllib.request.Request(f"{endpoint}/moto-api/recorder/{action}", method=method, data=None)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read().decode()


def recorded(endpoint: str) -> list[dict]:
    """The requests recorded so far: method, url, headers (bodies dropped)."""
    out = []
    for line in recorder(endpoint, "download-recording").splitlines():
        if line.strip():
            entry = json.loads(line)
            out.append({"method": entry["method"], "url": entry["url"], "headers": entry["headers"]})
    return out


@contextmanager
def aws_test_credentials(spark) -> Iterator[None]:
    """moto's test credentials through the standard AWS chain only (the environment), of this driver process
    and of the Python workers the session starts from now on (ingest reads objects with boto3 there);
    both restored afterwards."""
    creds = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    workers = spark.sparkContext.environment
    before = {k: workers.get(k) for k in creds}
    saved = {k: os.environ.get(k) for k in creds}
    try:
        os.environ.update(creds)
        workers.update(creds)
        yield
    finally:
        for env, old in ((workers, before), (os.environ, saved)):
            for k, v in old.items():
                if v is None:
                    env.pop(k, None)
                else:
                    env[k] = v
