"""TensorFlow's floor: the Euler-Maruyama loop written out in a `tf.function` (GradientTape, Adam by hand)."""

import tensorflow as tf

from peer_rows import problem


def tf_loop(weights, h0):
    """h += f dt + G * normal * sqrt(dt), 50 times (a Python loop, unrolled in the graph)."""
    kernels = [tf.Variable(k) for k in weights["kernels"]]
    biases = [tf.Variable(b) for b in weights["biases"]]
    a, b = tf.Variable(weights["a"]), tf.Variable(weights["b"])
    variables = kernels + biases + [a, b]
    moments = [(tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v))) for v in variables]
    count = tf.Variable(0.0)
    h0 = tf.constant(h0)
    dt, sqrt_dt = problem.DT, problem.DT**0.5

    def drift(t, h):
        time_column = tf.ones_like(h[:, :1]) * t
        x = h
        for kernel, bias in zip(kernels[:-1], biases[:-1]):
            x = tf.tanh(tf.matmul(tf.concat([x, time_column], -1), kernel) + bias)
        return tf.matmul(tf.concat([x, time_column], -1), kernels[-1]) + biases[-1]

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            h = h0
            for n in range(problem.NUM_STEPS):
                t = problem.T0 + n * dt
                noise = tf.random.normal(tf.shape(h)) * sqrt_dt
                h = h + drift(t, h) * dt + tf.nn.softplus(a * h + b) * noise
            loss = tf.reduce_mean(tf.square(h))
        grads = tape.gradient(loss, variables)
        count.assign_add(1.0)
        b1, b2, eps, lr = 0.9, 0.999, 1e-8, problem.LEARNING_RATE
        for variable, grad, (m, v) in zip(variables, grads, moments):
            m.assign(b1 * m + (1 - b1) * grad)
            v.assign(b2 * v + (1 - b2) * tf.square(grad))
            m_hat, v_hat = m / (1 - b1**count), v / (1 - b2**count)
            variable.assign_sub(lr * m_hat / (tf.sqrt(v_hat) + eps))
        return loss

    return lambda: float(train_step())


ROWS = {"tf-loop": tf_loop}
