"""After training: a self-contained model folder (`folder`, `export`), the Python API over it
(`api`), and the HTTP server (`server`, `batcher`). Importing the package imports nothing else."""
