"""The HTTP API of a trained run (FastAPI): POST /predict, GET /health, GET /info, and the
OpenAPI page FastAPI writes (/docs, /openapi.json). A bad request gets a 4xx JSON body that
names the problem; nothing a client sends becomes a 500."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from taskfit import __version__
from taskfit.errors import TaskfitError
from taskfit.inference.predict import Predictor
from taskfit.runfolder.files import read_facts
from taskfit.runfolder.opened import check_rows
from taskfit.serve.batching import MicroBatcher, Rows
from taskfit.serve.rows import as_table, request_rows

MAX_BODY = 8 << 20  # bytes; MAX_ROWS rows of a wide table fit


class BadRequest(Exception):
    def __init__(self, status: int, problems: list[str]) -> None:
        super().__init__(problems)
        self.status, self.problems = status, problems


def make_app(predictor: Predictor, max_rows: int = 1024, max_wait: float = 0.002) -> FastAPI:
    run = predictor.run
    inputs = (*run.numeric, *run.categorical)

    def predict_rows(rows: Rows) -> list[dict[str, Any]]:
        return predictor.predict(as_table(rows, inputs)).records()

    batcher = MicroBatcher(predict_rows, max_rows, max_wait)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        yield
        await batcher.stop()  # uvicorn has answered the requests in flight by now

    app = FastAPI(
        title=f"taskfit: {run.folder.name}",
        version=__version__,
        lifespan=lifespan,
        summary="Predictions of a run trained by taskfit, one row or many by column name.",
    )

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse({"error": exc.problems}, status_code=exc.status)

    @app.post("/predict")
    async def predict(request: Request) -> dict[str, Any]:
        """One row (an object by column name, raw values as in the CSV) or a list of rows;
        returns what `taskfit predict --json` writes for them."""
        rows = request_rows(_json(await _body(request)))
        try:
            notes = check_rows(run, as_table(rows, inputs), False, "the request")
        except TaskfitError as exc:
            raise BadRequest(422, [str(p) for p in exc.problems]) from None
        records = await batcher.submit(rows)
        return {"predictions": records, **({"notes": notes} if notes else {})}

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", **vars(batcher.counts)}

    @app.get("/info")
    async def info() -> dict[str, Any]:
        return describe(predictor)

    @app.exception_handler(TaskfitError)
    async def refused(request: Request, exc: TaskfitError) -> JSONResponse:
        return JSONResponse({"error": [str(p) for p in exc.problems]}, status_code=422)

    return app


async def _body(request: Request) -> bytes:
    """The body, read only up to MAX_BODY (a client's Content-Length is not taken on trust)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise BadRequest(413, [_too_large(int(declared))])
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                raise BadRequest(413, [_too_large(len(body))])
    except ClientDisconnect:  # a body cut short or malformed: the client has gone
        raise BadRequest(400, ["the body broke off before its end; send it whole"]) from None
    return bytes(body)


INT_DIGITS = 4300  # sys.get_int_max_str_digits()'s default


def _too_large(size: int) -> str:
    return (
        f"the body is {size} bytes or more; a request takes at most {MAX_BODY} bytes: send "
        "the rows in several requests"
    )


def _integer(text: str) -> int:
    """A JSON integer, refused by its size where Python's int() would refuse it by its own
    limit (4300 digits) in words about Python."""
    digits = len(text.lstrip("-"))
    if digits > INT_DIGITS:
        raise BadRequest(
            422,
            [
                f"the body holds an integer of {digits} digits, far beyond the 32-bit floats "
                "the model computes in (at most about 3.4e38); send the value in that range"
            ],
        )
    return int(text)


def _json(body: bytes) -> Any:
    try:
        # bytes to json.loads would guess UTF-16 too
        return json.loads(body.decode("utf-8"), parse_int=_integer)
    except UnicodeDecodeError:
        raise BadRequest(400, ["the body is not UTF-8 text; send JSON"]) from None
    except ValueError as exc:
        raise BadRequest(400, [f"the body is not JSON: {exc}"]) from None
    except RecursionError:  # Python's parser recurses once per level of nesting
        raise BadRequest(
            400, ["the body is JSON nested too deeply; give rows as objects by column name"]
        ) from None


def describe(predictor: Predictor) -> dict[str, Any]:
    """GET /info: what the model takes and gives, and what made it."""
    run = predictor.run
    data = run.spec.data
    kinds = {"numeric": data.numeric, "categorical": data.categorical}
    kinds |= {"date": data.dates, "text": data.text}
    heads = [
        {
            "head": head.name,
            "task": head.task,
            "label": list(head.labels.columns),
            **({"classes": list(head.labels.classes)} if head.task != "regression" else {}),
            # the cut its classes are called by (data.threshold), as predict's
            **({"threshold": run.thresholds[head.name]} if head.name in run.thresholds else {}),
        }
        for head in run.plan.heads
    ]
    facts = read_facts(run.folder)
    return {
        "run": run.folder.name,
        "columns": {column: kind for kind, names in kinds.items() for column in names},
        "heads": heads,
        "serving": {"taskfit": __version__},
        "trained_with": facts.get("versions") or {},
    }
