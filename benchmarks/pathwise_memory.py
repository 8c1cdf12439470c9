"""Peak memory and time of one training step against num_steps, for each gradient method, on each backend.

    python benchmarks/pathwise_memory.py                                  # TensorFlow, JAX and PyTorch rows
    python benchmarks/pathwise_memory.py --steps 20 200 --backends jax torch

Variants (solver and gradient): "autodiff" and "pathwise" with Euler-Maruyama,
"heun_autodiff" and "reversible" with reversible Heun (Itô interpretation, so
the same SDE). Each (backend, variant, N) runs in a fresh subprocess, so each
peak is its own. The model is one SDEBlock with the paper's default conv
drift (GroupNorm, ReLU, 3x3 time-convolutions) and multiplicative noise on a
(batch, 16, 16, 32) state; the step is compiled as each backend compiles a
training step (a `tf.function`, a `jax.jit` of `stateless_call`, eager
PyTorch): forward, gradient, SGD update.

Memory ("growth", MiB), the best measure each backend offers:
- TensorFlow: the peak bytes held by its allocator during six steps minus
  what it held after tracing (`tf.config.experimental.get_memory_info`);
- JAX: the compiled step's temporaries (`memory_analysis().temp_size_in_bytes`);
- PyTorch: the process's peak RSS during six steps minus its RSS before them
  (no CPU allocator statistics), with glibc's mmap threshold fixed at 128 KiB
  (`MALLOC_MMAP_THRESHOLD_`), so every freed tensor of 128 KiB or more goes
  back to the system (glibc otherwise raises the threshold after the first
  such free and keeps later blocks in its heap, and the RSS no longer
  follows the tensors alive).
The process's peak-RSS growth is reported beside it for every backend.
"""

import argparse
import json
import os
import subprocess
import sys
import time

CHILD_FLAG = "--child"
BACKENDS = ("tensorflow", "jax", "torch")
VARIANTS = {  # name: (solver, gradient method)
    "autodiff": ("euler_maruyama", "autodiff"),
    "pathwise": ("euler_maruyama", "pathwise"),
    "heun_autodiff": ("reversible_heun_ito", "autodiff"),
    "reversible": ("reversible_heun_ito", "reversible"),
}
REPEATS = 6


def process_peak_mib():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_current_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_block(variant, num_steps, size, channels, checkpoints):
    import keras_nsde

    solver, gradient = VARIANTS[variant]
    if solver == "reversible_heun_ito":
        solver = keras_nsde.solvers.ReversibleHeun(interpretation="ito")
    if gradient == "pathwise":
        gradient = keras_nsde.gradients.Pathwise(checkpoints)
    block = keras_nsde.SDEBlock(diffusion="multiplicative", sigma=0.5, num_steps=num_steps, solver=solver, gradient=gradient, seed=0)
    block.build((None, size, size, channels))
    return block


def timed(step):
    """Median seconds of REPEATS - 1 calls of `step()` after a first one."""
    import numpy as np

    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def measure_tensorflow(block, x):
    import keras
    import tensorflow as tf

    device = "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"
    optimizer = keras.optimizers.SGD(0.01)
    optimizer.build(block.trainable_variables)
    x = tf.constant(x)

    @tf.function
    def train_step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(block(x, training=True)))
        optimizer.apply_gradients(zip(tape.gradient(loss, block.trainable_variables), block.trainable_variables))
        return loss

    train_step.get_concrete_function(x)
    tf.config.experimental.reset_memory_stats(device)
    tensors_before, process_before = tf.config.experimental.get_memory_info(device)["current"] / 2**20, process_peak_mib()
    step_s = timed(lambda: float(train_step(x)))
    growth = tf.config.experimental.get_memory_info(device)["peak"] / 2**20 - tensors_before
    return {"growth_mib": growth, "process_growth_mib": process_peak_mib() - process_before, "step_s": step_s}


def measure_jax(block, x):
    import jax
    import jax.numpy as jnp

    trainable = [v.value for v in block.trainable_variables]
    non_trainable = [v.value for v in block.non_trainable_variables]

    def loss_fn(trainable, non_trainable, x):
        y, non_trainable = block.stateless_call(trainable, non_trainable, x, training=True)
        return jnp.mean(jnp.square(y)), non_trainable

    @jax.jit
    def train_step(trainable, non_trainable, x):
        (loss, non_trainable), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable, non_trainable, x)
        return loss, [w - 0.01 * g for w, g in zip(trainable, grads)], non_trainable

    x = jnp.asarray(x)
    compiled = train_step.lower(trainable, non_trainable, x).compile()
    temporaries = compiled.memory_analysis().temp_size_in_bytes / 2**20
    process_before = process_peak_mib()
    state = [trainable, non_trainable]

    def step():
        loss, state[0], state[1] = compiled(state[0], state[1], x)
        float(loss)

    step_s = timed(step)
    return {"growth_mib": temporaries, "process_growth_mib": process_peak_mib() - process_before, "step_s": step_s}


def measure_torch(block, x):
    import torch

    parameters = [v.value for v in block.trainable_variables]
    x = torch.as_tensor(x)

    def step():
        loss = torch.mean(torch.square(block(x, training=True)))
        grads = torch.autograd.grad(loss, parameters)
        with torch.no_grad():
            for parameter, grad in zip(parameters, grads):
                parameter.sub_(0.01 * grad)
        float(loss)

    before = process_current_mib()
    step_s = timed(step)
    growth = process_peak_mib() - before
    return {"growth_mib": growth, "process_growth_mib": growth, "step_s": step_s}


def measure(variant, num_steps, batch, size, channels, checkpoints):
    """Runs in the child (KERAS_BACKEND set): the step's memory growth (MiB) and median time (s)."""
    import keras
    import numpy as np

    block = make_block(variant, num_steps, size, channels, checkpoints)
    x = np.random.default_rng(0).normal(size=(batch, size, size, channels)).astype("float32")
    return {"tensorflow": measure_tensorflow, "jax": measure_jax, "torch": measure_torch}[keras.backend.backend()](block, x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50, 100, 200])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--checkpoints", type=int, default=None, help="pathwise checkpoints (None: ceil(sqrt(N)))")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()

    rows = []
    for backend in args.backends:
        for num_steps in args.steps:
            for variant in args.variants:
                spec = [variant, num_steps, args.batch, args.size, args.channels, args.checkpoints]
                result = subprocess.run(
                    [sys.executable, __file__, CHILD_FLAG, json.dumps(spec)],
                    capture_output=True, text=True, check=True,
                    env={**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
                         "TF_CPU_ALLOCATOR_USE_BFC": "true",  # TensorFlow's pooled allocator keeps peak statistics
                         "MALLOC_MMAP_THRESHOLD_": "131072"},  # PyTorch's RSS follows its tensors (see above)
                )
                row = {"backend": backend, "variant": variant, "num_steps": num_steps,
                       **json.loads(result.stdout.strip().splitlines()[-1])}
                rows.append(row)
                print(f"{backend:10s} N={num_steps:4d} {variant:13s} growth {row['growth_mib']:8.1f} MiB "
                      f"(process {row['process_growth_mib']:8.1f} MiB)  step {row['step_s'] * 1000:8.1f} ms", flush=True)
    for backend in args.backends:
        report([r for r in rows if r["backend"] == backend], backend, args.steps, args.variants)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


def report(rows, backend, steps, variants):
    by_key = {(r["variant"], r["num_steps"]): r for r in rows}
    names = [v for v in VARIANTS if v in variants]
    print(f"\n{backend}:\n| N | " + " | ".join(f"{v} growth (MiB)" for v in names) + " | "
          + " | ".join(f"{v} step (ms)" for v in names) + " |")
    print("|---|" + "---|" * (2 * len(names)))
    for n in steps:
        cells = [f"{by_key[(v, n)]['growth_mib']:.1f}" for v in names] + [f"{by_key[(v, n)]['step_s'] * 1000:.0f}" for v in names]
        print(f"| {n} | " + " | ".join(cells) + " |")
    first, last = steps[0], steps[-1]
    print(f"Growth from N={first} to N={last}: " + ", ".join(
        f"{v} {by_key[(v, last)]['growth_mib'] / by_key[(v, first)]['growth_mib']:.2f}x" for v in names))
    if "autodiff" in names:
        print(f"At N={last}, growth and step time against autodiff: " + ", ".join(
            f"{v} {by_key[(v, last)]['growth_mib'] / by_key[('autodiff', last)]['growth_mib']:.3f} / "
            f"{by_key[(v, last)]['step_s'] / by_key[('autodiff', last)]['step_s']:.2f}" for v in names if v != "autodiff"))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        print(json.dumps(measure(*json.loads(sys.argv[2]))))
    else:
        main()
