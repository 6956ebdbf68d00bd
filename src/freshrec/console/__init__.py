"""The operator console's static files: HTML, JavaScript modules, the vendored uPlot."""
