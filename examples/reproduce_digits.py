"""The main job: the paper's robustness comparison on scikit-learn's digits, offline, on a CPU.

    python examples/reproduce_digits.py            # about 12 minutes on 2 cores

Trains the ODE, additive, multiplicative and dropout classifiers with
examples/train.py's pipeline, each with the same --seeds training seeds (a
seed fixes the initial weights, the batch order and the noise, so a model and
the ODE trained with one seed form a pair), and evaluates every model on the
same test images:

- clean accuracy (noise off) and test-time-noise (TTN) accuracy, all 360 test images;
- L2 PGD with one noise sample per gradient (the authors' attack) and PGD+EOT
  (averaging --eot-samples), on a grid of epsilons, the first --pgd-examples
  images; attacked images are classified by the TTN ensemble;
- gradient-free SPSA on the first --spsa-examples images: an SPSA accuracy
  clearly below PGD+EOT's on the same images flags masked gradients.

It prints a table with, for each SDE model, the paired difference to the ODE
(same seeds, same images) and its 95% interval (bootstrap over seeds and
images), and writes OUT/table.md, OUT/summary.json (everything, per seed;
timings apart under "seconds"), OUT/correct.npz (per-image results) and the
figures OUT/figure1_toy.png, OUT/figure3_attacks.png, OUT/figure4_perturbation.png.
The same command on the same machine gives the same results apart from timings.
"""

import argparse
import json
import os
import sys
import time

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import train  # noqa: E402
import keras_nsde  # noqa: E402
from keras_nsde import data, evaluation  # noqa: E402
from keras_nsde.evaluation import figures, statistics  # noqa: E402

DIFFUSIONS = ("none", "additive", "multiplicative", "dropout")
LABELS = {"none": "ODE", "additive": "additive", "multiplicative": "multiplicative", "dropout": "dropout"}
ATTACKS = {"pgd": "PGD", "pgd_eot": "PGD+EOT", "spsa": "SPSA"}
FIGURE4_IMAGES = 64
FIGURE4_EPSILON = 1.0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/digits")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seeds", type=int, default=2, help="training seeds per model, the same for every model")
    parser.add_argument("--sigma", type=float, default=None, help="noise level of every noisy model (default 0.5)")
    parser.add_argument("--num-steps", type=int, default=11)
    parser.add_argument("--ttn-samples", type=int, default=20)
    parser.add_argument("--pgd-eps", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0, 1.25, 1.5])
    parser.add_argument("--pgd-steps", type=int, default=20)
    parser.add_argument("--pgd-examples", type=int, default=100)
    parser.add_argument("--eot-samples", type=int, default=4)
    parser.add_argument("--spsa-eps", type=float, nargs="*", default=[0.5, 1.0])
    parser.add_argument("--spsa-examples", type=int, default=16)
    parser.add_argument("--spsa-steps", type=int, default=20)
    parser.add_argument("--spsa-samples", type=int, default=64)
    parser.add_argument("--table-eps", type=float, nargs="+", default=[0.5, 1.0], help="epsilons shown in the table")
    parser.add_argument("--subset", type=int, default=None, help="train on the first N images only (smoke tests)")
    parser.add_argument("--verbose", type=int, default=2, help="fit verbosity; 0 also hides the attack progress bars")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1. Received: --seeds {args.seeds}")
    missing = sorted(set(args.table_eps) - set(args.pgd_eps))
    if missing:
        parser.error(f"--table-eps must be among --pgd-eps. Received: --table-eps {missing} not in {args.pgd_eps}")
    return args


def train_model(diffusion, seed, args):
    """One model through examples/train.py's training (no export, no evaluation)."""
    run_args = train.parse_args([
        "--dataset", "digits", "--diffusion", diffusion, "--epochs", str(args.epochs), "--seed", str(seed),
        "--batch-size", str(args.batch_size), "--num-steps", str(args.num_steps), "--verbose", str(args.verbose),
        "--out", os.path.join(args.out, "models", diffusion, f"seed_{seed}"),
        *(["--subset", str(args.subset)] if args.subset else []),
        *(["--sigma", str(args.sigma)] if args.sigma is not None and diffusion != "none" else []),
    ])
    model, _, _ = train.train(run_args)
    return model


def evaluate_model(model, args, images, labels):
    """Per-image 0/1 results of every evaluation, and the adversarial images for Fig. 4."""
    noisy = evaluation.is_noisy(model)
    predict = evaluation.TestTimeEnsemble(model, samples=args.ttn_samples if noisy else 1)
    clean = evaluation.TestTimeEnsemble(model, samples=1, noise=False).predict(images)
    results = {
        "clean": correct(clean, labels),
        "ttn": correct(predict.predict(images), labels),
        "pgd": {}, "pgd_eot": {}, "spsa": {},
    }
    x, y = images[: args.pgd_examples], labels[: args.pgd_examples]
    x_spsa, y_spsa = images[: args.spsa_examples], labels[: args.spsa_examples]
    attacks = [("pgd", eps) for eps in args.pgd_eps] + [("spsa", eps) for eps in args.spsa_eps]
    if noisy:
        attacks += [("pgd_eot", eps) for eps in args.pgd_eps]
    progress = keras.utils.Progbar(len(attacks), verbose=1 if args.verbose else 0, unit_name="attack")
    x_adv_for_figure = None
    for attack, eps in attacks:
        eot = args.eot_samples if attack == "pgd_eot" else 1
        if attack == "spsa":
            attacked = evaluation.spsa_attack(
                evaluation.TestTimeEnsemble(model, samples=1), x_spsa, y_spsa, eps, steps=args.spsa_steps,
                samples=args.spsa_samples, learning_rate=0.02,
            )
            results["spsa"][eps] = correct(predict.predict(attacked), y_spsa)
        else:
            attacked = evaluation.pgd_attack(
                evaluation.TestTimeEnsemble(model, samples=eot), x, y, eps, steps=args.pgd_steps
            )
            results[attack][eps] = correct(predict.predict(attacked), y)
            if eps == FIGURE4_EPSILON and (attack == "pgd_eot" or not noisy):
                x_adv_for_figure = attacked[:FIGURE4_IMAGES]
        progress.add(1)
    if not noisy:
        results["pgd_eot"] = results["pgd"]  # EOT changes nothing without noise
    return results, x_adv_for_figure


def correct(probabilities, labels):
    return (np.argmax(probabilities, axis=-1) == np.asarray(labels)).astype("int8")


def summarize(per_image, args):
    """Accuracies with intervals, paired differences to the ODE, SPSA checks; per_image[diffusion][seed]."""
    summary = {}
    ode = per_image["none"]
    for diffusion, runs in per_image.items():
        def stacked(key, eps=None):
            return np.stack([run[key] if eps is None else run[key][eps] for run in runs])

        row = {"sigma": runs[0]["sigma"], "clean": interval(stacked("clean")), "ttn": interval(stacked("ttn"))}
        for attack, epsilons in (("pgd", args.pgd_eps), ("pgd_eot", args.pgd_eps), ("spsa", args.spsa_eps)):
            row[attack] = {eps: interval(stacked(attack, eps)) for eps in epsilons}
        row["spsa_minus_pgd_eot"] = {}
        for eps in args.spsa_eps:
            if eps in args.pgd_eps:  # the same images: the SPSA subset is the start of the PGD images
                pgd_eot = stacked("pgd_eot", eps)[:, : args.spsa_examples]
                difference = statistics.paired_difference(pgd_eot, stacked("spsa", eps))
                difference["masked_gradients_suspected"] = statistics.verdict(difference) == "below"
                row["spsa_minus_pgd_eot"][eps] = difference
        if diffusion != "none":
            row["minus_ode"] = {"clean": statistics.paired_difference(
                np.stack([run["clean"] for run in ode]), stacked("clean"))}
            for attack in ("pgd", "pgd_eot"):
                row["minus_ode"][attack] = {
                    eps: statistics.paired_difference(np.stack([run[attack][eps] for run in ode]), stacked(attack, eps))
                    for eps in args.pgd_eps
                }
        summary[LABELS[diffusion]] = row
    return summary


def interval(correct_by_seed):
    mean, low, high = statistics.bootstrap_interval(correct_by_seed)
    return {"mean": mean, "low": low, "high": high, "per_seed": correct_by_seed.mean(axis=1).tolist()}


def percent(value):
    return f"{100 * value:.1f}"


def difference_cell(difference):
    verdict = statistics.verdict(difference)
    return f"{100 * difference['mean']:+.1f} [{100 * difference['low']:+.1f}, {100 * difference['high']:+.1f}] {verdict}"


def caption(args):
    return (
        f"Digits (scikit-learn; 360 test images for clean and TTN accuracy); {args.seeds} training seeds per model, "
        f"the same for every model; L2 PGD ({args.pgd_steps} steps) on the first {args.pgd_examples} test images, "
        f"EOT over {args.eot_samples} noise samples, attacked images classified by the {args.ttn_samples}-sample TTN "
        f"ensemble; SPSA ({args.spsa_steps} steps x {args.spsa_samples} samples) on the first {args.spsa_examples}. "
        "Accuracy % (mean over seeds and images); differences to the ODE are paired (same seeds, same images) with "
        "95% intervals, bootstrap over seeds x images; 'above'/'below' where the interval excludes 0."
    )


def table(summary, args):
    eps = args.table_eps
    header = ["model", "sigma", "clean", "TTN"] + [f"PGD {e:g}" for e in eps] + [f"PGD+EOT {e:g}" for e in eps]
    header += [f"PGD+EOT {e:g} minus ODE [95% CI]" for e in eps]
    header += [f"SPSA {e:g} / PGD+EOT {e:g} (first {args.spsa_examples})" for e in args.spsa_eps if e in args.pgd_eps]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, row in summary.items():
        cells = [label, "-" if row["sigma"] is None else f"{row['sigma']:g}", percent(row["clean"]["mean"]),
                 percent(row["ttn"]["mean"]) if label != "ODE" else "-"]
        cells += [percent(row["pgd"][e]["mean"]) for e in eps] + [percent(row["pgd_eot"][e]["mean"]) for e in eps]
        cells += [difference_cell(row["minus_ode"]["pgd_eot"][e]) if "minus_ode" in row else "-" for e in eps]
        for e, check in row["spsa_minus_pgd_eot"].items():
            pgd_eot_subset = row["spsa"][e]["mean"] - check["mean"]
            flag = " masked gradients?" if check["masked_gradients_suspected"] else ""
            cells.append(f"{percent(row['spsa'][e]['mean'])} / {percent(pgd_eot_subset)}{flag}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure3_curves(summary, args):
    curves = {}
    for label, row in summary.items():
        attacks = ("pgd", "spsa") if label == "ODE" else ("pgd", "pgd_eot", "spsa")
        curves[label] = {}
        for attack in attacks:
            epsilons = [0.0] + sorted(row[attack])
            stats = [row["clean"]] + [row[attack][e] for e in sorted(row[attack])]  # eps 0: clean accuracy
            if epsilons[1:]:
                curves[label][ATTACKS[attack]] = {
                    "epsilons": epsilons, **{k: [s[k] for s in stats] for k in ("mean", "low", "high")}
                }
    return curves


def flat_results(per_image):
    """{"dropout/seed_0/pgd_eot/0.5": 0/1 per image, ...} for np.savez."""
    flat = {}
    for diffusion, runs in per_image.items():
        for seed, run in enumerate(runs):
            for key, value in run.items():
                if isinstance(value, dict):
                    flat.update({f"{diffusion}/seed_{seed}/{key}/{eps:g}": v for eps, v in value.items()})
                elif isinstance(value, np.ndarray):
                    flat[f"{diffusion}/seed_{seed}/{key}"] = value
    return flat


def jsonable(value):
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def main(argv=None):
    keras_nsde.use_pooled_cpu_allocator()  # before any tensor exists
    args = parse_args(argv)
    start = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    images, labels = data.digits_arrays("test")
    per_image, seconds, figure4 = {}, {}, {}
    for diffusion in DIFFUSIONS:
        per_image[diffusion] = []
        for seed in range(args.seeds):
            print(f"\n== {LABELS[diffusion]}, seed {seed} ==", flush=True)
            tick = time.perf_counter()
            model = train_model(diffusion, seed, args)
            trained = time.perf_counter()
            results, x_adv = evaluate_model(model, args, images, labels)
            seconds[f"{LABELS[diffusion]} seed {seed}"] = {"train": trained - tick, "evaluate": time.perf_counter() - trained}
            results["sigma"] = model.get_layer("sde_block").diffusion.get_config().get("sigma")
            per_image[diffusion].append(results)
            print(f"clean {percent(results['clean'].mean())}%, TTN {percent(results['ttn'].mean())}%", flush=True)
            if seed == 0 and x_adv is not None:
                figure4[LABELS[diffusion]] = evaluation.perturbation_growth(
                    model, images[: len(x_adv)], x_adv, noise_seed=0, per_example=True
                )

    summary = summarize(per_image, args)
    markdown = table(summary, args)
    print(f"\n{caption(args)}\n\n{markdown}")
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write(caption(args) + "\n\n" + markdown + "\n")
    np.savez_compressed(os.path.join(args.out, "correct.npz"), **flat_results(per_image))

    figures.plot_toy(os.path.join(args.out, "figure1_toy.png"))
    figures.plot_accuracy_vs_epsilon(
        os.path.join(args.out, "figure3_attacks.png"), figure3_curves(summary, args),
        caption=f"{args.seeds} seeds; bands: 95% bootstrap over seeds x images; SPSA on the first {args.spsa_examples} images",
    )
    figures.plot_perturbation_growth(
        os.path.join(args.out, "figure4_perturbation.png"), figure4,
        caption=f"PGD+EOT eps={FIGURE4_EPSILON:g}, first {FIGURE4_IMAGES} test images, seed 0",
    )
    seconds["total"] = time.perf_counter() - start
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(jsonable({"arguments": vars(args), "caption": caption(args), "models": summary, "seconds": seconds}),
                  f, indent=1)
    print(f"\nWrote {args.out}/table.md, summary.json, correct.npz and figures 1, 3, 4 ({seconds['total']:.0f} s).")
    return summary


if __name__ == "__main__":
    main()
