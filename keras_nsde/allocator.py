"""An explicit opt-in to TensorFlow's pooled CPU allocator (process-wide, so never automatic)."""

import os

ALLOCATOR_VARIABLE = "TF_CPU_ALLOCATOR_USE_BFC"


def use_pooled_cpu_allocator():
    """Makes TensorFlow allocate CPU tensors from its pooled (BFC) allocator instead of malloc.

    With malloc, each large tensor of a training step (a batch of image
    states is megabytes) is mapped fresh and page-faulted in on every step;
    the pool reuses memory between steps. What that saves depends on the
    machine's malloc and kernel (docs/benchmarks.md has measurements).

    This sets the environment variable TF_CPU_ALLOCATOR_USE_BFC=true for the
    whole process (setting it yourself does the same). TensorFlow reads it
    when it allocates its first tensor, so call this before creating any
    tensor or model; later calls have no effect on this process. The
    examples and benchmarks call it; the library never does. It needs no
    TensorFlow to be installed and does nothing on the JAX and PyTorch
    backends.
    """
    os.environ[ALLOCATOR_VARIABLE] = "true"
