# SPDX-License-Identifier: LGPL-2.1-or-later
"""PyTorch oracle for cyclegan-train: the 70x70 PatchGAN discriminator, the
losses, the image pool, the lr schedule and one CycleGAN training
iteration, written from the paper and the official code's description
(pytorch-CycleGAN-and-pix2pix, model "cycle_gan", batch size 1).

NLayerDiscriminator(input_nc, ndf, n_layers=3, InstanceNorm) state_dict:

    model.0       Conv2d(in, ndf, 4, stride 2, pad 1), LeakyReLU(0.2) at 1
    model.2       Conv2d(ndf, 2ndf, 4, s2, p1), IN at 3, LeakyReLU at 4
    model.5       Conv2d(2ndf, 4ndf, 4, s2, p1), IN at 6, LeakyReLU at 7
    model.8       Conv2d(4ndf, 8ndf, 4, s1, p1), IN at 9, LeakyReLU at 10
    model.11      Conv2d(8ndf, 1, 4, s1, p1)

(channel multiplier min(2^n, 8); every conv has a bias because the norm is
InstanceNorm. With norm "none" the norm slots hold Identity and the convs
at 2, 5 and 8 have no bias, as the official code builds it.)
"""

import torch
import torch.nn as nn

import cyclegan_ref as ref


class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc=3, ndf=64, n_layers=3, norm="instance"):
        super().__init__()
        layers = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2 if n < n_layers else 1,
                                 padding=1, bias=norm == "instance"),
                       ref.norm_layer(norm, ndf * mult), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x)


def init_normal(net, gen, gain=0.02):
    """The official init_weights(net, 'normal', 0.02): conv weights N(0,
    gain), biases 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * gain)
                if m.bias is not None:
                    m.bias.zero_()
    return net


def lsgan(pred, real):
    """GANLoss('lsgan'): MSE against a tensor of 1.0 (real) or 0.0."""
    return nn.functional.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))


class ImagePool:
    """The official ImagePool for batch size 1, its random draws injected:
    `draw_u()` stands for random.uniform(0, 1), `draw_id(n)` for
    random.randint(0, n - 1)."""

    def __init__(self, size, draw_u, draw_id):
        self.size, self.images = size, []
        self.draw_u, self.draw_id = draw_u, draw_id

    def query(self, image):
        if self.size == 0:
            return image
        if len(self.images) < self.size:
            self.images.append(image)
            return image
        if self.draw_u() > 0.5:
            i = self.draw_id(self.size)
            old = self.images[i].clone()
            self.images[i] = image
            return old
        return image


def lr_factor(epoch, epoch_count, n_epochs, n_epochs_decay):
    """LambdaLR's rule ('linear'): `epoch` counts scheduler steps."""
    return 1.0 - max(0, epoch + epoch_count - n_epochs) / float(n_epochs_decay + 1)


def run_lr_factors(epoch_count, n_epochs, n_epochs_decay, n):
    """The factor in force during each of the first n epochs of a run:
    train.py calls update_learning_rate() (scheduler.step()) at the start
    of every epoch, so the k-th epoch (from 0) runs at rule(k + 1)."""
    return [lr_factor(k + 1, epoch_count, n_epochs, n_epochs_decay) for k in range(n)]


class CycleGAN:
    """Four networks, two Adam optimizers, two pools; `iterate` is the
    official optimize_parameters."""

    def __init__(self, G_A, G_B, D_A, D_B, lr=2e-4, beta1=0.5, lambda_A=10.0,
                 lambda_B=10.0, lambda_idt=0.5, pool_A=None, pool_B=None):
        self.G_A, self.G_B, self.D_A, self.D_B = G_A, G_B, D_A, D_B
        self.lambda_A, self.lambda_B, self.lambda_idt = lambda_A, lambda_B, lambda_idt
        self.opt_G = torch.optim.Adam(list(G_A.parameters()) + list(G_B.parameters()),
                                      lr=lr, betas=(beta1, 0.999))
        self.opt_D = torch.optim.Adam(list(D_A.parameters()) + list(D_B.parameters()),
                                      lr=lr, betas=(beta1, 0.999))
        self.fake_B_pool, self.fake_A_pool = pool_A, pool_B

    @staticmethod
    def _requires_grad(nets, flag):
        for n in nets:
            for p in n.parameters():
                p.requires_grad = flag

    def iterate(self, real_A, real_B, keep_grads=None):
        la, lb, li = self.lambda_A, self.lambda_B, self.lambda_idt
        fake_B = self.G_A(real_A)
        rec_A = self.G_B(fake_B)
        fake_A = self.G_B(real_B)
        rec_B = self.G_A(fake_A)
        L = {}
        # generators, discriminators frozen
        self._requires_grad([self.D_A, self.D_B], False)
        self.opt_G.zero_grad()
        if li > 0:
            L["idt_A"] = nn.functional.l1_loss(self.G_A(real_B), real_B) * lb * li
            L["idt_B"] = nn.functional.l1_loss(self.G_B(real_A), real_A) * la * li
        else:
            L["idt_A"] = L["idt_B"] = torch.zeros((), dtype=real_A.dtype)
        L["G_A"] = lsgan(self.D_A(fake_B), True)
        L["G_B"] = lsgan(self.D_B(fake_A), True)
        L["cycle_A"] = nn.functional.l1_loss(rec_A, real_A) * la
        L["cycle_B"] = nn.functional.l1_loss(rec_B, real_B) * lb
        loss_G = L["G_A"] + L["G_B"] + L["cycle_A"] + L["cycle_B"] + L["idt_A"] + L["idt_B"]
        loss_G.backward()
        if keep_grads is not None:
            for name, net in (("G_A", self.G_A), ("G_B", self.G_B)):
                for k, p in net.named_parameters():
                    keep_grads["%s.%s" % (name, k)] = p.grad.detach().clone()
        self.opt_G.step()
        # discriminators
        self._requires_grad([self.D_A, self.D_B], True)
        self.opt_D.zero_grad()
        for name, D, real, fake, pool in (("D_A", self.D_A, real_B, fake_B, self.fake_B_pool),
                                          ("D_B", self.D_B, real_A, fake_A, self.fake_A_pool)):
            fake = pool.query(fake.detach()) if pool is not None else fake.detach()
            loss = (lsgan(D(real), True) + lsgan(D(fake), False)) * 0.5
            loss.backward()
            L[name] = loss
        if keep_grads is not None:
            for name, net in (("D_A", self.D_A), ("D_B", self.D_B)):
                for k, p in net.named_parameters():
                    keep_grads["%s.%s" % (name, k)] = p.grad.detach().clone()
        self.opt_D.step()
        return {k: float(v) for k, v in L.items()}, fake_B.detach(), fake_A.detach()


def make_generator(ngf, n_blocks, gen, norm="instance", gain=0.02):
    return init_normal(ref.ResnetGenerator(3, 3, ngf, n_blocks, norm=norm), gen, gain)


def make_discriminator(ndf, n_layers, gen, norm="instance", gain=0.02):
    return init_normal(NLayerDiscriminator(3, ndf, n_layers, norm), gen, gain)
