"""The window-step loop of an image's fit (issue 22), and the helper process that computes
one window of each pair on a second core.

Each step trains one window (windows.draw_window): the loss distortion + lam * the window's
bits / its pixels, one Adam step of the networks, and the window's latents moved with their
own gradient (WindowAdam). With `cfg.windows` = 2, steps come in pairs whose two gradients
are computed on the same weights, so the second step's is one update late; a helper process
computes that second gradient while this process computes the first (the same function on
the same shared weights, one thread each, so the same floats either way: a fit's bytes do
not depend on whether the helper ran; until it has started, this process computes both).
docs/rate-distortion.md ("Two cores") has the measurements.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.spawn
import signal
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from .schedule import Progress, Schedule
from .windows import WindowAdam, draw_window, soft_round, window_cells

Cells = list[tuple[int, int, int, int]]


@dataclass(frozen=True)
class Phase:
    """What a step trains with: true rounding (hard), soft rounding at `temperature` with
    noise of `noise` steps between the two roundings, or (temperature None) uniform noise."""

    hard: bool
    temperature: float | None
    noise: float
    lam: float


@dataclass(frozen=True)
class Window:
    rows: tuple[int, int]
    cols: tuple[int, int]
    factor: float  # the window's bits -> an unbiased estimate of the image's
    seed: int      # of the window's noise


@dataclass
class WindowGrads:
    nets: list[torch.Tensor]
    latents: list[torch.Tensor]  # per level, on `cells`
    cells: Cells
    mse: float
    bits: float  # the whole image's, estimated
    leaves: list[torch.Tensor] | None = None  # the window's latents (this process's windows)


def window_grads(model, nets: list[torch.Tensor], target: torch.Tensor, win: Window, phase: Phase,
                 device: str = "cpu") -> WindowGrads:
    """One window's loss and its gradients for the networks `nets` and the window's latents."""
    cells = window_cells(model.layout, win.rows, win.cols)
    leaves = [model.latents[lv][:, r0:r1, c0:c1].detach().clone().requires_grad_()
              for lv, (r0, r1, c0, c1) in enumerate(cells)]
    if phase.hard:
        zs = [z + (torch.round(z) - z).detach() for z in leaves]
    else:
        gen = torch.Generator().manual_seed(win.seed)
        noise = [torch.rand(z.shape, generator=gen).to(device) - 0.5 for z in leaves]
        t = phase.temperature
        if t is None:
            zs = [z + u for z, u in zip(leaves, noise)]
        else:  # C3 / Cool-chic: soft round, noise, soft round again
            zs = [soft_round(soft_round(z, t) + phase.noise * u, t) for z, u in zip(leaves, noise)]
    (r0, r1), (c0, c1) = win.rows, win.cols
    out = model.render_window(zs, cells, win.rows, win.cols)
    ref = target[:, r0:r1, c0:c1].reshape(target.shape[0], -1).to(device)
    mse = ((out - ref) ** 2).mean()
    bits = model.window_rate(zs, cells, win.rows, win.cols)
    grads = torch.autograd.grad(mse + phase.lam * bits / out.shape[1], nets + leaves)
    return WindowGrads(list(grads[:len(nets)]), list(grads[len(nets):]), cells, float(mse.detach()),
                       float(bits.detach()) * win.factor, leaves)


def helper_allowed(threads: int, device: str) -> bool:
    """A helper process only on the CPU, where torch was allowed more than one thread (so
    OMP_NUM_THREADS=1 keeps an encode on one core) and this process may have children."""
    return device == "cpu" and threads > 1 and not multiprocessing.current_process().daemon


def fit_windows(model, nets: list[torch.Tensor], target: torch.Tensor, cfg, sched: Schedule,
                opt: torch.optim.Optimizer, gen: torch.Generator, progress: Progress | None,
                device: str = "cpu", helper: bool = False) -> int:
    """The window steps of `model` until the schedule ends; returns the steps taken."""
    layout = model.layout
    latent_opt = WindowAdam(list(model.latents))
    aide = Helper(model, nets, target, cfg.window_pixels) if helper and cfg.windows > 1 else None
    sched.waiting = aide is not None  # the first estimate counts on the helper's pace
    try:
        step = 0
        while step < sched.total:
            count = min(cfg.windows, sched.total - step)
            phases = [_phase(cfg, sched, step + j) for j in range(count)]
            wins = [Window(*draw_window(layout, cfg.window_pixels, gen),
                           int(torch.randint(0, 1 << 62, (1,), generator=gen))) for _ in range(count)]
            sent = aide is not None and count > 1 and aide.submit(wins[1], phases[1])
            if sched.waiting and (sent or aide is None or not aide.proc.is_alive()):
                sched.repace(step)  # the helper has started (or failed to): the pace from here
            mine = wins[:1] + wins[2:] if sent else wins
            done = [window_grads(model, nets, target, w, ph, device)
                    for w, ph in zip(mine, phases[:1] + phases[2:] if sent else phases)]
            if sent:
                got = aide.collect(wins[1])
                if got is None:  # the helper failed: this process computes its window from now on
                    aide.close()
                    aide = None
                    sched.repace(step)
                    got = window_grads(model, nets, target, wins[1], phases[1], device)
                done.insert(1, got)
            first = done[0]
            if (not phases[0].hard and cfg.steer_from is not None and step >= cfg.steer_from * sched.total
                    and cfg.target_bits and any((step + j) % cfg.steer_every == 0 for j in range(count))):
                with torch.no_grad():  # what the coder would spend on the latents as they are now
                    now = model.window_rate([torch.round(z) for z in first.leaves], first.cells,
                                            wins[0].rows, wins[0].cols) * wins[0].factor
                sched.steer(step, float(now), cfg.steer_aim, cfg.steer_every)
            finished = False
            for d, ph in zip(done, phases):  # one update a window, in order (the later ones one step late)
                ratio = sched.lr_ratio(step)
                for g in opt.param_groups:
                    g["lr"] = g["base"] * ratio
                if ph.hard:
                    sched.steer(step, d.bits, cfg.steer_aim)
                    sched.steer_distortion(step, d.mse)
                for p, grad in zip(nets, d.nets):
                    p.grad = grad
                torch.nn.utils.clip_grad_norm_(nets, 1.0)
                opt.step()
                latent_opt.step(d.latents, d.cells, cfg.latent_lr * ratio)
                step += 1
                finished = sched.finished(step)  # before the report, so that it shows the replanned total
                sched.report(step, torch.tensor(d.mse), progress)
                if finished:
                    break
            if finished:
                break
        if sched.estimated is None:  # the fit ended before the helper started
            sched.estimated = sched.latest
        return step
    finally:
        if aide is not None:
            aide.close()


def _phase(cfg, sched: Schedule, step: int) -> Phase:
    hard = sched.hard(step)
    temperature = sched.temperature(step) if cfg.soft_rounding and not hard else None
    return Phase(hard, temperature, cfg.noise, sched.lam)


class Helper:
    """A process that computes one window a step (window_grads) on the model's weights,
    shared with this process; its gradients come back through shared buffers."""

    def __init__(self, model, nets: list[torch.Tensor], target: torch.Tensor, pixels: int):
        import torch.multiprocessing as tmp

        ctx = tmp.get_context("spawn")
        model.share_memory()
        self.layout = model.layout
        self.shapes = [p.shape for p in nets]
        self.flat = torch.zeros(sum(p.numel() for p in nets)).share_memory_()
        self.grads = [torch.zeros_like(z).share_memory_() for z in model.latents]
        self.ready = False
        self.conn, child = ctx.Pipe()
        shared = target.clone().share_memory_()
        self.proc = ctx.Process(target=_serve, args=(model, shared, self.flat, self.grads, child, pixels), daemon=True)
        with _without_main():
            self.proc.start()
        child.close()

    def submit(self, win: Window, phase: Phase) -> bool:
        """Send a window once the helper has started; False if it has not (or has failed)."""
        try:
            if not self.ready:
                if not self.conn.poll():
                    return False
                self.ready = self.conn.recv() == "ready"
                if not self.ready:
                    return False
            self.conn.send((win, phase))
            return True
        except (EOFError, OSError):
            self.ready = False
            return False

    def collect(self, win: Window) -> WindowGrads | None:
        """The window's gradients (copies), or None if the helper failed."""
        try:
            answer = self.conn.recv()
        except (EOFError, OSError):
            return None
        if not isinstance(answer, tuple):
            return None
        mse, bits = answer
        nets, at = [], 0
        for shape in self.shapes:
            size = shape.numel()
            nets.append(self.flat[at:at + size].reshape(shape).clone())
            at += size
        cells = window_cells(self.layout, win.rows, win.cols)
        latents = [g[:, r0:r1, c0:c1].clone() for g, (r0, r1, c0, c1) in zip(self.grads, cells)]
        return WindowGrads(nets, latents, cells, mse, bits)

    def close(self) -> None:
        try:
            self.conn.send(None)
        except (EOFError, OSError):
            pass
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(timeout=5)
        self.conn.close()


def _serve(model, target: torch.Tensor, flat: torch.Tensor, grads: list[torch.Tensor], conn, pixels: int) -> None:
    """The helper's loop: a window and phase in, its gradients into the shared buffers and
    (mse, bits) out; None ends it. One window first, thrown away, so that the first steps
    it serves run at its usual pace (torch's first autograd pass in a process is slow)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the encode's to handle: it closes the helper
    torch.set_num_threads(1)
    nets = model.network_params()
    warm = Window(*draw_window(model.layout, pixels, torch.Generator().manual_seed(0)), 0)
    window_grads(model, nets, target, warm, Phase(False, 0.3, 1.0, 1e-3))
    conn.send("ready")
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        win, phase = job
        got = window_grads(model, nets, target, win, phase)
        with torch.no_grad():
            torch.cat([g.reshape(-1) for g in got.nets], out=flat)
            for g, part, (r0, r1, c0, c1) in zip(grads, got.latents, got.cells):
                g[:, r0:r1, c0:c1] = part
        conn.send((got.mse, got.bits))


@contextmanager
def _without_main():
    """Start a spawned process without running the parent's main module in it: spawn
    re-imports that module, which would run a caller's unguarded script a second time (the
    helper needs only this package)."""
    prepare = multiprocessing.spawn.get_preparation_data

    def data(name):
        out = prepare(name)
        out.pop("init_main_from_path", None)
        out.pop("init_main_from_name", None)
        return out

    multiprocessing.spawn.get_preparation_data = data
    try:
        yield
    finally:
        multiprocessing.spawn.get_preparation_data = prepare
