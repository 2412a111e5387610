"""HTTP serving (`nspzero serve`, the optional 'serve' extra), in FastAPI's documented shape.

- `app`: `create_app` (the FastAPI app over an NSPClassifier) and `run_server` (uvicorn);
- `routers`: GET /health, POST /classify (the library's request as JSON), POST / (the Hugging Face
  Inference API zero-shot payload);
- `dependencies`: the app's classifier, batcher and limits, and a request's size checked from its
  counts before rendering; `prepare` (the CPU work, off the event loop);
- `models`: responses and the zero-shot payload; `batcher`: when the pipeline runs;
- `security`: Content-Security-Policy and allowed hosts.

Importing this package needs no fastapi (run_server then says what to install); the CLI adds the
`serve` command in nspzero/cli/serve.py.
"""
from .app import create_app, extra_missing, run_server

__all__ = ["create_app", "extra_missing", "run_server"]
