"""`taskfit serve RUN_DIR`: a trained run behind an HTTP JSON API (FastAPI on uvicorn, the
`serve` extra). The model loads once; concurrent requests share one model call."""
