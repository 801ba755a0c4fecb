"""Domain models (pydantic v2) for Close and ChartMogul objects."""
