"""The main job: the paper's comparison on scikit-learn's digits, offline, on a CPU.

    python examples/reproduce_digits.py            # about 12 minutes on 2 cores

Trains the ODE, additive, multiplicative and dropout models with
examples/train.py's pipeline, each with --seeds training seeds (the seed fixes
the initial weights, the batch order and the noise), evaluates clean,
test-time-noise (TTN) and L2 PGD accuracy (one noise sample per gradient as the
authors, and EOT over several), prints a Table-1-style table of the means over
seeds with their standard errors, and writes OUT/table.md, OUT/summary.json and
the figures OUT/figure1_toy.png, OUT/figure3_pgd.png, OUT/figure4_perturbation.png.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


import train  # noqa: E402
import keras_nsde  # noqa: E402
from keras_nsde import data, evaluation  # noqa: E402
from keras_nsde.evaluation import figures  # noqa: E402

DIFFUSIONS = ("none", "additive", "multiplicative", "dropout")
LABELS = {"none": "ODE", "additive": "additive", "multiplicative": "multiplicative", "dropout": "dropout"}


def mean_row(runs):
    """One model's runs (one per seed) -> means and standard errors of every accuracy."""
    def stats(values):
        values = np.asarray(values, dtype=float)
        error = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
        return {"mean": float(values.mean()), "se": float(error), "runs": values.tolist()}

    first = runs[0]
    row = {"diffusion": first["diffusion"], "sigma": first["sigma"], "seeds": len(runs), "ttn_samples": first["ttn_samples"]}
    for key in ("clean_accuracy", "ttn_accuracy"):
        row[key] = stats([r[key] for r in runs])
    for key in ("pgd", "pgd_eot"):
        row[key] = {e: stats([r[key][e] for r in runs]) for e in first[key]}
    return row


def cell(stat):
    """'63.2 ± 1.4' (accuracy %, ± one standard error over seeds)."""
    text = f"{100 * stat['mean']:.1f}"
    return text if np.isnan(stat["se"]) else f"{text} ± {100 * stat['se']:.1f}"


def table(rows, epsilons):
    """Markdown table: one row per model, mean accuracy % over seeds ± standard error."""
    eps = [e for e in epsilons if e > 0]
    header = ["model", "sigma", "clean", "TTN"] + [f"PGD {e:g}" for e in eps] + [f"PGD+EOT {e:g}" for e in eps]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [LABELS[r["diffusion"]], f"{r['sigma']:g}" if r["sigma"] is not None else "-",
                 cell(r["clean_accuracy"]), cell(r["ttn_accuracy"]) if r["ttn_samples"] else "-"]
        cells += [cell(r["pgd"][e]) for e in eps] + [cell(r["pgd_eot"][e]) for e in eps]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    keras_nsde.use_pooled_cpu_allocator()  # before any tensor exists
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/digits")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=2, help="training seeds per model (the table shows means)")
    parser.add_argument("--pgd-steps", type=int, default=20)
    parser.add_argument("--pgd-examples", type=int, default=200)
    parser.add_argument("--pgd-eps", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument("--eot-samples", type=int, default=4)
    parser.add_argument("--ttn-samples", type=int, default=20)
    parser.add_argument("--sigma", type=float, default=None, help="noise level of every noisy model (default 0.5)")
    parser.add_argument("--num-steps", type=int, default=11)
    parser.add_argument("--subset", type=int, default=None, help="train on the first N images only (smoke tests)")
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args(argv)
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1. Received: --seeds={args.seeds}")

    os.makedirs(args.out, exist_ok=True)
    rows, runs, models = [], [], {}
    for diffusion in DIFFUSIONS:
        model_runs = []
        for seed in range(args.seeds):
            print(f"\n== {LABELS[diffusion]}, seed {seed} ==", flush=True)
            run_args = train.parse_args([
                "--dataset", "digits", "--diffusion", diffusion, "--epochs", str(args.epochs), "--seed", str(seed),
                "--num-steps", str(args.num_steps), "--pgd-steps", str(args.pgd_steps),
                "--pgd-examples", str(args.pgd_examples), "--eot-samples", str(args.eot_samples),
                "--ttn-samples", str(args.ttn_samples), "--verbose", str(args.verbose),
                "--out", os.path.join(args.out, diffusion, f"seed_{seed}"), "--pgd-eps", *map(str, args.pgd_eps),
                *(["--subset", str(args.subset)] if args.subset else []),
                *(["--sigma", str(args.sigma)] if args.sigma is not None and diffusion != "none" else []),
            ])
            model, results = train.run(run_args)
            models.setdefault(diffusion, model)
            model_runs.append({"seed": seed, **results})
        runs.extend(model_runs)
        rows.append(mean_row(model_runs))

    markdown = table(rows, args.pgd_eps)
    print(f"\nDigits (scikit-learn, 360 test images; mean over {args.seeds} training seeds ± standard error; "
          f"PGD on the first {args.pgd_examples}, L2, {args.pgd_steps} steps; accuracy %)\n\n" + markdown)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(markdown + "\n")
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump({"means": rows, "runs": runs}, f, indent=1)

    figures.plot_toy(os.path.join(args.out, "figure1_toy.png"))
    def means(accuracies):  # {epsilon: stats} -> {epsilon: mean}
        return {e: stat["mean"] for e, stat in accuracies.items()}

    curves = {f"{LABELS[r['diffusion']]} PGD": means(r["pgd"]) for r in rows}
    curves.update({f"{LABELS[r['diffusion']]} PGD+EOT": means(r["pgd_eot"]) for r in rows if r["diffusion"] != "none"})
    figures.plot_accuracy_vs_epsilon(os.path.join(args.out, "figure3_pgd.png"), curves)

    x, y = data.digits_arrays("test")
    x, y = x[:64], y[:64]
    growth = {}
    for diffusion in ("none", "dropout"):
        x_adv = evaluation.pgd_attack(models[diffusion], x, y, epsilon=1.0, steps=args.pgd_steps)
        growth[LABELS[diffusion]] = evaluation.perturbation_growth(models[diffusion], x, x_adv, noise_seed=0)
    figures.plot_perturbation_growth(os.path.join(args.out, "figure4_perturbation.png"), growth)
    print(f"\nWrote {args.out}/table.md, summary.json and figures 1, 3, 4.")
    return rows


if __name__ == "__main__":
    main()
