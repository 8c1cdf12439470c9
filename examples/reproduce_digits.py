"""The main job: the paper's comparison on scikit-learn's digits, offline, on a CPU.

    python examples/reproduce_digits.py            # about 10 minutes on 2 cores

Trains the ODE, additive, multiplicative and dropout models with
examples/train.py's pipeline, evaluates clean, test-time-noise (TTN) and L2 PGD
accuracy (one noise sample per gradient as the authors, and EOT over several),
prints a Table-1-style table and writes OUT/table.md, OUT/summary.json and
the figures OUT/figure1_toy.png, OUT/figure3_pgd.png, OUT/figure4_perturbation.png.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


import train  # noqa: E402
from keras_nsde import data, evaluation  # noqa: E402
from keras_nsde.evaluation import figures  # noqa: E402

DIFFUSIONS = ("none", "additive", "multiplicative", "dropout")
LABELS = {"none": "ODE", "additive": "additive", "multiplicative": "multiplicative", "dropout": "dropout"}


def table(rows, epsilons):
    """Markdown table: one row per model, accuracies in %."""
    eps = [e for e in epsilons if e > 0]
    header = ["model", "sigma", "clean", "TTN"] + [f"PGD {e:g}" for e in eps] + [f"PGD+EOT {e:g}" for e in eps]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [LABELS[r["diffusion"]], f"{r['sigma']:g}" if r["sigma"] is not None else "-",
                 f"{100 * r['clean_accuracy']:.1f}", f"{100 * r['ttn_accuracy']:.1f}" if r["ttn_samples"] else "-"]
        cells += [f"{100 * r['pgd'][e]:.1f}" for e in eps] + [f"{100 * r['pgd_eot'][e]:.1f}" for e in eps]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/digits")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--pgd-steps", type=int, default=20)
    parser.add_argument("--pgd-examples", type=int, default=100)
    parser.add_argument("--pgd-eps", type=float, nargs="+", default=[0.0, 0.5, 1.0, 1.5])
    parser.add_argument("--eot-samples", type=int, default=4)
    parser.add_argument("--ttn-samples", type=int, default=20)
    parser.add_argument("--verbose", type=int, default=2)
    args = parser.parse_args()

    os.makedirs(args.out, exist_ok=True)
    rows, models = [], {}
    for diffusion in DIFFUSIONS:
        print(f"\n== {LABELS[diffusion]} ==", flush=True)
        run_args = train.parse_args([
            "--dataset", "digits", "--diffusion", diffusion, "--epochs", str(args.epochs),
            "--pgd-steps", str(args.pgd_steps), "--pgd-examples", str(args.pgd_examples),
            "--eot-samples", str(args.eot_samples), "--ttn-samples", str(args.ttn_samples),
            "--verbose", str(args.verbose), "--out", os.path.join(args.out, diffusion),
            "--pgd-eps", *map(str, args.pgd_eps),
        ])
        models[diffusion], results = train.run(run_args)
        rows.append(results)

    markdown = table(rows, args.pgd_eps)
    print("\nDigits (scikit-learn, 360 test images; PGD on the first "
          f"{args.pgd_examples}, L2, {args.pgd_steps} steps; accuracy %)\n\n" + markdown)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(markdown + "\n")
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(rows, f, indent=1)

    figures.plot_toy(os.path.join(args.out, "figure1_toy.png"))
    curves = {f"{LABELS[r['diffusion']]} PGD": r["pgd"] for r in rows}
    curves.update({f"{LABELS[r['diffusion']]} PGD+EOT": r["pgd_eot"] for r in rows if r["diffusion"] != "none"})
    figures.plot_accuracy_vs_epsilon(os.path.join(args.out, "figure3_pgd.png"), curves)

    x, y = data.digits_arrays("test")
    x, y = x[:64], y[:64]
    growth = {}
    for diffusion in ("none", "dropout"):
        x_adv = evaluation.pgd_attack(models[diffusion], x, y, epsilon=1.0, steps=args.pgd_steps)
        growth[LABELS[diffusion]] = evaluation.perturbation_growth(models[diffusion], x, x_adv, noise_seed=0)
    figures.plot_perturbation_growth(os.path.join(args.out, "figure4_perturbation.png"), growth)
    print(f"\nWrote {args.out}/table.md, summary.json and figures 1, 3, 4.")


if __name__ == "__main__":
    main()
