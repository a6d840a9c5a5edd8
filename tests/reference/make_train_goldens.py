#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Write the golden files of the trainer's tests.

    /usr/bin/python3 tests/reference/make_train_goldens.py tests/golden/train

Deterministic. Inputs and weights are stored as float32; every expected
value is computed in float64 from the stored values (autograd), so the C
code's float32 error is what the tests measure.

layers_bwd.safetensors   per case <case>.input/.weight/.bias/.dout and the
                         expected .output/.dinput/.dweight/.dbias; metadata
                         <case>.op describes the layer.
gen_grad.safetensors     a ResNet generator (ngf 4, 2 blocks, PyTorch default
                         init): param.<key>, input, dout, output, dinput,
                         grad.<key> of sum(output * dout).
disc_grad.safetensors    the PatchGAN (ndf 4, n_layers 3) likewise.
step.safetensors         two CycleGAN iterations (G ngf 4 / 1 block, D ndf 2,
                         crop 24x32, pool size 1; the second iteration's
                         pool draws u = 0.7, id = 0, so both pools return
                         the first iteration's fakes): init.<net>.<key>,
                         iterK.real_A/real_B, iterK.losses [8] (D_A G_A
                         cycle_A idt_A D_B G_B cycle_B idt_B), iter0.grad.*,
                         iterK.param.<net>.<key> after each iteration;
                         lr_factors.<n>: the lr factor in each epoch of a
                         run (metadata: n_epochs n_epochs_decay epoch_count).
step_nonorm.safetensors  the same two iterations with norm "none" (metadata
                         norm): no InstanceNorm, no bias but the first and
                         last of D and the last of G; init N(0, 0.1).
"""

import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cyclegan_ref as ref  # noqa: E402
import st  # noqa: E402
import train_ref  # noqa: E402


def f32(t):
    return t.detach().to(torch.float32).numpy().copy()


def q(t):
    """Round to float32 and back to float64: the stored value."""
    return t.float().double()


def layer_case(tensors, meta, name, op, x, params, fn, dout_scale=1.0):
    """Run fn(x, *params) in float64 with autograd against a random dout."""
    x = q(x).requires_grad_(True)
    params = [q(p).requires_grad_(True) for p in params]
    y = fn(x, *params)
    dout = q(torch.randn(y.shape, dtype=torch.float64) * dout_scale)
    (y * dout).sum().backward()
    meta[name + ".op"] = op
    tensors += [(name + ".input", f32(x[0])), (name + ".dout", f32(dout[0])),
                (name + ".output", f32(y[0])), (name + ".dinput", f32(x.grad[0]))]
    for suffix, p in zip(("weight", "bias"), params):
        tensors += [("%s.%s" % (name, suffix), f32(p)), ("%s.d%s" % (name, suffix), f32(p.grad))]


def write_layers(outdir):
    tensors, meta = [], {}
    torch.manual_seed(7)

    def rnd(*s):
        return torch.rand(*s, dtype=torch.float64) * 2 - 1

    def conv_params(cin, cout, k):
        c = nn.Conv2d(cin, cout, k)
        return [c.weight.detach().double(), c.bias.detach().double()]

    def conv(name, cin, cout, k, stride, pad, mode, hw):
        if mode == "reflect":
            def fn(x, w, b):
                return F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), w, b, stride=stride)
        else:
            def fn(x, w, b):
                return F.conv2d(x, w, b, stride=stride, padding=pad)
        layer_case(tensors, meta, name, "Conv2d(%d, %d, %d, stride %d, pad %d %s)" %
                   (cin, cout, k, stride, pad, mode), rnd(1, cin, *hw),
                   conv_params(cin, cout, k), fn)

    conv("conv7_reflect", 3, 5, 7, 1, 3, "reflect", (11, 13))
    conv("conv3_reflect", 4, 4, 3, 1, 1, "reflect", (9, 7))
    conv("conv3_s2", 4, 6, 3, 2, 1, "zero", (11, 13))
    conv("conv3_s2_even", 3, 5, 3, 2, 1, "zero", (12, 10))
    conv("conv4_s2", 3, 5, 4, 2, 1, "zero", (13, 11))
    conv("conv4_s2_even", 4, 3, 4, 2, 1, "zero", (10, 12))
    conv("conv4_s1", 6, 1, 4, 1, 1, "zero", (7, 9))

    ct = nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1)
    layer_case(tensors, meta, "convT", "ConvTranspose2d(6, 4, 3, s2, p1, op1)", rnd(1, 6, 5, 7),
               [ct.weight.detach().double(), ct.bias.detach().double()],
               lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1,
                                                  output_padding=1))
    layer_case(tensors, meta, "reflpad3", "ReflectionPad2d(3)", rnd(1, 3, 9, 11), [],
               lambda x: F.pad(x, (3,) * 4, mode="reflect"))
    mean = torch.tensor([-2.0, 1.5, 0.3, -0.7, 2.0], dtype=torch.float64).view(1, 5, 1, 1)
    scale = torch.tensor([0.05, 5.0, 1.0, 0.3, 2.0], dtype=torch.float64).view(1, 5, 1, 1)
    layer_case(tensors, meta, "instnorm", "InstanceNorm2d(eps 1e-5, affine False)",
               mean + scale * torch.randn(1, 5, 7, 9, dtype=torch.float64), [],
               lambda x: F.instance_norm(x, eps=1e-5))

    def away_from_zero(*s):
        x = rnd(*s) * 3
        return x + torch.sign(x) * 0.01

    layer_case(tensors, meta, "relu", "ReLU", away_from_zero(1, 3, 7, 9), [], F.relu)
    layer_case(tensors, meta, "lrelu", "LeakyReLU(0.2)", away_from_zero(1, 3, 7, 9), [],
               lambda x: F.leaky_relu(x, 0.2))
    layer_case(tensors, meta, "tanh", "Tanh", away_from_zero(1, 3, 7, 9), [], torch.tanh)
    st.write(os.path.join(outdir, "layers_bwd.safetensors"), tensors, meta)


def net_grad(outdir, fname, net, shape, meta):
    """param.*, input, dout, output, dinput, grad.* of sum(net(x) * dout)."""
    tensors = [("param." + k, f32(v)) for k, v in net.state_dict().items()]
    net = net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(q(p))
    x = q(torch.rand(1, *shape, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    y = net(x)
    dout = q(torch.randn(y.shape, dtype=torch.float64))
    (y * dout).sum().backward()
    tensors += [("input", f32(x[0])), ("dout", f32(dout[0])), ("output", f32(y[0])),
                ("dinput", f32(x.grad[0]))]
    tensors += [("grad." + k, f32(p.grad)) for k, p in net.named_parameters()]
    st.write(os.path.join(outdir, fname), tensors, meta)


def write_step(outdir, fname="step.safetensors", norm="instance", seed=11, gain=0.02):
    g = torch.Generator().manual_seed(seed)
    ngf, nb, ndf, nl = 4, 1, 2, 3
    nets = {"G_A": train_ref.make_generator(ngf, nb, g, norm, gain),
            "G_B": train_ref.make_generator(ngf, nb, g, norm, gain),
            "D_A": train_ref.make_discriminator(ndf, nl, g, norm, gain),
            "D_B": train_ref.make_discriminator(ndf, nl, g, norm, gain)}
    tensors = []
    for name, net in nets.items():
        net.double()
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(q(p))
        tensors += [("init.%s.%s" % (name, k), f32(v)) for k, v in net.state_dict().items()]

    draws_u, draws_id = iter([0.7, 0.7]), iter([0, 0])
    pools = [train_ref.ImagePool(1, lambda: next(draws_u), lambda n: next(draws_id))
             for _ in range(2)]
    model = train_ref.CycleGAN(nets["G_A"], nets["G_B"], nets["D_A"], nets["D_B"],
                               pool_A=pools[0], pool_B=pools[1])
    order = ["D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B"]
    for it in range(2):
        real_A = q(torch.rand(1, 3, 24, 32, generator=g, dtype=torch.float64) * 2 - 1)
        real_B = q(torch.rand(1, 3, 24, 32, generator=g, dtype=torch.float64) * 2 - 1)
        grads = {} if it == 0 else None
        losses, _, _ = model.iterate(real_A, real_B, grads)
        tensors += [("iter%d.real_A" % it, f32(real_A[0])), ("iter%d.real_B" % it, f32(real_B[0])),
                    ("iter%d.losses" % it, np.array([losses[k] for k in order], np.float32))]
        if grads is not None:
            tensors += [("iter0.grad." + k, f32(v)) for k, v in grads.items()]
        for name, net in nets.items():
            tensors += [("iter%d.param.%s.%s" % (it, name, k), f32(v))
                        for k, v in net.state_dict().items()]

    meta = {"ngf": str(ngf), "n_blocks": str(nb), "ndf": str(ndf), "n_layers_D": str(nl),
            "pool_size": "1", "lr": "0.0002", "beta1": "0.5", "lambda_A": "10",
            "lambda_B": "10", "lambda_identity": "0.5", "norm": norm}
    # lr schedule: the factor during each epoch of a run (stepped at each
    # epoch's start, as the official train.py does)
    for n, (n_ep, n_dec, count, total) in enumerate([(3, 4, 1, 7), (3, 4, 3, 5), (1, 2, 1, 3)]):
        f = train_ref.run_lr_factors(count, n_ep, n_dec, total)
        tensors.append(("lr_factors.%d" % n, np.array(f, np.float32)))
        meta["lr_factors.%d" % n] = "%d %d %d" % (n_ep, n_dec, count)
    st.write(os.path.join(outdir, fname), tensors, meta)


def main():
    if len(sys.argv) != 2:
        print("usage: %s OUTDIR" % sys.argv[0], file=sys.stderr)
        return 2
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)
    write_layers(outdir)
    torch.manual_seed(21)
    net_grad(outdir, "gen_grad.safetensors", ref.ResnetGenerator(3, 3, 4, 2), (3, 20, 28),
             {"ngf": "4", "n_blocks": "2"})
    torch.manual_seed(22)
    net_grad(outdir, "disc_grad.safetensors", train_ref.NLayerDiscriminator(3, 4, 3),
             (3, 28, 36), {"ndf": "4", "n_layers_D": "3"})
    write_step(outdir)
    # Without norm, N(0, 0.02) weights shrink the signal tenfold per layer
    # of these narrow nets: the outputs and gradients would be rounding
    # noise. N(0, 0.1) keeps them of order one.
    write_step(outdir, "step_nonorm.safetensors", "none", 12, 0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
