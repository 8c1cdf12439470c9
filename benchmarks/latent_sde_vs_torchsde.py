"""keras_nsde's LatentSDE against torchsde's latent SDE example on the same stochastic Lorenz data: final ELBO and time per step.

    python benchmarks/latent_sde_vs_torchsde.py --steps 1000 --backends tensorflow,jax,torch --out runs/lorenz_vs_torchsde
    python benchmarks/latent_sde_vs_torchsde.py --tiny --out /tmp/lorenz_vs_torchsde

Each model runs in its own process, one after the other (a Keras backend is
fixed per process, and the runs do not compete for the CPU): torchsde's
example model (`TorchsdeLatentSDE` below, rewritten minimally from
torchsde's examples/latent_sde_lorenz.py: the same networks, loss,
optimiser, learning-rate decay and KL annealing), then keras_nsde's
`LatentSDE` with examples/latent_sde_lorenz.py's settings on each backend.
All train on the data of examples/latent_sde_lorenz.py (one seed, the same
arrays) for the same number of steps, every step on the whole data set.
Afterwards each model's ELBO (KL weight 1) is estimated with `--samples`
posterior paths per sequence and averaged over the sequences.

The two models are the same: both start the SDE at the first observation
x(t0) (LatentSDE's `initial_state="observed"`: no q(z0), no initial KL, the
latent space is the data space), and both posterior drifts read the context
of the next observation time. What differs: torchsde steps dt = 0.01 (100
steps, interpolating linearly to the observation times), LatentSDE steps
through the observation times (two steps per interval: 98 steps), and
the random numbers differ. Given the same weights and Brownian increments
the two give the same ELBO and gradients to float32 rounding
(tests/test_latent_sde_vs_torchsde.py). Both start from PyTorch's default
initial distribution of weights (LatentSDE's encoder and drift networks use
it); `--same-initial-weights` starts keras_nsde from the very weights of
torchsde's model (`copy_torchsde_weights`). torchsde's Brownian
interval is told the step (`dt=1e-2`; `--torchsde-steps-per-interval k` steps 1/k of
an observation interval instead, LatentSDE's grid for k = 2); without it, its first queries build
the interval's tree and a step takes several times longer.

Each keras_nsde run also writes examples/latent_sde_lorenz.py's figure
(`lorenz_<backend>.png`: posterior paths on the first half of two
sequences, the forecast of the second half) to --out.

Times per step are medians over the steps after the first (which includes
tracing and compilation), measured within one run; PyTorch (torchsde's run
and the PyTorch backend's) uses `--torch-threads` threads.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))


def example_settings(args):
    """examples/latent_sde_lorenz.py's settings (torchsde's data and sizes, or --tiny's) for this run."""
    import latent_sde_lorenz

    return latent_sde_lorenz.parse(["--steps", str(args.steps), "--seed", str(args.seed)] + (["--tiny"] if args.tiny else []))


def run_torchsde(args):
    """torchsde's example trained on the shared data: its ELBO pieces and step times."""
    import torch

    import latent_sde_lorenz

    torch.set_num_threads(args.torch_threads)
    np.random.seed(args.seed)  # torchsde's BrownianInterval draws its entropy from NumPy's global generator
    example = example_settings(args)
    xs, ts = latent_sde_lorenz.lorenz_data(example.batch_size, example.num_times, example.noise_std, seed=args.seed)
    xs, ts = torch.tensor(xs).transpose(0, 1), torch.tensor(ts, dtype=torch.float32)  # time-major, as torchsde's
    dt = 1e-2 if args.torchsde_steps_per_interval is None else float(ts[1] - ts[0]) / args.torchsde_steps_per_interval
    model = initial_torchsde_model(args, example, dt)
    optimizer = torch.optim.Adam(model.parameters(), lr=example.learning_rate)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.999)
    anneal, noise_std = example.kl_anneal_steps, example.noise_std
    step_times = []
    for step in range(1, example.steps + 1):
        start = time.perf_counter()
        optimizer.zero_grad()
        log_pxs, log_ratio = model(xs, ts, noise_std)
        loss = -log_pxs + log_ratio * min(1.0, step / anneal)  # torchsde's LinearScheduler
        loss.backward()
        optimizer.step()
        scheduler.step()
        step_times.append(time.perf_counter() - start)
        if step % 50 == 0 or step == example.steps:
            print(f"torchsde step {step}: log_pxs {log_pxs.item():.2f} log_ratio {log_ratio.item():.3f}", flush=True)
    with torch.no_grad():
        pieces = np.array([[v.item() for v in model(xs, ts, noise_std)] for _ in range(args.samples)])
    log_px, path_kl = pieces.mean(axis=0)
    return summary("torchsde", step_times, log_px, path_kl, 0.0)


def initial_torchsde_model(args, example, dt=1e-2):
    """torchsde's example model with its initial weights for `--seed` (PyTorch's generator seeded with it)."""
    import torch

    from keras_nsde import optional

    torchsde = optional.require("torchsde", extra="bench")
    torch.manual_seed(args.seed)
    return torchsde_model(torch, torchsde)(3, example.context_dim, example.hidden_units, dt)


def torchsde_model(torch, torchsde):
    """torchsde's examples/latent_sde_lorenz.py model (Encoder and LatentSDE), as written there."""
    nn = torch.nn

    class Encoder(nn.Module):
        def __init__(self, input_size, hidden_size, output_size):
            super().__init__()
            self.gru = nn.GRU(input_size=input_size, hidden_size=hidden_size)
            self.lin = nn.Linear(hidden_size, output_size)

        def forward(self, inp):
            out, _ = self.gru(inp)
            return self.lin(out)

    def mlp(inputs, hidden, outputs):
        return nn.Sequential(
            nn.Linear(inputs, hidden), nn.Softplus(), nn.Linear(hidden, hidden), nn.Softplus(), nn.Linear(hidden, outputs)
        )

    class TorchsdeLatentSDE(nn.Module):
        sde_type = "ito"
        noise_type = "diagonal"

        def __init__(self, data_size, context_size, hidden_size, dt=1e-2):
            super().__init__()
            self.dt = dt
            self.encoder = Encoder(data_size, hidden_size, context_size)
            self.f_net = mlp(data_size + context_size, hidden_size, data_size)
            self.h_net = mlp(data_size, hidden_size, data_size)
            self.g_nets = nn.ModuleList(
                [
                    nn.Sequential(nn.Linear(1, hidden_size), nn.Softplus(), nn.Linear(hidden_size, 1), nn.Sigmoid())
                    for _ in range(data_size)
                ]
            )
            self._ctx = None

        def f(self, t, y):
            ts, ctx = self._ctx
            i = min(torch.searchsorted(ts, t, right=True), len(ts) - 1)
            return self.f_net(torch.cat((y, ctx[i]), dim=1))

        def h(self, t, y):
            return self.h_net(y)

        def g(self, t, y):
            y = torch.split(y, split_size_or_sections=1, dim=1)
            return torch.cat([g_net(y_i) for g_net, y_i in zip(self.g_nets, y)], dim=1)

        def forward(self, xs, ts, noise_std):
            ctx = torch.flip(self.encoder(torch.flip(xs, dims=(0,))), dims=(0,))
            self._ctx = (ts, ctx)
            bm = torchsde.BrownianInterval(
                t0=ts[0], t1=ts[-1], size=(xs.shape[1], xs.shape[2] + 1), dtype=xs.dtype, dt=self.dt
            )  # logqp adds one noise channel
            _xs, log_ratio = torchsde.sdeint(self, xs[0], ts, dt=self.dt, logqp=True, method="euler", bm=bm)
            log_pxs = torch.distributions.Normal(loc=_xs, scale=noise_std).log_prob(xs).sum(dim=(0, 2)).mean()
            return log_pxs, log_ratio.sum(dim=0).mean()

    return TorchsdeLatentSDE


def copy_torchsde_weights(torch_model, model):
    """Gives a built `LatentSDE` (observed initial state, data dimension 3) the weights of torchsde's example model.

    Then the two compute the same function: PyTorch's GRU orders its gates
    (reset r, update z, candidate n), Keras' (z, r, candidate); Keras' Dense
    kernels are the transposed nn.Linear weights; torchsde's `g_nets[i]`
    (Linear(1, H), Softplus, Linear(H, 1), Sigmoid) is row i of
    `DiagonalDiffusionNet`'s w1, b1, w2, b2; the encoder's missing-value
    indicator inputs get zero weights (torchsde's encoder has none).
    """

    def numpy(tensor):
        return tensor.detach().cpu().numpy()

    def keras_gates(weights):  # PyTorch's (3H, ...) [r, z, n] -> [z, r, n]
        r, z, n = np.split(numpy(weights), 3, axis=0)
        return np.concatenate([z, r, n], axis=0)

    def assign(variable, value):
        variable.assign(np.asarray(value, "float32").reshape(tuple(variable.shape)))

    gru, cell = torch_model.encoder.gru, model.encoder_gru.cell
    kernel = np.zeros(tuple(cell.kernel.shape), "float32")
    kernel[: gru.input_size] = keras_gates(gru.weight_ih_l0).T
    assign(cell.kernel, kernel)
    assign(cell.recurrent_kernel, keras_gates(gru.weight_hh_l0).T)
    assign(cell.bias, np.stack([keras_gates(gru.bias_ih_l0), keras_gates(gru.bias_hh_l0)]))
    linear_pairs = [(model.encoder_context, torch_model.encoder.lin)]
    for keras_mlp, torch_mlp in ((model.posterior_drift, torch_model.f_net), (model.prior_drift, torch_model.h_net)):
        linear_pairs += zip(keras_mlp.layers, [torch_mlp[0], torch_mlp[2], torch_mlp[4]])
    for dense, linear in linear_pairs:
        assign(dense.kernel, numpy(linear.weight).T)
        assign(dense.bias, numpy(linear.bias))
    diffusion, g_nets = model.diffusion, torch_model.g_nets
    assign(diffusion.w1, np.stack([numpy(g[0].weight)[:, 0] for g in g_nets]))
    assign(diffusion.b1, np.stack([numpy(g[0].bias) for g in g_nets]))
    assign(diffusion.w2, np.stack([numpy(g[2].weight)[0] for g in g_nets]))
    assign(diffusion.b2, np.concatenate([numpy(g[2].bias) for g in g_nets]))


def run_keras_nsde(args):
    """keras_nsde's LatentSDE on this process's Keras backend, with examples/latent_sde_lorenz.py's settings."""
    import keras

    if keras.backend.backend() == "torch":
        import torch

        torch.set_num_threads(args.torch_threads)
    import latent_sde_lorenz

    example = example_settings(args)
    keras.utils.set_random_seed(args.seed)
    xs, ts = latent_sde_lorenz.lorenz_data(example.batch_size, example.num_times, example.noise_std, seed=args.seed)
    model = latent_sde_lorenz.build_model(ts, example)
    if args.same_initial_weights:
        model.build((None,) + xs.shape[1:])
        copy_torchsde_weights(initial_torchsde_model(args, example), model)
    step_times = latent_sde_lorenz.train(model, xs, example.steps, example.learning_rate, verbose=2)
    pieces = latent_sde_lorenz.elbo_pieces(model, xs, samples=args.samples, seed=args.seed)
    k, reconstruction, forecast = latent_sde_lorenz.forecast_second_half(model, xs, ts, example.samples, seed=args.seed)
    os.makedirs(args.out, exist_ok=True)
    figure = os.path.join(args.out, f"lorenz_{keras.backend.backend()}.png")
    latent_sde_lorenz.plot(figure, xs, ts, k, reconstruction, forecast)
    name = f"keras_nsde ({keras.backend.backend()})"
    return summary(name, step_times, pieces["log_likelihood"], pieces["path_kl"], pieces["initial_kl"])


def summary(name, step_times, log_px, path_kl, initial_kl):
    return {
        "model": name,
        "steps": len(step_times),
        "elbo": float(log_px - path_kl - initial_kl),
        "log_likelihood": float(log_px),
        "path_kl": float(path_kl),
        "initial_kl": float(initial_kl),
        "seconds_per_step": float(np.median(step_times[1:] if len(step_times) > 1 else step_times)),
        "first_step_seconds": float(step_times[0]),
    }


def child(args, which, backend=None):
    """Runs one model in a fresh process; its summary."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if backend:
        env["KERAS_BACKEND"] = backend
    command = [sys.executable, os.path.abspath(__file__), "--child", which] + forwarded(args)
    finished = subprocess.run(command, env=env, capture_output=True, text=True)
    sys.stdout.write(finished.stdout[-3000:])
    if finished.returncode != 0:
        raise RuntimeError(f"{which} ({backend}) failed:\n{finished.stderr[-5000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def forwarded(args):
    forwarded_args = ["--steps", str(args.steps), "--samples", str(args.samples), "--seed", str(args.seed),
                      "--torch-threads", str(args.torch_threads), "--out", args.out] + (["--tiny"] if args.tiny else [])
    if args.same_initial_weights:
        forwarded_args.append("--same-initial-weights")
    if args.torchsde_steps_per_interval is not None:
        forwarded_args += ["--torchsde-steps-per-interval", str(args.torchsde_steps_per_interval)]
    return forwarded_args


def table(rows):
    reference = rows[0]
    header = "| model | steps | ELBO | log p(x\\|z) | path KL | z0 KL | ELBO vs torchsde | s/step | time vs torchsde |"
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        gap = (row["elbo"] - reference["elbo"]) / abs(reference["elbo"])
        ratio = row["seconds_per_step"] / reference["seconds_per_step"]
        lines.append(
            f"| {row['model']} | {row['steps']} | {row['elbo']:.1f} | {row['log_likelihood']:.1f} | {row['path_kl']:.2f} "
            f"| {row['initial_kl']:.2f} | {gap:+.1%} | {row['seconds_per_step']:.3f} | {ratio:.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--backends", default="tensorflow", help="comma-separated Keras backends for keras_nsde")
    parser.add_argument("--samples", type=int, default=10, help="posterior paths per sequence for the final ELBO")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-threads", type=int, default=1)
    parser.add_argument("--torchsde-steps-per-interval", type=int, default=None,
                        help="torchsde's step as a fraction of the observation interval (LatentSDE's grid: 2); default dt = 0.01")
    parser.add_argument("--same-initial-weights", action="store_true",
                        help="keras_nsde starts from torchsde's initial weights (needs PyTorch on every backend)")
    parser.add_argument("--out", default="runs/latent_sde_vs_torchsde")
    parser.add_argument("--tiny", action="store_true")
    parser.add_argument("--child", choices=["torchsde", "keras_nsde"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = run_torchsde(args) if args.child == "torchsde" else run_keras_nsde(args)
        print(json.dumps(result))
        return result
    rows = [child(args, "torchsde")] + [child(args, "keras_nsde", b) for b in args.backends.split(",")]
    os.makedirs(args.out, exist_ok=True)
    text = table(rows)
    with open(os.path.join(args.out, "results.md"), "w") as file:
        file.write(text)
    with open(os.path.join(args.out, "results.json"), "w") as file:
        json.dump({"date": time.strftime("%Y-%m-%d"), "torch_threads": args.torch_threads, "rows": rows}, file, indent=2)
    print(text)
    return rows


if __name__ == "__main__":
    main()
