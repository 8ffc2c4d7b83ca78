"""Online detection on a live log (``logsieve watch``): following files, assembling windows as
lines arrive, scoring them with a :class:`logsieve.pipeline.Pipeline`, and checkpointing so that a
restart resumes exactly once. Stands on the pipeline and detector layers; the service uses it."""
