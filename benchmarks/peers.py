"""One training step of a vector-state neural SDE: keras_nsde on each Keras backend against torchsde, diffrax
and the loop written by hand in each framework.

    python benchmarks/peers.py                              # every row, --steps 10 --repeats 5
    python benchmarks/peers.py --rows torch-loop torchsde-sdeint keras_nsde-torch-autodiff --steps 5
    python benchmarks/peers.py --json peers.json --no-memory --threads 1
    python benchmarks/peers.py --rows keras_nsde-torch-autodiff --compare main=../main   # A/B of two trees

The problem (benchmarks/peer_rows/problem.py): state 32, batch 256, 50 steps on
[0, 1], an MLP drift (33 -> 64 -> 64 -> 32, tanh, time appended to every
layer's input, as `keras_nsde.MLPDrift`) and a learned diagonal diffusion
G_i(h) = softplus(a_i h_i + b_i); loss = mean(h(1)^2), one Adam step.
Euler-Maruyama with backpropagation through the steps ("autodiff"), and
reversible Heun with its O(1)-memory adjoint ("reversible"). The peers take
the SDE as they are documented: torchsde `sdeint(method="euler")` and
`sdeint_adjoint(method="reversible_heun", adjoint_method="adjoint_reversible_heun")`
with their default `BrownianInterval`; diffrax `diffeqsolve(Euler)` on a
`VirtualBrownianTree`, vmapped over the batch, with its default adjoint
(`RecursiveCheckpointAdjoint`) and with `DirectAdjoint`.

Rows. torch-loop, jax-loop, tf-loop: the loop written by hand, each
framework's floor (PyTorch eager with `torch.optim.Adam`; JAX a `lax.scan` in
one `jax.jit` with optax's Adam, or the same update written out when optax is
missing; TensorFlow a Python loop unrolled in one `tf.function`, Adam written
out). torchsde-sdeint, torchsde-adjoint, diffrax, diffrax-direct: the peers.
keras_nsde-<backend>-<autodiff|reversible>: `SDEBlock(MLPDrift, SoftplusDiagonal)`
in a `keras.Sequential`, `compile(optimizer="adam", loss="mse")` against
zeros, `train_on_batch`; the "-ctl" rows take the same model through the
custom training loop of Keras' guide for the backend. Ratios: against the
framework's loop, and against the peer (torchsde-sdeint for autodiff on
PyTorch, torchsde-adjoint for reversible; diffrax for both on JAX).

How it measures. Every framework runs in a worker process of its own (a
process holds one Keras backend); each worker builds its rows and takes two
warm-up steps (the first compiles). Then the repetitions go round-robin over
all rows, `--steps` timed steps each, one row at a time while the other
workers wait, so changes in the machine's load hit every row alike. A row's
time is the median over all its timed steps; the spread is the range of the
per-repetition medians. Compare ratios within one run.

Memory: the growth of the process's resident set during one training step
after the warm-up (the peak, /proc/self/status VmHWM reset through
/proc/self/clear_refs, minus the resident set before the step; the median of
3 steps), in a separate process per row whose glibc maps every block of 4 KiB
or more on its own and unmaps it when freed (MALLOC_MMAP_THRESHOLD_), so the
step's peak is not hidden by memory the warm-up left in malloc's free lists.
It counts what a step holds at its peak beyond the weights: the activations
kept for the backward pass and the temporaries. For the jitted JAX loops XLA's
own figure, the compiled step's temporary buffer (`memory_analysis()`), is
shown next to it. (TensorFlow's `get_memory_info("CPU:0")` does not see the
small tensors of this problem, and PyTorch has no CPU allocator statistics.)
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOCOL = "PEERS "  # the prefix of a worker's protocol lines on stdout
WARMUP_STEPS = 2
SINGLE_THREADED_XLA = "--xla_cpu_multi_thread_eigen=false"
MEMORY_STEPS = 3

# The repository's keras_nsde (or, in a worker of a --compare row, that tree's), not an installed copy,
# and the rows next to this file.
sys.path[:0] = [os.environ.get("PEERS_KERAS_NSDE") or os.path.dirname(HERE), HERE]

FLOORS = {"torch": "torch-loop", "jax": "jax-loop", "tensorflow": "tf-loop"}
PEERS = {("torch", "autodiff"): "torchsde-sdeint", ("torch", "reversible"): "torchsde-adjoint",
         ("jax", "autodiff"): "diffrax", ("jax", "reversible"): "diffrax"}


def catalogue():
    """{row: (framework, the framework's hand-written loop, the peer)} in table order."""
    rows = {}
    for framework, peer_rows in (
        ("torch", ["torch-loop", "torchsde-sdeint", "torchsde-adjoint"]),
        ("jax", ["jax-loop", "diffrax", "diffrax-direct"]),
        ("tensorflow", ["tf-loop"]),
    ):
        floor = FLOORS[framework]
        for name in peer_rows:
            rows[name] = (framework, None if name == floor else floor, None)
        for gradient in ("autodiff", "reversible"):
            for suffix in ("", "-ctl"):
                rows[f"keras_nsde-{framework}-{gradient}{suffix}"] = (framework, floor, PEERS.get((framework, gradient)))
    return rows


def row_info(name):
    """(framework, floor, peer) of a row, also of a --compare row "<keras_nsde row>@<label>"."""
    return catalogue()[name.split("@")[0]]


# ---------------------------------------------------------------------------------------------- worker side


def limit_threads(framework):
    """Applies --threads (PEERS_THREADS) to the framework's thread pools, before it runs anything."""
    threads = os.environ.get("PEERS_THREADS")
    if not threads:
        return
    if framework == "torch":
        import torch

        torch.set_num_threads(int(threads))
        torch.set_num_interop_threads(int(threads))
    elif framework == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    # JAX: XLA_FLAGS, set by the parent before the worker imports jax (one thread only).


def row_builders(framework):
    """{row: build(weights, h0) -> step} of one framework (imports only that framework)."""
    limit_threads(framework)
    from peer_rows import keras_rows

    builders = keras_rows.rows(framework)
    if framework == "torch":
        from peer_rows import torch_rows

        builders.update(torch_rows.ROWS)
    elif framework == "jax":
        from peer_rows import jax_rows

        builders.update(jax_rows.ROWS)
    else:
        from peer_rows import tensorflow_rows

        builders.update(tensorflow_rows.ROWS)
    return builders


def versions(framework):
    import importlib

    import keras

    names = {"torch": ["torch", "torchsde"], "jax": ["jax", "diffrax", "equinox", "optax"], "tensorflow": ["tensorflow"]}
    import keras_nsde

    found = {"keras": keras.__version__, "keras_nsde": os.path.dirname(os.path.dirname(keras_nsde.__file__))}
    for name in names[framework]:
        try:
            found[name] = importlib.import_module(name).__version__
        except ImportError:
            found[name] = None
    if framework == "jax":
        from peer_rows import jax_rows

        found["jax optimizer"] = jax_rows.OPTIMIZER
    return found


def send(message):
    print(PROTOCOL + json.dumps(message), flush=True)


def build_rows(framework, names):
    from peer_rows import problem

    weights, h0 = problem.initial_weights(), problem.initial_state()
    builders = row_builders(framework)
    steps, report = {}, {}
    for name in names:
        step = builders[name.split("@")[0]](weights, h0)
        warmup, losses = [], []
        for _ in range(WARMUP_STEPS):
            start = time.perf_counter()
            losses.append(step())
            warmup.append(time.perf_counter() - start)
        steps[name] = step
        report[name] = {"warmup_s": warmup, "first_loss": losses[0]}
    return steps, report


def timing_worker(framework, names):
    """Builds and warms up `names`, then times steps on request: {"row", "steps"} -> {"times"}."""
    steps, report = build_rows(framework, names)
    send({"ready": report, "versions": versions(framework)})
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            return
        step, times = steps[request["row"]], []
        for _ in range(request["steps"]):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        send({"times": times})


def resident_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def memory_worker(framework, name):
    """Peak resident-set growth of one step of `name` (MiB), and the framework's own figure where it has one."""
    import gc

    steps, report = build_rows(framework, [name])
    step = steps[name]
    rss = []
    for _ in range(MEMORY_STEPS):
        gc.collect()
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")  # resets VmHWM to the current resident set
        before = resident_kib("VmRSS")
        step()
        rss.append((resident_kib("VmHWM") - before) / 1024)
    compiled = getattr(step, "jitted", None)
    xla_temp = compiled().memory_analysis().temp_size_in_bytes / 2**20 if compiled else None
    send({"rss_mib": statistics.median(rss), "xla_temp_mib": xla_temp})


# ---------------------------------------------------------------------------------------------- parent side


class Worker:
    """A worker process for one framework's rows; stderr goes to a temporary file, shown if it fails."""

    def __init__(self, framework, names, memory=False, threads=None, source=None):
        self.framework, self.names = framework, names
        self.log = tempfile.TemporaryFile(mode="w+")
        env = {**os.environ, "KERAS_BACKEND": framework, "TF_CPP_MIN_LOG_LEVEL": "3", "PEERS_KERAS_NSDE": source or ""}
        if threads:
            env.update(PEERS_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
            if threads == 1:
                env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + SINGLE_THREADED_XLA).strip()
        if memory:
            env["MALLOC_MMAP_THRESHOLD_"] = "4096"
        mode = ["--memory-worker", framework, names[0]] if memory else ["--worker", framework, *names]
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=os.getcwd(), env=env,
        )

    def receive(self):
        for line in self.process.stdout:
            if line.startswith(PROTOCOL):
                return json.loads(line[len(PROTOCOL):])
        self.log.seek(0)
        raise RuntimeError(f"the {self.framework} worker ({', '.join(self.names)}) failed:\n{self.log.read()[-4000:]}")

    def request(self, message):
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()
        return self.receive()

    def close(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"quit": True}) + "\n")
                self.process.stdin.close()
            except BrokenPipeError:
                pass
            self.process.wait()


def worker_key(name):
    """The worker a row runs in: its framework, and the label of its --compare tree ("" for this repository)."""
    return row_info(name)[0], name.partition("@")[2]


def time_rows(names, steps, repeats, threads=None, sources=None):
    """{row: [seconds of each timed step]} and the workers' reports, repetitions round-robin over the rows."""
    sources = sources or {}
    by_worker = {}
    for name in names:
        by_worker.setdefault(worker_key(name), []).append(name)
    workers = {
        key: Worker(key[0], rows, threads=threads, source=sources.get(key[1])) for key, rows in by_worker.items()
    }
    try:
        ready = {key: worker.receive() for key, worker in workers.items()}
        times = {name: [] for name in names}
        for repeat in range(repeats):
            order = names[repeat % len(names):] + names[: repeat % len(names)]  # rotate the order each repetition
            for name in order:
                times[name].append(workers[worker_key(name)].request({"row": name, "steps": steps})["times"])
                print(f"  repetition {repeat + 1}/{repeats} {name}: {1000 * statistics.median(times[name][-1]):.1f} ms", flush=True)
    finally:
        for worker in workers.values():
            worker.close()
    return times, ready


def measure_memory(names, threads=None, sources=None):
    memory, sources = {}, sources or {}
    for name in names:
        framework, label = worker_key(name)
        worker = Worker(framework, [name], memory=True, threads=threads, source=sources.get(label))
        try:
            memory[name] = worker.receive()
        except RuntimeError as error:
            print(error)
            memory[name] = {"rss_mib": None, "xla_temp_mib": None}
        finally:
            worker.close()
        print(f"  memory {name}: {memory[name]}", flush=True)
    return memory


def summarize(names, times, ready, memory):
    reports = {report_name: report for worker in ready.values() for report_name, report in worker["ready"].items()}
    results = {}
    for name in names:
        per_repeat = [statistics.median(repeat) for repeat in times[name]]
        results[name] = {
            "ms": 1000 * statistics.median([t for repeat in times[name] for t in repeat]),
            "repeat_ms": [1000 * t for t in per_repeat],
            "first_loss": reports[name]["first_loss"],
            "warmup_s": reports[name]["warmup_s"],
            **(memory.get(name) or {}),
        }
    for name in names:
        framework, floor, peer = row_info(name)
        row = results[name]
        row["vs_floor"] = row["ms"] / results[floor]["ms"] if floor in results else None
        row["vs_peer"] = row["ms"] / results[peer]["ms"] if peer in results else None
    return results


def markdown(results, floor_names=FLOORS):
    def number(value, digits=2):
        return "–" if value is None else f"{value:.{digits}f}"

    lines = [
        "| row | ms / step | range of repetition medians | vs framework's loop | vs peer (which) | "
        "step memory MiB (RSS) | XLA temp MiB | first loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in results.items():
        peer = row_info(name)[2]
        vs_peer = "–" if row["vs_peer"] is None else f"{row['vs_peer']:.2f} ({peer})"
        lines.append(
            f"| {name} | {row['ms']:.1f} | {min(row['repeat_ms']):.1f}–{max(row['repeat_ms']):.1f} | "
            f"{number(row['vs_floor'])} | {vs_peer} | {number(row.get('rss_mib'), 1)} | "
            f"{number(row.get('xla_temp_mib'), 1)} | {row['first_loss']:.4f} |"
        )
    return "\n".join(lines)


def main():
    rows = list(catalogue())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="timed steps per row in each repetition")
    parser.add_argument("--repeats", type=int, default=5, help="round-robin repetitions over the rows")
    parser.add_argument("--rows", nargs="+", default=rows, choices=rows, metavar="ROW", help=f"rows to run, of {rows}")
    parser.add_argument("--threads", type=int, help="intra- and inter-op threads of every framework "
                        "(default: each framework's own; 1 also makes XLA single-threaded)")
    parser.add_argument("--compare", nargs="+", default=[], metavar="LABEL=PATH",
                        help="also run the keras_nsde rows on the keras_nsde package under PATH (a directory "
                        "holding keras_nsde/), as rows <row>@LABEL: A/B of two source trees in one run")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-row memory processes")
    parser.add_argument("--json", help="write the configuration and every measured step here")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--memory-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return timing_worker(args.worker[0], args.worker[1:])
    if args.memory_worker:
        return memory_worker(*args.memory_worker)

    names = [name for name in rows if name in args.rows]
    sources = dict(entry.split("=", 1) for entry in args.compare)
    names = [variant for name in names for variant in [name] + [
        f"{name}@{label}" for label in sources if name.startswith("keras_nsde-")]]
    started = datetime.datetime.now().isoformat(timespec="seconds")
    print(f"timing {len(names)} rows: {args.repeats} repetitions of {args.steps} steps", flush=True)
    sources = {label: os.path.abspath(path) for label, path in sources.items()}
    times, ready = time_rows(names, args.steps, args.repeats, args.threads, sources)
    memory = {} if args.no_memory else measure_memory(names, args.threads, sources)
    results = summarize(names, times, ready, memory)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    all_versions = {key: value for worker in ready.values() for key, value in worker["versions"].items()}
    all_versions["keras_nsde"] = os.path.dirname(HERE)
    if sources:
        print("compared: " + ", ".join(f"@{label} = {path}" for label, path in sources.items()))
    print(f"\n{started}; {machine}; {json.dumps(all_versions)}")
    threads = args.threads or "each framework's default"
    print(f"{args.repeats} repetitions x {args.steps} steps per row; threads: {threads}\n")
    print(markdown(results))
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"started": started, "machine": machine, "versions": all_versions, "steps": args.steps,
                       "repeats": args.repeats, "threads": args.threads, "compare": sources, "results": results, "times_s": times}, out, indent=1)


if __name__ == "__main__":
    main()
