"""Where a keras_nsde training step's time goes on the Keras backend KERAS_BACKEND names.

    KERAS_BACKEND=torch python benchmarks/profile_step.py --problem vector --tool torch
    KERAS_BACKEND=torch python benchmarks/profile_step.py --problem cifar --batch 8 --tool python
    KERAS_BACKEND=jax python benchmarks/profile_step.py --problem vector --tool python

Problems: "vector" is benchmarks/peers.py's vector-state SDE (keras_nsde's
autodiff row, `train_on_batch`); "cifar" is the paper's CIFAR-10 model of
benchmarks/step_time.py (multiplicative noise, sigma 1.5, SGD with momentum).
Tools: "torch" prints torch.profiler's operator table (self CPU time, PyTorch
only) and the share of the step's wall time no operator accounts for (Python
and dispatch); "python" prints cProfile's functions by cumulative and by own
time, which shows Keras' per-call machinery, the trainer and the sampler.
"""

import argparse
import cProfile
import os
import pstats
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import keras  # noqa: E402
import numpy as np  # noqa: E402


def vector_step(gradient):
    from peer_rows import keras_rows, problem

    net = keras_rows.model(problem.initial_weights(), gradient)
    net.compile(optimizer="adam", loss="mse")
    h0 = problem.initial_state()
    zeros = np.zeros_like(h0)
    return lambda: net.train_on_batch(h0, zeros)


def cifar_step(gradient, batch):
    from keras_nsde.models import paper_classifier

    rng = np.random.default_rng(0)
    x = rng.uniform(size=(batch, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, batch)
    net = paper_classifier("cifar10", "multiplicative", sigma=1.5, gradient=gradient)
    net.compile(keras.optimizers.SGD(0.1, momentum=0.9), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return lambda: net.train_on_batch(x, y)


def torch_table(step, steps, rows):
    import torch

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        wall = time.perf_counter() - start
    averages = profile.key_averages()
    print(averages.table(sort_by="self_cpu_time_total", row_limit=rows))
    operators = sum(event.self_cpu_time_total for event in averages) / 1e6
    print(f"wall {1000 * wall / steps:.1f} ms / step under the profiler; operators' self time "
          f"{1000 * operators / steps:.1f} ms / step ({100 * operators / wall:.0f}%); "
          f"the rest ({100 * (1 - operators / wall):.0f}%) is Python, dispatch and the profiler itself")


def python_table(step, steps, rows):
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        step()
    profiler.disable()
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("cumulative").print_stats(rows)
    stats.sort_stats("tottime").print_stats(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=["vector", "cifar"], default="vector")
    parser.add_argument("--gradient", default="autodiff", help="autodiff or reversible (vector), any for cifar")
    parser.add_argument("--batch", type=int, default=8, help="cifar's batch")
    parser.add_argument("--steps", type=int, default=5, help="profiled steps after two warm-up steps")
    parser.add_argument("--tool", choices=["torch", "python"], default="torch")
    parser.add_argument("--rows", type=int, default=30)
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: PyTorch's)")
    args = parser.parse_args()
    if args.threads and keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(args.threads)
    step = vector_step(args.gradient) if args.problem == "vector" else cifar_step(args.gradient, args.batch)
    step()
    step()
    start = time.perf_counter()
    step()
    print(f"one step without a profiler: {1000 * (time.perf_counter() - start):.1f} ms")
    (torch_table if args.tool == "torch" else python_table)(step, args.steps, args.rows)


if __name__ == "__main__":
    main()
