"""The HTTP service: settings, the runtime that owns stores and engine, and the API."""
