# SPDX-License-Identifier: LGPL-2.1-or-later
"""PyTorch oracle: the CycleGAN ResNet generator, written from its
description, with state_dict keys equal to those of the official
pytorch-CycleGAN-and-pix2pix checkpoints.

    index           layer                                     weight shape
    model.0         ReflectionPad2d(3)
    model.1         Conv2d(in_nc, ngf, 7)                     [ngf, in_nc, 7, 7]
    model.2, 3      InstanceNorm2d, ReLU
    model.4         Conv2d(ngf, 2ngf, 3, stride 2, pad 1)     [2ngf, ngf, 3, 3]
    model.5, 6      InstanceNorm2d, ReLU
    model.7         Conv2d(2ngf, 4ngf, 3, stride 2, pad 1)    [4ngf, 2ngf, 3, 3]
    model.8, 9      InstanceNorm2d, ReLU
    model.10+i      ResnetBlock(4ngf), i < n_blocks:
                      conv_block.1 and .5 (.6 with dropout)   [4ngf, 4ngf, 3, 3]
    model.10+n      ConvTranspose2d(4ngf, 2ngf, 3, s2, p1, op1) [4ngf, 2ngf, 3, 3]
    model.11+n, 12+n InstanceNorm2d, ReLU
    model.13+n      ConvTranspose2d(2ngf, ngf, 3, s2, p1, op1)  [2ngf, ngf, 3, 3]
    model.14+n, 15+n InstanceNorm2d, ReLU
    model.16+n      ReflectionPad2d(3)
    model.17+n      Conv2d(ngf, out_nc, 7)                    [out_nc, ngf, 7, 7]
    model.18+n      Tanh

Instance norm: affine=False, no running stats, eps 1e-5, biased variance;
so every conv has a bias. With norm "none" (the official --norm none) the
norm slots hold Identity and only the last conv has a bias.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


def norm_layer(norm, dim):
    return nn.InstanceNorm2d(dim) if norm == "instance" else nn.Identity()


class ResnetBlock(nn.Module):
    """x + [ReflPad1, conv3, IN, ReLU, (Dropout), ReflPad1, conv3, IN](x)."""

    def __init__(self, dim, use_dropout=False, norm="instance"):
        super().__init__()
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias),
                  norm_layer(norm, dim), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias),
                   norm_layer(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, input_nc=3, output_nc=3, ngf=64, n_blocks=9, use_dropout=False,
                 norm="instance"):
        super().__init__()
        bias = norm == "instance"
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias),
                  norm_layer(norm, ngf), nn.ReLU(True)]
        for mult in (1, 2):
            layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                       norm_layer(norm, ngf * mult * 2), nn.ReLU(True)]
        layers += [ResnetBlock(ngf * 4, use_dropout, norm) for _ in range(n_blocks)]
        for mult in (4, 2):
            layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1,
                                          output_padding=1, bias=bias),
                       norm_layer(norm, ngf * mult // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7, bias=True), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def make_generator(ngf, n_blocks, use_dropout=False, seed=0, input_nc=3, output_nc=3,
                   norm="instance"):
    """A generator with PyTorch's default init drawn from `seed`, in eval mode."""
    torch.manual_seed(seed)
    return ResnetGenerator(input_nc, output_nc, ngf, n_blocks, use_dropout, norm).eval()


def translate(gen, x):
    """Our size rule: reflection-pad H and W at the bottom/right to the next
    multiple of 4, run, crop back. x is [C, H, W] or [N, C, H, W]."""
    squeeze = x.dim() == 3
    if squeeze:
        x = x.unsqueeze(0)
    h, w = x.shape[-2:]
    ph, pw = -h % 4, -w % 4
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    with torch.no_grad():
        y = gen(x)[..., :h, :w]
    return y[0] if squeeze else y


def state_dict_numpy(gen, prefix=""):
    """(prefix + name, float32 numpy array) pairs in network order."""
    return [(prefix + k, v.detach().to(torch.float32).numpy().copy())
            for k, v in gen.state_dict().items()]


def load_numpy(gen, arrays, prefix=""):
    """Load float arrays (name -> array, names with `prefix`) into `gen`."""
    sd = {k: torch.from_numpy(arrays[prefix + k].copy()) for k in gen.state_dict()}
    gen.load_state_dict(sd)
    return gen
