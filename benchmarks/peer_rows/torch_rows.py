"""PyTorch rows: the hand-written Euler-Maruyama loop (PyTorch's floor) and torchsde."""

import torch
from torch import nn

from peer_rows import problem


class Drift(nn.Module):
    """The problem's MLP drift f(t, h) (the time column appended to every layer's input)."""

    def __init__(self, weights):
        super().__init__()
        self.layers = nn.ModuleList()
        for kernel, bias in zip(weights["kernels"], weights["biases"]):
            layer = nn.Linear(*kernel.shape)
            with torch.no_grad():
                layer.weight.copy_(torch.from_numpy(kernel.T))
                layer.bias.copy_(torch.from_numpy(bias))
            self.layers.append(layer)

    def forward(self, t, h):
        time_column = torch.ones_like(h[:, :1]) * t
        x = h
        for layer in self.layers[:-1]:
            x = torch.tanh(layer(torch.cat([x, time_column], dim=-1)))
        return self.layers[-1](torch.cat([x, time_column], dim=-1))


class SDE(nn.Module):
    """The problem as a torchsde SDE: f, and the diagonal G(h) = softplus(a h + b)."""

    noise_type = "diagonal"

    def __init__(self, weights, sde_type):
        super().__init__()
        self.sde_type = sde_type
        self.drift = Drift(weights)
        self.a = nn.Parameter(torch.from_numpy(weights["a"].copy()))
        self.b = nn.Parameter(torch.from_numpy(weights["b"].copy()))

    def f(self, t, y):
        return self.drift(t, y)

    def g(self, t, y):
        return nn.functional.softplus(self.a * y + self.b)


def training_step(module, h0, solve):
    """step() -> loss: loss = mean(solve(h0)^2), backward, one Adam step."""
    optimizer = torch.optim.Adam(module.parameters(), lr=problem.LEARNING_RATE)

    def step():
        optimizer.zero_grad()
        loss = solve(h0).square().mean()
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def torch_loop(weights, h0):
    """Euler-Maruyama written out: h += f dt + G * randn * sqrt(dt), 50 times."""
    sde = SDE(weights, "ito")
    dt, sqrt_dt = problem.DT, problem.DT**0.5

    def solve(h):
        for n in range(problem.NUM_STEPS):
            t = problem.T0 + n * dt
            h = h + sde.f(t, h) * dt + sde.g(t, h) * torch.randn_like(h) * sqrt_dt
        return h

    return training_step(sde, torch.from_numpy(h0), solve)


def torchsde_euler(weights, h0):
    """torchsde.sdeint(method="euler", dt=1/50) with its default BrownianInterval."""
    import torchsde

    sde = SDE(weights, "ito")
    ts = torch.tensor([problem.T0, problem.T1])

    def solve(h):
        return torchsde.sdeint(sde, h, ts, method="euler", dt=problem.DT)[-1]

    return training_step(sde, torch.from_numpy(h0), solve)


def torchsde_adjoint(weights, h0):
    """torchsde.sdeint_adjoint: reversible Heun forward, its adjoint backward (Stratonovich), default BrownianInterval."""
    import torchsde

    sde = SDE(weights, "stratonovich")
    ts = torch.tensor([problem.T0, problem.T1])

    def solve(h):
        return torchsde.sdeint_adjoint(
            sde, h, ts, method="reversible_heun", adjoint_method="adjoint_reversible_heun", dt=problem.DT
        )[-1]

    return training_step(sde, torch.from_numpy(h0), solve)


ROWS = {
    "torch-loop": torch_loop,
    "torchsde-sdeint": torchsde_euler,
    "torchsde-adjoint": torchsde_adjoint,
}
