"""`taskfit serve`: the real server on the loopback, driven over HTTP. Its predictions are
`taskfit predict`'s, concurrent requests share model calls, a bad request gets a 4xx JSON body
naming the problem, and SIGTERM answers the requests in flight before the process exits."""

from __future__ import annotations

import contextlib
import csv
import http.client
import io
import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from helpers import TASKFIT, mixed_csv
from typer.testing import CliRunner

from taskfit.cli.app import app

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
runner = CliRunner()
SPEC = (
    "name: shop\ntask: binary\ndata: {source: data.csv, label: bought, ignore: [id]}\n"
    "model: {layers: [{units: 8}]}\ntraining: {epochs: 2}\n"
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A run on a table with a string column and gaps, and rows to predict (a CSV)."""
    from taskfit.training.run import train

    folder = tmp_path_factory.mktemp("serve")
    (folder / "data.csv").write_text(mixed_csv(60), encoding="utf-8")
    (folder / "spec.yaml").write_text(SPEC, encoding="utf-8")
    run = train(folder / "spec.yaml", {"model.members": 1}, folder / "runs", verbose=0).run_dir
    rows = folder / "rows.csv"
    rows.write_text(mixed_csv(12), encoding="utf-8")
    return run, rows


def json_rows(path: Path) -> list[dict[str, Any]]:
    """The CSV's rows as a client would send them: numbers as numbers, empty cells as null."""
    rows = []
    for row in csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))):
        row.pop("bought")
        rows.append({k: None if v == "" else int(v) if v.isdigit() else v for k, v in row.items()})
    return rows


class Client:
    def __init__(self, port: int) -> None:
        self.port = port

    def call(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None
    ) -> tuple[int, Any]:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, data, {"content-type": "application/json"})
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()


@contextlib.contextmanager
def serving(run: Path) -> Iterator[Client]:
    """The server in a thread of this process (uvicorn, the app taskfit serve runs), with a
    wait bound long enough that requests sent together are batched together."""
    import uvicorn

    from taskfit.inference.predict import Predictor
    from taskfit.serve.app import make_app
    from taskfit.serve.server import bind

    fastapi_app = make_app(Predictor.load(run, traced=True), max_rows=1024, max_wait=0.05)
    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(fastapi_app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield Client(sock.getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def server(trained: tuple[Path, Path]) -> Iterator[Client]:
    with serving(trained[0]) as client:
        yield client


def test_predictions_over_http_are_what_predict_writes(
    server: Client, trained: tuple[Path, Path]
) -> None:
    client = server
    run, rows = trained
    said = runner.invoke(app, ["predict", str(run), str(rows), "--json"])
    expected = json.loads(said.stdout)["predictions"]
    status, body = client.call("POST", "/predict", json_rows(rows))
    assert status == 200, body
    assert [r["predicted_bought"] for r in body["predictions"]] == [
        r["predicted_bought"] for r in expected
    ]
    for got, want in zip(body["predictions"], expected, strict=True):
        assert got["probability_yes"] == pytest.approx(want["probability_yes"], abs=1e-6)
    one = json_rows(rows)[3]
    status, single = client.call("POST", "/predict", one)  # one row: an object, not a list
    assert (
        status == 200
        and single["predictions"][0]["predicted_bought"] == (expected[3]["predicted_bought"])
    )
    assert set(single["predictions"][0]) == {
        "predicted_bought",
        "probability_no",
        "probability_yes",
    }


def test_health_info_and_the_openapi_page(server: Client) -> None:
    client = server
    status, health = client.call("GET", "/health")
    assert status == 200 and health["status"] == "ok" and health["queued_rows"] == 0
    status, info = client.call("GET", "/info")
    assert status == 200
    assert info["columns"] == {
        "age": "numeric",
        "income": "numeric",
        "plan": "numeric",  # 1, 2, 3: taskfit types a small integer code as a number
        "city": "categorical",
    }
    assert info["heads"] == [
        {"head": "output", "task": "binary", "label": ["bought"], "classes": ["no", "yes"]}
    ]
    assert info["trained_with"]["keras"] and info["serving"]["taskfit"]
    status, spec = client.call("GET", "/openapi.json")
    assert status == 200 and {"/predict", "/health", "/info"} <= set(spec["paths"])


def test_concurrent_requests_share_model_calls(server: Client) -> None:
    """32 clients at once, each its own row: every one gets its own row's prediction (the one
    it gets alone), and the rows went through fewer model calls than there were requests."""
    client = server
    rows = json_rows_of(32)
    alone = [client.call("POST", "/predict", row)[1]["predictions"][0] for row in rows]
    _, before = client.call("GET", "/health")
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda row: client.call("POST", "/predict", row), rows))
    _, after = client.call("GET", "/health")
    assert [status for status, _ in answers] == [200] * 32
    for (_, body), own in zip(answers, alone, strict=True):
        assert body["predictions"][0]["probability_yes"] == pytest.approx(
            own["probability_yes"], abs=1e-6
        )
    assert after["requests"] - before["requests"] == 32
    assert after["model_calls"] - before["model_calls"] < 32


def json_rows_of(n: int) -> list[dict[str, Any]]:
    cities = ["paris", "oslo", None, "rome"]
    return [
        {"id": i, "age": 20 + i, "city": cities[i % 4], "plan": 1 + i % 3, "income": 1000 + 7 * i}
        for i in range(n)
    ]


def test_a_model_with_two_heads_answers_for_each(tmp_path: Path) -> None:
    """A class and its probabilities for one head, a value in the label's units for the other:
    what predict --json writes for the same rows, head by head."""
    from taskfit.training.run import train

    (tmp_path / "data.csv").write_text(mixed_csv(60), encoding="utf-8")
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "data: {source: data.csv, ignore: [id]}\nheads:\n"
        "  buys: {task: binary, label: bought}\n  spend: {task: regression, label: income}\n"
        "model: {layers: [{units: 8}]}\ntraining: {epochs: 2}\n",
        encoding="utf-8",
    )
    run = train(spec, {"model.members": 1}, tmp_path / "runs", verbose=0).run_dir
    rows = tmp_path / "rows.csv"
    rows.write_text(mixed_csv(6), encoding="utf-8")
    expected = json.loads(runner.invoke(app, ["predict", str(run), str(rows), "--json"]).stdout)
    sent = [{k: v for k, v in row.items() if k != "income"} for row in json_rows(rows)]
    with serving(run) as client:
        status, body = client.call("POST", "/predict", sent)
        _, info = client.call("GET", "/info")
    assert status == 200, body
    assert [h["head"] for h in info["heads"]] == ["buys", "spend"]
    for got, want in zip(body["predictions"], expected["predictions"], strict=True):
        assert set(got) == set(want) >= {"predicted_bought", "predicted_income"}
        assert got["predicted_bought"] == want["predicted_bought"]
        assert got["predicted_income"] == pytest.approx(want["predicted_income"], rel=1e-5)


@pytest.mark.parametrize(
    ("body", "raw", "status", "says"),
    [
        (None, b'{"age": 41,', 400, "the body is not JSON"),
        (None, b"\xff\xfe", 400, "the body is not UTF-8 text"),
        ([], None, 422, "the body is an empty list"),
        (None, b"[" * 100_000 + b"]" * 100_000, 400, "the body is JSON nested too deeply"),
        (
            None,
            b'{"age": 41, "city": "\\ud800", "plan": 1, "income": 9}',
            422,
            "row 0: column city holds a lone surrogate escape",
        ),
        (
            None,
            b'{"age": 41, "city": "x", "plan": 1, "income": 9, "\\udfff": 1}',
            422,
            "row 0: a column name holds a lone surrogate escape",
        ),
        ("age=41", None, 422, "the body is a JSON string; give one row as an object"),
        ([1, 2], None, 422, "row 0: is a JSON number, not an object by column name"),
        (
            {"age": 41, "city": "oslo", "plan": 1},
            None,
            422,
            "column income: is missing from the request; the model needs this input column. "
            "Columns there: age, city, plan; the model's columns: age, plan, income, city",
        ),
        (
            {"age": "forty", "city": "oslo", "plan": 1, "income": 9},
            None,
            422,
            "column age: is numeric in this model; row 0 has 'forty'",
        ),
        (
            {"age": 41, "city": "oslo", "plan": 1, "income": 1e39},
            None,
            422,
            "column income: row 0 is infinite or beyond a 32-bit",
        ),
        (
            None,
            b'{"age": 41, "city": "oslo", "plan": 1, "income": 1' + b"0" * 5000 + b"}",
            422,
            "the body holds an integer of 5001 digits, far beyond the 32-bit floats",
        ),
        (
            {"age": 41, "city": ["oslo"], "plan": 1, "income": 9},
            None,
            422,
            "row 0: column city is a JSON list; give a number, a string or null",
        ),
        (
            [{"age": 41, "city": "oslo", "plan": 1, "income": 9}, {"age": 41, "plan": 1}],
            None,
            422,
            "row 1: has no ",
        ),
    ],
)
def test_a_bad_request_gets_a_4xx_body_naming_the_problem(
    server: Client, body: Any, raw: bytes | None, status: int, says: str
) -> None:
    client = server
    got, answer = client.call("POST", "/predict", body, raw)
    assert got == status, answer
    assert any(says in line for line in answer["error"]), answer


def test_a_body_that_breaks_off_is_no_server_error(
    server: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that promises 100 bytes, sends 8 and leaves: no traceback in the server's
    log, and the server answers the next request."""
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        sock.sendall(b'Content-Length: 100\r\n\r\n{"age": ')
    got, _ = server.call("GET", "/health")
    assert got == 200
    assert not [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]


def test_a_body_over_the_limit_is_refused_before_it_is_read(server: Client) -> None:
    from taskfit.serve.app import MAX_BODY

    client = server
    connection = http.client.HTTPConnection("127.0.0.1", client.port, timeout=30)
    connection.putrequest("POST", "/predict")
    connection.putheader("content-type", "application/json")
    connection.putheader("content-length", str(MAX_BODY + 1))
    connection.endheaders()  # the body is never sent: the answer comes first
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert response.status == 413 and f"at most {MAX_BODY} bytes" in answer["error"][0]


@pytest.mark.slow
def test_the_command_binds_the_loopback_and_sigterm_answers_requests_in_flight(
    trained: tuple[Path, Path],
) -> None:
    """`taskfit serve` as a process: it says where it listens (127.0.0.1 unless --host says
    otherwise); requests held by a long batching wait when SIGTERM comes are answered, and then
    the process ends as SIGTERM ends a process (exit 143 in a shell: uvicorn raises the signal
    again once it has shut down)."""
    run, rows = trained
    command = [*TASKFIT, "serve", str(run), "--port", "0", "--max-wait-ms", "3000"]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = ""
        while "serving" not in line:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "serve ended before listening"
        found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert found, line
        client = Client(int(found[1]))
        with ThreadPoolExecutor(4) as pool:
            sent = [
                pool.submit(client.call, "POST", "/predict", row) for row in json_rows(rows)[:4]
            ]
            deadline = time.monotonic() + 30
            while client.call("GET", "/health")[1]["queued_rows"] < 4:  # all four are held
                assert time.monotonic() < deadline, "the requests never reached the server"
                time.sleep(0.02)
            proc.send_signal(signal.SIGTERM)
            answers = [future.result(timeout=60) for future in sent]
        assert [status for status, _ in answers] == [200] * 4
        assert proc.wait(timeout=60) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()


def test_without_the_extra_serve_says_how_to_install_it(
    trained: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    result = runner.invoke(app, ["serve", str(trained[0])])
    assert result.exit_code == 1
    assert "taskfit serve needs uvicorn, which is not installed" in result.stderr
    assert "pip install 'taskfit[serve]'" in result.stderr
