import numpy as np
import pytest

from keras_nsde import SDEBlock
from keras_nsde.models import paper_classifier

pytestmark = pytest.mark.all_backends

DIFFUSIONS = ["none", "additive", "multiplicative", "dropout"]


@pytest.mark.parametrize("diffusion", DIFFUSIONS)
def test_cifar10_classifier_has_the_papers_115594_parameters(diffusion):
    assert paper_classifier("cifar10", diffusion).count_params() == 115594


@pytest.mark.parametrize("dataset, expected", [("stl10", 2.44e6), ("tiny_imagenet", 2.49e6)])
def test_big_classifier_matches_the_authors_size(dataset, expected):
    assert paper_classifier(dataset, "dropout").count_params() == pytest.approx(expected, rel=0.005)


def test_defaults_follow_the_authors_solver_and_sigma():
    block = paper_classifier("cifar10", "multiplicative").get_layer("sde_block")
    assert (block.num_steps, block.t0, block.t1) == (11, 0.0, 1.0)
    assert 1.2 <= block.diffusion.sigma <= 1.8


def test_overrides_reach_the_sde_block():
    block = paper_classifier("digits", "dropout", sigma=0.3, num_steps=4, gradient="pathwise").get_layer("sde_block")
    assert (block.num_steps, block.gradient.name, block.diffusion.sigma) == (4, "pathwise", 0.3)


def test_digits_classifier_outputs_logits_for_8x8_images():
    model = paper_classifier("digits", "additive", num_steps=2)
    logits = model(np.zeros((3, 8, 8, 1), "float32"), training=True)
    assert tuple(logits.shape) == (3, 10)
    assert isinstance(model.get_layer("sde_block"), SDEBlock)


def test_value_error_for_unknown_dataset():
    with pytest.raises(ValueError, match="dataset='mnist'"):
        paper_classifier("mnist")
