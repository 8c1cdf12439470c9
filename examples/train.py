"""Train and evaluate one of the paper's Neural SDE classifiers.

    python examples/train.py --dataset digits --diffusion dropout --epochs 1 --out runs/digits_dropout
    python examples/train.py --dataset cifar10 --diffusion multiplicative --data-dir ~/tensorflow_datasets

Writes OUT/results.json (clean, test-time-noise and PGD accuracy), OUT/model.keras,
OUT/saved_model/ (TensorFlow backend only; signatures `serving_default`: images ->
logits with the noise off; `serving_ttn`: images -> class probabilities averaged
over --ttn-samples noisy passes), OUT/log.csv, OUT/checkpoint.keras, and
OUT/backup/ for resuming: run the same command again after an interruption and
training continues from the last finished epoch.

Runs on every Keras backend (KERAS_BACKEND=jax or torch). On TensorFlow the
data come through tf.data pipelines (`keras_nsde.data.load`); on JAX and
PyTorch the digits come as NumPy arrays, shuffled by `fit`, and TensorFlow is
not needed (the other datasets are tf.data pipelines on every backend).
--distribute and the SavedModel export are TensorFlow's.
"""

import argparse
import contextlib
import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_nsde  # noqa: E402
from keras_nsde import brownian, data, evaluation, solvers  # noqa: E402
from keras_nsde.callbacks import NonFiniteLossError, StopOnNonFiniteLoss  # noqa: E402
from keras_nsde.models import paper_classifier  # noqa: E402
from keras_nsde.models.paper_classifier import INPUT_SHAPES  # noqa: E402

# The authors' learning-rate stages (epochs at lr 0.1, 0.01, 0.001, 0.0001),
# scaled to --epochs (docs/paper-setup.md).
STAGES = {"cifar10": (40, 40, 20, 20), "stl10": (30, 30, 20, 20)}
DEFAULT_STAGES = (80, 60, 40, 20)
DEFAULT_EPOCHS = {"cifar10": 120, "stl10": 100, "tiny_imagenet": 200, "digits": 15}
DEFAULT_BATCH = {"cifar10": 128, "stl10": 64, "tiny_imagenet": 100, "digits": 32}
TEST_SPLIT = {"tiny_imagenet": "val"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", choices=sorted(INPUT_SHAPES))
    parser.add_argument("--diffusion", default="dropout", choices=["none", "additive", "multiplicative", "dropout"])
    parser.add_argument("--sigma", type=float, default=None, help="noise level (default: the authors' for the dataset)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=0.1, help="first stage's SGD learning rate (momentum 0.9)")
    parser.add_argument("--num-steps", type=int, default=11)
    parser.add_argument("--gradient", default="autodiff", choices=["autodiff", "pathwise", "reversible"],
                        help="reversible: with --solver reversible_heun")
    parser.add_argument("--solver", default="euler_maruyama", choices=["euler_maruyama", "milstein", "reversible_heun", "dopri5"],
                        help="dopri5: adaptive Dormand-Prince (with --diffusion none); reversible_heun: Stratonovich")
    parser.add_argument("--interpretation", default=None, choices=["stratonovich", "ito"],
                        help="with --solver reversible_heun: the SDE it solves (default stratonovich)")
    parser.add_argument("--increments", default="gaussian", choices=["gaussian", "bernoulli"])
    parser.add_argument("--keep-prob", type=float, default=None, help="keep probability of Bernoulli increments")
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_float16 compute")
    parser.add_argument("--jit", action="store_true", help="compile the train step with XLA")
    parser.add_argument("--distribute", default="none", choices=["none", "mirrored", "multiworker"])
    parser.add_argument("--data-dir", default=None, help="tfds data folder (or the Tiny-ImageNet folder)")
    parser.add_argument("--subset", type=int, default=None, help="train on the first N examples only")
    parser.add_argument("--shuffle", action=argparse.BooleanOptionalAction, default=True, help="shuffle the training set")
    parser.add_argument("--ttn-samples", type=int, default=20, help="noisy passes averaged at test time")
    parser.add_argument("--pgd-eps", type=float, nargs="*", default=None, help="L2 PGD radii (default by dataset)")
    parser.add_argument("--pgd-norm", default="l2", choices=["l2", "linf"])
    parser.add_argument("--pgd-steps", type=int, default=40)
    parser.add_argument("--pgd-examples", type=int, default=200, help="test images attacked")
    parser.add_argument("--eot-samples", type=int, default=4, help="noise samples per PGD gradient for the EOT attack")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=1, help="Keras fit verbosity (1: progress bar)")
    parser.add_argument("--out", default="runs/train")
    args = parser.parse_args(argv)
    if args.interpretation is not None and args.solver != "reversible_heun":
        parser.error(f"--interpretation applies to --solver reversible_heun. Received: --interpretation "
                     f"{args.interpretation} with --solver {args.solver}")
    if args.distribute != "none" and keras.backend.backend() != "tensorflow":
        parser.error(f"--distribute {args.distribute} needs the tensorflow backend (tf.distribute). "
                     f"Received: --distribute {args.distribute} with KERAS_BACKEND={keras.backend.backend()}")
    if args.keep_prob is not None and args.increments != "bernoulli":
        parser.error(f"--keep-prob applies to --increments bernoulli. Received: --keep-prob {args.keep_prob} "
                     f"with --increments {args.increments}")
    args.epochs = args.epochs or DEFAULT_EPOCHS[args.dataset]
    args.batch_size = args.batch_size or DEFAULT_BATCH[args.dataset]
    if args.pgd_eps is None:
        args.pgd_eps = [0.0, 0.5, 1.0, 1.5] if args.dataset == "digits" else [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    return args


def strategy_for(name):
    """tf.distribute strategy for --distribute (multi-host: set TF_CONFIG on every worker); none off TensorFlow."""
    if keras.backend.backend() != "tensorflow":
        return NoStrategy()
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # one trace per TestTimeEnsemble reads as "retracing"
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


class NoStrategy:
    """One device, as on JAX and PyTorch: `scope()` does nothing."""

    def scope(self):
        return contextlib.nullcontext()


def work_around_multiworker_fit(model, strategy):
    """Lets Keras 3 `fit` train this model under MultiWorkerMirroredStrategy (keras-team/keras#20585).

    Keras 3.15's TensorFlow trainer fails there twice: it builds the model on
    a batch that it gets by `strategy.reduce` of the whole (x, y) structure
    ("unsupported type PerReplica"), and it reduces each step's scalar logs
    along an axis 0 they do not have. This model instance builds on the
    worker's local share of the batch instead, and its train function runs
    the model's own `train_step` on every replica and averages the logs.
    """
    import tensorflow as tf

    def build_on_local_batch(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = keras.tree.map_structure(lambda v: strategy.experimental_local_results(v)[0], next(batches))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    def make_train_function(force=False):
        if model.train_function is None or force:

            @tf.function
            def train_function(iterator):
                logs = strategy.run(model.train_step, args=(next(iterator),))
                return keras.tree.map_structure(lambda value: strategy.reduce("MEAN", value, axis=None), logs)

            model.train_function = train_function
        return model.train_function

    model._maybe_symbolic_build = build_on_local_batch
    model.make_train_function = make_train_function


def staged_learning_rate(dataset, epochs, steps_per_epoch, base_lr):
    """SGD step decay: base_lr divided by 10 at the end of each of the authors' stages."""
    stages = np.asarray(STAGES.get(dataset, DEFAULT_STAGES), dtype=float)
    boundaries = [int(round(b)) for b in np.cumsum(stages)[:-1] / stages.sum() * epochs * steps_per_epoch]
    values = [base_lr / 10**k for k in range(len(stages))]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def build_compiled_model(args, steps_per_epoch):
    increments = brownian.Bernoulli(args.keep_prob or 0.5) if args.increments == "bernoulli" else args.increments
    solver = solvers.ReversibleHeun(args.interpretation) if args.interpretation else args.solver
    model = paper_classifier(
        args.dataset, args.diffusion, sigma=args.sigma, num_steps=args.num_steps, gradient=args.gradient,
        seed=args.seed, solver=solver, increments=increments,
    )
    schedule = staged_learning_rate(args.dataset, args.epochs, steps_per_epoch, args.lr)
    model.compile(
        keras.optimizers.SGD(schedule, momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=args.jit,
    )
    return model


def train(args, callbacks=()):
    """Fits the model; resumes from OUT/backup if a previous run was interrupted.

    `callbacks` are added after the backup, checkpoint and CSV callbacks.
    """
    strategy = strategy_for(args.distribute)  # first: multi-worker collectives must be set up before any tensor
    os.makedirs(args.out, exist_ok=True)
    keras.utils.set_random_seed(args.seed)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    training_data, steps_per_epoch = training_set(args)
    with strategy.scope():
        model = build_compiled_model(args, steps_per_epoch)
    if args.distribute == "multiworker":
        work_around_multiworker_fit(model, strategy)
    sigma = model.get_layer("sde_block").diffusion.get_config().get("sigma")
    hint = (
        f"Likely causes: a noise level too large for this model (sigma={sigma}; try a smaller --sigma) "
        f"or a learning rate too large (--lr {args.lr}; try a smaller one)."
    )
    callbacks = [
        StopOnNonFiniteLoss(hint),
        keras.callbacks.BackupAndRestore(os.path.join(args.out, "backup")),
        keras.callbacks.ModelCheckpoint(os.path.join(args.out, "checkpoint.keras")),
        keras.callbacks.CSVLogger(os.path.join(args.out, "log.csv"), append=True),
        *callbacks,
    ]
    start = time.perf_counter()
    history = model.fit(**training_data, epochs=args.epochs, callbacks=callbacks, verbose=args.verbose)
    return model, history.history, time.perf_counter() - start


def training_set(args):
    """`fit`'s data arguments and the steps per epoch: NumPy digits off TensorFlow, else a tf.data pipeline."""
    if args.dataset == "digits" and keras.backend.backend() != "tensorflow":
        images, labels = data.digits_arrays("train")
        images, labels = images[: args.subset], labels[: args.subset]
        steps = -(-len(images) // args.batch_size)
        return {"x": images, "y": labels, "batch_size": args.batch_size, "shuffle": args.shuffle}, steps
    train_set = data.load(
        args.dataset, "train", args.batch_size, shuffle=args.shuffle, data_dir=args.data_dir, limit=args.subset, seed=args.seed
    )
    steps = int(train_set.cardinality()) if train_set.cardinality() > 0 else 1
    # shuffle=False: the tf.data pipeline shuffles (Keras would warn that it ignores shuffle=True).
    return {"x": train_set, "shuffle": False}, steps


def test_arrays(args, limit=None):
    split = TEST_SPLIT.get(args.dataset, "test")
    if args.dataset == "digits":
        images, labels = data.digits_arrays(split)
        return images[:limit], labels[:limit]
    batches = data.load(args.dataset, split, batch_size=500, data_dir=args.data_dir, limit=limit)
    images, labels = zip(*((x.numpy(), y.numpy()) for x, y in batches))
    return np.concatenate(images), np.concatenate(labels)


def evaluate(model, args):
    """Clean (noise off), test-time-noise and PGD accuracies."""
    images, labels = test_arrays(args)
    clean = evaluation.accuracy(evaluation.TestTimeEnsemble(model, samples=1, noise=False).predict(images), labels)
    noisy = evaluation.is_noisy(model)
    ttn = evaluation.accuracy(evaluation.ensemble_predict(model, images, args.ttn_samples), labels) if noisy else clean
    x, y = images[: args.pgd_examples], labels[: args.pgd_examples]
    pgd_args = dict(norm=args.pgd_norm, steps=args.pgd_steps, ttn_samples=args.ttn_samples)
    results = {
        "clean_accuracy": clean,
        "ttn_accuracy": ttn,
        "ttn_samples": args.ttn_samples if noisy else 0,
        "pgd_examples": len(y),
        "pgd_norm": args.pgd_norm,
        "pgd": evaluation.pgd_accuracy(model, x, y, args.pgd_eps, eot_samples=1, **pgd_args),
    }
    if noisy and args.eot_samples > 1:
        results["pgd_eot"] = evaluation.pgd_accuracy(model, x, y, args.pgd_eps, eot_samples=args.eot_samples, **pgd_args)
        results["eot_samples"] = args.eot_samples
    else:
        results["pgd_eot"] = results["pgd"]  # a noiseless model: EOT changes nothing
    return results


def export_saved_model(model, path, ttn_samples):
    """SavedModel with `serving_default` (logits, noise off) and `serving_ttn` (mean probabilities).

    Traced while saving, where keras_nsde uses TensorFlow's own ops: it loads without keras_nsde.
    """
    import tensorflow as tf
    spec = tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32, name="images")
    ensemble = evaluation.TestTimeEnsemble(model, samples=ttn_samples, noise=True)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", lambda images: model(images, training=False), input_signature=[spec])
    archive.add_endpoint("serving_ttn", lambda images: tf.exp(ensemble.log_probabilities(images)), input_signature=[spec])
    archive.write_out(path, verbose=False)


def run(args):
    """Trains, saves, exports and evaluates; returns (model, results)."""
    os.makedirs(args.out, exist_ok=True)
    model, history, train_seconds = train(args)
    model.save(os.path.join(args.out, "model.keras"))
    if keras.backend.backend() == "tensorflow":  # a SavedModel is TensorFlow's format
        export_saved_model(model, os.path.join(args.out, "saved_model"), args.ttn_samples)
    results = {
        "dataset": args.dataset,
        "diffusion": args.diffusion,
        "sigma": model.get_layer("sde_block").diffusion.get_config().get("sigma"),
        "parameters": model.count_params(),
        "epochs": args.epochs,
        "train_seconds": train_seconds,
        "final_loss": history["loss"][-1],
        "solver": args.solver,
        "gradient": args.gradient,
        "interpretation": args.interpretation,
        "seconds_per_epoch": train_seconds / max(1, len(history["loss"])),
        **evaluate(model, args),
    }
    if args.solver == "dopri5":
        results["nfe_last_batch"] = int(keras.ops.convert_to_numpy(model.get_layer("sde_block").nfe.value))
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    return model, results


def main(argv=None):
    keras_nsde.use_pooled_cpu_allocator()  # before any tensor exists
    try:
        _, results = run(parse_args(argv))
    except NonFiniteLossError as error:
        raise SystemExit(f"train.py: {error}") from None
    print(json.dumps({k: v for k, v in results.items() if k in ("diffusion", "clean_accuracy", "ttn_accuracy", "pgd", "pgd_eot")}))
    return results


if __name__ == "__main__":
    main()
