"""Many inputs at once: a plan's jobs (plan.py) run in local worker
processes or as tasks on a Ray cluster, and write each output atomically as it comes back.

Workers only compute (jobs.py: input -> output bytes); this process alone writes, so an
interrupted batch leaves whole outputs and nothing else, and a re-run skips the outputs
that already parse. One job is the same work as `asmr encode`/`asmr decode` on that file
(same bytes with the same options and seed). Ray is imported only for `ray=`.

    from asmr_cli.batch import encode_many
    results = encode_many(["photos"], "out", EncodeOptions(preset="fast"), recursive=True)
"""

from __future__ import annotations

import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path

from ..core.errors import AsmrError
from .jobs import DecodeOptions
from .plan import Batch, FileResult, Job, Task, plan_batch

# no numpy or torch at import: worker processes set their thread counts before loading them

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
RAY_MAX_RETRIES = 1  # a task whose worker died (out of memory, a lost node) runs once more


# -- one job, in whichever process runs it ----------------------------------------------------

def _limit_threads(threads: int) -> None:
    """torch's threads for this job: through the environment if torch is not loaded yet
    (it reads OMP_NUM_THREADS when it starts), else set directly."""
    torch = sys.modules.get("torch")
    if torch is None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    elif torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@contextmanager
def _source(job: Job, payload):
    """The input's path: the file itself, or a temporary copy of the bytes that came with
    the job; errors name the user's file, not the copy."""
    if payload is None:
        yield Path(job.input)
        return
    from .jobs import materialised

    with materialised(Path(job.input).name, payload) as path:
        try:
            yield path
        except AsmrError as exc:
            raise AsmrError(str(exc).replace(str(path), job.input)) from None


def _compute(job: Job, task: Task, payload, threads: int) -> tuple[bytes, dict]:
    """The output's bytes and stats. `payload` (the input's bytes, or {frame: bytes} for a
    folder) is None where this process reads the input itself."""
    from . import jobs

    with _source(job, payload) as path:
        if task.kind == "decode":
            return jobs.decoded_bytes(path, Path(job.output).suffix, task.options)
        _limit_threads(threads)
        result = jobs.encode_path(path, task.options, task.frames)
        return result.data, result.stats


def run_job(job: Job, task: Task, payload=None, threads: int = 1) -> tuple[str, bytes | None, object]:
    """("ok", output bytes, stats) or ("failed", None, message): a worker never raises for a
    bad input, so one file cannot stop the batch."""
    try:
        data, stats = _compute(job, task, payload, threads)
        return "ok", data, stats
    except AsmrError as exc:
        message = str(exc)
    except MemoryError:
        message = "out of memory"
    except Exception as exc:  # a bug shows as this file's failure, not the batch's
        message = f"internal error: {type(exc).__name__}: {exc}"
    return "failed", None, message if job.input in message else f"{job.input}: {message}"


# -- the local pool ---------------------------------------------------------------------------

def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def worker_plan(files: int, jobs: int | None = None, threads: int | None = None,
                cores: int | None = None) -> tuple[int, int]:
    """(worker processes, torch threads each): together at most the cores, unless both are
    given. Few files on many cores get more threads each."""
    cores = cores or available_cores()
    if jobs is None:
        threads = threads or max(1, cores // max(1, min(files, cores)))
        jobs = max(1, min(files, cores // threads))
    elif threads is None:
        threads = max(1, cores // jobs)
    if jobs < 1 or threads < 1:
        raise AsmrError("--jobs and --threads must be at least 1")
    return jobs, threads


def _worker_main(conn, threads: int) -> None:
    """A local worker: jobs in, results out, until told to stop or the parent goes. Ctrl-C
    is the parent's to handle (it stops the workers); SIGTERM ends the job at once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        job, task = msg
        conn.send(run_job(job, task, None, threads))


@contextmanager
def _thread_env(threads: int):
    """Thread counts in the environment a new worker starts with, so that OpenMP and BLAS
    size their pools before anything loads them."""
    saved = {k: os.environ.get(k) for k in THREAD_VARS}
    os.environ.update({k: str(threads) for k in THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


class _Worker:
    def __init__(self, ctx, threads: int):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, threads), daemon=True)
        with _thread_env(threads):
            self.process.start()
        child.close()
        self.job: Job | None = None

    def give(self, job: Job, task: Task) -> None:
        self.job = job
        self.conn.send((job, task))

    def stop(self, now: bool) -> None:
        if not now and self.process.is_alive():
            try:
                self.conn.send(None)
            except OSError:
                pass
            self.process.join(10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _run_local(jobs: list[Job], task: Task, workers: int, threads: int, done: Callable) -> None:
    """Fresh (spawned) processes: no torch state shared with the caller through fork."""
    import multiprocessing
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("spawn")
    queue = deque(jobs)
    pool: list[_Worker] = []
    clean = False
    try:
        while queue or any(w.job for w in pool):
            for w in pool:
                if w.job is None and queue:
                    w.give(queue.popleft(), task)
            while queue and len(pool) < workers:
                pool.append(_Worker(ctx, threads))
                pool[-1].give(queue.popleft(), task)
            busy = [w for w in pool if w.job is not None]
            ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy]))
            for w in busy:
                if w.conn not in ready and w.process.sentinel not in ready:
                    continue
                reply = None
                try:
                    if w.conn.poll():
                        reply = w.conn.recv()
                except (EOFError, OSError):
                    pass
                job, w.job = w.job, None
                if reply is None or not w.process.is_alive():  # died under this job or just after it
                    w.stop(now=True)
                    pool.remove(w)
                if reply is None:
                    reply = ("failed", None, f"{job.input}: the worker process died (exit code "
                                             f"{w.process.exitcode}; out of memory?)")
                done(job, reply)
        clean = True
    finally:
        for w in pool:
            w.stop(now=not clean)


# -- Ray --------------------------------------------------------------------------------------

def _ray_payload(path: Path):
    """The input as bytes, or a folder of frames as {name: bytes}: Ray workers need not see
    this machine's files."""
    if path.is_dir():
        from ..io.video import FRAME_EXTS

        return {p.name: p.read_bytes() for p in sorted(path.iterdir())
                if p.is_file() and p.suffix.lower() in FRAME_EXTS}
    from ..io.files import read_input

    return read_input(path)


def _ray_task(job: Job, task: Task, payload, threads: int):
    return run_job(job, task, payload, threads)


def _run_ray(jobs: list[Job], task: Task, address: str, threads: int, limit: int | None, done: Callable) -> None:
    try:
        import ray
    except ImportError:
        raise AsmrError("--ray needs Ray on this machine and the cluster: pip install 'asmr[ray]'") from None
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address, logging_level="ERROR", log_to_driver=False, configure_logging=False)
        except Exception as exc:  # ConnectionError, or Ray's own errors for a bad address
            raise AsmrError(f"--ray {address}: cannot connect ({exc})") from None
    cuda = getattr(task.options, "device", "cpu") == "cuda"
    remote = ray.remote(_ray_task).options(num_cpus=threads, num_gpus=1 if cuda else 0,
                                           max_retries=RAY_MAX_RETRIES)
    slots = limit or 2 * max(1, int(ray.cluster_resources().get("CPU", 1) // threads))
    queue = deque(jobs)
    flight: dict = {}
    try:
        while queue or flight:
            while queue and len(flight) < slots:
                job = queue.popleft()
                try:
                    payload = _ray_payload(Path(job.input))
                except AsmrError as exc:
                    done(job, ("failed", None, str(exc)))
                    continue
                flight[remote.remote(job, task, payload, threads)] = job
            if not flight:
                continue
            ready, _ = ray.wait(list(flight), num_returns=1)
            for ref in ready:
                job = flight.pop(ref)
                try:
                    reply = ray.get(ref)
                except Exception as exc:  # the task's worker or node was lost
                    reply = ("failed", None, f"{job.input}: Ray task failed ({type(exc).__name__}: "
                                             f"{str(exc).splitlines()[0] if str(exc) else ''})")
                done(job, reply)
    finally:
        for ref in flight:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()


# -- the batch --------------------------------------------------------------------------------

def _write(job: Job, reply) -> FileResult:
    status, data, info = reply
    if status != "ok":
        return FileResult(job.input, job.output, "failed", error=info)
    from ..io.media import atomic_output

    out = Path(job.output)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(out) as tmp:
            tmp.write_bytes(data)
    except (AsmrError, OSError) as exc:
        return FileResult(job.input, job.output, "failed", error=f"{job.input}: {exc}")
    return FileResult(job.input, job.output, "ok", {**info, "output": job.output})


def run_batch(batch: Batch, task: Task, *, jobs: int | None = None, threads: int | None = None,
              ray: str | None = None, on_result: Callable[[FileResult], None] | None = None) -> list[FileResult]:
    """Every job of the batch, each result passed to on_result as it comes (outputs written
    by then); a failure is a result, never an exception. Ctrl-C (KeyboardInterrupt) stops
    every worker and propagates; outputs already written stay, whole."""
    results: list[FileResult] = []

    def record(r: FileResult) -> None:
        results.append(r)
        if on_result is not None:
            on_result(r)

    for r in batch.settled:
        record(r)
    if not batch.jobs:
        return results

    def done(job: Job, reply) -> None:
        record(_write(job, reply))

    if ray is not None:
        _run_ray(batch.jobs, task, ray, threads or 1, jobs, done)
    else:
        workers, per_worker = worker_plan(len(batch.jobs), jobs, threads)
        _run_local(batch.jobs, task, workers, per_worker, done)
    return results


def summarize(results: list[FileResult], seconds: float) -> dict:
    """The final `--json` object."""
    count = {s: sum(r.status == s for r in results) for s in ("ok", "skipped", "failed")}
    return {"summary": True, "files": len(results), **count, "seconds": round(seconds, 3),
            "failures": [{"input": r.input, "error": r.error} for r in results if r.status == "failed"]}


def encode_many(inputs: Iterable, output_dir: Path | str | None = None, options=None, *,
                frames: str | None = None, recursive: bool = False, force: bool = False,
                jobs: int | None = None, threads: int | None = None, ray: str | None = None,
                on_result: Callable[[FileResult], None] | None = None) -> list[FileResult]:
    """`asmr encode` over many inputs (options: api.EncodeOptions); one result per file."""
    from ..api import EncodeOptions

    batch = plan_batch("encode", inputs, output_dir, recursive=recursive, force=force)
    return run_batch(batch, Task("encode", options or EncodeOptions(), frames), jobs=jobs, threads=threads,
                     ray=ray, on_result=on_result)


def decode_many(inputs: Iterable, output_dir: Path | str | None = None, options: DecodeOptions | None = None,
                *, recursive: bool = False, force: bool = False, jobs: int | None = None,
                threads: int | None = None, ray: str | None = None, fmt: str | None = None,
                on_result: Callable[[FileResult], None] | None = None) -> list[FileResult]:
    """`asmr decode` over many .asmr files: images to .png, clips to .mp4 (or `fmt`, as
    `--format`: api.files.output_formats)."""
    batch = plan_batch("decode", inputs, output_dir, recursive=recursive, force=force, fmt=fmt)
    return run_batch(batch, Task("decode", options or DecodeOptions()), jobs=jobs, threads=threads,
                     ray=ray, on_result=on_result)
