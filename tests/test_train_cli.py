import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_nsde import data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))
import train  # noqa: E402

QUICK = ["--dataset", "digits", "--epochs", "1", "--subset", "64", "--num-steps", "2", "--pgd-examples", "8",
         "--pgd-steps", "2", "--pgd-eps", "0", "0.5", "--ttn-samples", "2", "--eot-samples", "2", "--verbose", "0"]


def run_script(*args, timeout=300):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("dropout_run")
    finished = run_script("examples/train.py", *QUICK, "--diffusion", "dropout", "--out", str(out))
    assert finished.returncode == 0, finished.stderr[-3000:]
    return out


def test_cli_smoke_run_writes_results_with_the_required_keys(cli_run):
    results = json.loads((cli_run / "results.json").read_text())
    for key in ("clean_accuracy", "ttn_accuracy", "pgd", "pgd_eot"):
        assert key in results
    assert set(results["pgd"]) == {"0.0", "0.5"}
    assert all(0.0 <= value <= 1.0 for value in results["pgd"].values())
    assert (cli_run / "log.csv").exists() and (cli_run / "checkpoint.keras").exists()


def test_saved_model_and_keras_file_give_equal_deterministic_predictions(cli_run):
    images = data.digits_arrays("test")[0][:5]
    from_keras = keras.saving.load_model(cli_run / "model.keras")(images, training=False).numpy()
    served = tf.saved_model.load(str(cli_run / "saved_model"))
    logits = served.signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_allclose(list(logits.values())[0].numpy(), from_keras, rtol=1e-5, atol=1e-6)


SERVE_WITHOUT_KERAS_NSDE = """
import sys
import numpy as np
import tensorflow as tf
served = tf.saved_model.load(sys.argv[1])
images = tf.constant(np.load(sys.argv[2]))
np.save(sys.argv[3], list(served.signatures["serving_default"](images=images).values())[0].numpy())
assert "keras_nsde" not in sys.modules
"""


def test_saved_model_serves_in_a_process_without_keras_nsde(cli_run, tmp_path):
    images = data.digits_arrays("test")[0][:5]
    np.save(tmp_path / "images.npy", images)
    served = run_script("-c", SERVE_WITHOUT_KERAS_NSDE, str(cli_run / "saved_model"), str(tmp_path / "images.npy"),
                        str(tmp_path / "logits.npy"))
    assert served.returncode == 0, served.stderr[-3000:]
    from_keras = keras.saving.load_model(cli_run / "model.keras")(images, training=False).numpy()
    np.testing.assert_allclose(np.load(tmp_path / "logits.npy"), from_keras, rtol=1e-5, atol=1e-5)


def test_saved_model_serves_a_test_time_noise_signature(cli_run):
    images = tf.constant(data.digits_arrays("test")[0][:5])
    served = tf.saved_model.load(str(cli_run / "saved_model"))
    first = list(served.signatures["serving_ttn"](images=images).values())[0].numpy()
    second = list(served.signatures["serving_ttn"](images=images).values())[0].numpy()
    np.testing.assert_allclose(first.sum(axis=1), 1.0, rtol=1e-5)
    assert not np.allclose(first, second)


def test_a_nan_loss_stops_training_with_the_likely_cause(tmp_path):
    finished = run_script("examples/train.py", *QUICK, "--diffusion", "multiplicative", "--sigma", "1e25",
                          "--out", str(tmp_path))
    assert finished.returncode != 0
    assert "The training loss became nan" in finished.stderr and "--sigma" in finished.stderr
    assert not (tmp_path / "model.keras").exists() and not (tmp_path / "checkpoint.keras").exists()


def test_staged_learning_rate_divides_by_ten_at_the_authors_stage_ends():
    schedule = train.staged_learning_rate("cifar10", epochs=12, steps_per_epoch=10, base_lr=0.1)
    # CIFAR stages 40/40/20/20 of 120 epochs -> boundaries at epochs 4, 8, 10 of 12.
    assert [float(schedule(step)) for step in (0, 39, 41, 81, 101, 119)] == pytest.approx([0.1, 0.1, 0.01, 0.001, 1e-4, 1e-4])


class InterruptAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt("simulated interruption")


def test_interrupted_fit_resumes_through_backup_and_restore(tmp_path):
    args = train.parse_args(QUICK[:2] + ["--diffusion", "none", "--epochs", "3", "--subset", "64", "--num-steps", "1",
                                         "--verbose", "0", "--out", str(tmp_path)])
    with pytest.raises(KeyboardInterrupt):
        train.train(args, callbacks=[InterruptAfterEpoch(1)])
    _, history, _ = train.train(args)
    assert len(history["loss"]) == 1  # only the third epoch was left to run
    epochs_logged = [line.split(",")[0] for line in (tmp_path / "log.csv").read_text().splitlines()[1:]]
    assert epochs_logged[-1] == "2"


@pytest.mark.parametrize("diffusion", ["none", "multiplicative"])
def test_mirrored_strategy_on_two_logical_cpus(tmp_path, diffusion):
    runs = {}
    for distribute in ("none", "mirrored"):
        finished = run_script("tests/distributed_check.py", distribute, diffusion, str(tmp_path / distribute))
        assert finished.returncode == 0, finished.stderr[-3000:]
        runs[distribute] = json.loads(finished.stdout.strip().splitlines()[-1])
    assert runs["mirrored"]["replicas"] == 2
    single, mirrored = runs["none"]["losses"], runs["mirrored"]["losses"]
    assert len(single) == len(mirrored) == 4 and np.all(np.isfinite(mirrored))
    if diffusion == "none":
        np.testing.assert_allclose(mirrored, single, rtol=1e-4)


def free_port():
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def run_workers(diffusion, out, count=2, timeout=300):
    """`count` worker processes of tests/distributed_check.py on loopback ports; returns their reports."""
    cluster = {"worker": [f"localhost:{free_port()}" for _ in range(count)]}
    workers = []
    for index in range(count):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": tf_config}
        workers.append(subprocess.Popen(
            [sys.executable, "tests/distributed_check.py", "multiworker", diffusion, str(out / f"worker_{index}")],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    try:
        outputs = [worker.communicate(timeout=timeout) for worker in workers]
    finally:
        for worker in workers:
            worker.kill()  # a no-op for finished workers; stops a hung one
    for worker, (_, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    return [json.loads(stdout.strip().splitlines()[-1]) for stdout, _ in outputs]


def test_multiworker_training_with_two_processes_matches_one_device(tmp_path):
    single = run_script("tests/distributed_check.py", "none", "none", str(tmp_path / "single"))
    assert single.returncode == 0, single.stderr[-3000:]
    expected = json.loads(single.stdout.strip().splitlines()[-1])["losses"]
    for report in run_workers("none", tmp_path):
        assert report["replicas"] == 2
        np.testing.assert_allclose(report["losses"], expected, rtol=1e-4)


TINY_MAIN_JOB = ["--epochs", "1", "--seeds", "2", "--subset", "64", "--num-steps", "2", "--pgd-examples", "8",
                 "--pgd-steps", "2", "--pgd-eps", "0.5", "1.0", "--table-eps", "0.5", "--ttn-samples", "2",
                 "--eot-samples", "2", "--spsa-eps", "0.5", "--spsa-examples", "2", "--spsa-steps", "2",
                 "--spsa-samples", "4", "--verbose", "0"]


def test_main_job_summary_pairs_every_model_with_the_ode():
    import reproduce_digits

    args = reproduce_digits.parse_args(["--seeds", "2", "--pgd-eps", "0.5", "--table-eps", "0.5", "--spsa-eps", "0.5",
                                        "--pgd-examples", "4", "--spsa-examples", "2"])
    ones, zeros = np.ones(4, "int8"), np.zeros(4, "int8")
    run = lambda clean, attacked, spsa: {  # noqa: E731
        "sigma": 0.5, "clean": clean, "ttn": clean, "pgd": {0.5: attacked}, "pgd_eot": {0.5: attacked}, "spsa": {0.5: spsa}
    }
    per_image = {
        "none": [run(ones, np.array([1, 0, 0, 0]), np.array([1, 0])) for _ in range(2)],
        "dropout": [run(ones, ones, np.array([0, 0])) for _ in range(2)],  # SPSA succeeds where PGD+EOT fails
    }
    summary = reproduce_digits.summarize(per_image, args)
    difference = summary["dropout"]["minus_ode"]["pgd_eot"][0.5]
    assert difference["mean"] == pytest.approx(0.75) and difference["per_seed"] == [0.75, 0.75]
    assert difference["low"] > 0 and statistics_verdict(difference) == "above"
    assert summary["dropout"]["spsa_minus_pgd_eot"][0.5]["masked_gradients_suspected"]
    assert not summary["ODE"]["spsa_minus_pgd_eot"][0.5]["masked_gradients_suspected"]
    line = reproduce_digits.table(summary, args).splitlines()[-1]
    assert line.startswith("| dropout | 0.5 | 100.0 | 100.0 | 100.0 | 100.0 | +75.0 [")
    assert "above" in line and "0.0 / 100.0 masked gradients?" in line


def statistics_verdict(difference):
    from keras_nsde.evaluation import statistics

    return statistics.verdict(difference)


def results_without_timings(path):
    results = json.loads(path.read_text())
    return {key: value for key, value in results.items() if "seconds" not in key}


def test_train_cli_gives_identical_results_when_run_twice(tmp_path, cli_run):
    again = run_script("examples/train.py", *QUICK, "--diffusion", "dropout", "--out", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr[-3000:]
    first, second = results_without_timings(cli_run / "results.json"), results_without_timings(tmp_path / "again" / "results.json")
    assert set(first) == set(second) and "pgd_eot" in first
    assert first == second


@pytest.mark.slow
def test_main_job_runs_end_to_end_and_reproduces_its_results(tmp_path):
    outputs = []
    for run in ("first", "second"):
        finished = run_script("examples/reproduce_digits.py", *TINY_MAIN_JOB, "--out", str(tmp_path / run), timeout=900)
        assert finished.returncode == 0, finished.stderr[-3000:]
        assert "Warning" not in finished.stderr, finished.stderr[-3000:]
        outputs.append(json.loads((tmp_path / run / "summary.json").read_text()))
        names = ("figure1_toy.png", "figure3_attacks.png", "figure4_perturbation.png", "table.md", "correct.npz")
        assert all((tmp_path / run / name).exists() for name in names)
    assert set(outputs[0]["models"]) == {"ODE", "additive", "multiplicative", "dropout"}
    assert "minus_ode" in outputs[0]["models"]["dropout"] and "spsa" in outputs[0]["models"]["dropout"]
    assert outputs[0]["models"] == outputs[1]["models"]
