"""Model files: the catalog, GGUF headers, downloads, where a model fits, chat formats, random-weight shapes,
and what this machine has (`coach doctor`)."""
