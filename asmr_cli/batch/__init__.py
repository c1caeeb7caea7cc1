"""Many inputs at once (docs/batch.md): the Python API of `asmr encode/decode` over many files.

    from asmr_cli.batch import encode_many
    results = encode_many(["photos"], "out", EncodeOptions(preset="fast"), recursive=True)
"""

from .jobs import DecodeOptions
from .plan import Batch, FileResult, Job, Task, expand_inputs, plan_batch
from .run import decode_many, encode_many, run_batch, summarize

__all__ = ["Batch", "DecodeOptions", "FileResult", "Job", "Task", "decode_many", "encode_many", "expand_inputs",
           "plan_batch", "run_batch", "summarize"]
