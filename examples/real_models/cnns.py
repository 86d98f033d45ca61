"""Image classifiers in torchvision's block structure, at reduced width/depth/resolution:
MobileNetV3-Small, EfficientNet-B0, RegNetY, ConvNeXt-T, ShuffleNetV2, DenseNet-121, Inception-v3."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def conv_bn(cin, cout, k, stride=1, groups=1, act=nn.ReLU, padding=None):
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2 if padding is None else padding,
                        groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, act()) if act is not None else nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """torchvision.ops.SqueezeExcitation: x * gate(fc2(act(fc1(avgpool(x)))))."""

    def __init__(self, channels, squeeze, act=nn.ReLU, gate=nn.Sigmoid):
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(channels, squeeze, 1), nn.Conv2d(squeeze, channels, 1)
        self.act, self.gate = act(), gate()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


def make_divisible(v, divisor=8):
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


# --- MobileNetV3-Small (HardSwish, SE with HardSigmoid), width 0.5 -------------------------------
class InvertedResidualV3(nn.Module):
    def __init__(self, cin, k, exp, cout, se, hs, stride):
        super().__init__()
        act = nn.Hardswish if hs else nn.ReLU
        layers = [conv_bn(cin, exp, 1, act=act)] if exp != cin else []
        layers.append(conv_bn(exp, exp, k, stride, groups=exp, act=act))
        if se:
            layers.append(SqueezeExcitation(exp, make_divisible(exp // 4), gate=nn.Hardsigmoid))
        layers.append(conv_bn(exp, cout, 1, act=None))
        self.block, self.residual = nn.Sequential(*layers), stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class MobileNetV3Small(nn.Module):
    # (kernel, expanded, out, SE, HardSwish, stride), torchvision's table at width 1.0
    CONFIG = [(3, 16, 16, 1, 0, 2), (3, 72, 24, 0, 0, 2), (3, 88, 24, 0, 0, 1), (5, 96, 40, 1, 1, 2),
              (5, 240, 40, 1, 1, 1), (5, 240, 40, 1, 1, 1), (5, 120, 48, 1, 1, 1), (5, 144, 48, 1, 1, 1),
              (5, 288, 96, 1, 1, 2), (5, 576, 96, 1, 1, 1), (5, 576, 96, 1, 1, 1)]

    def __init__(self, width=0.5, classes=100):
        super().__init__()
        c = lambda v: make_divisible(v * width)  # noqa: E731
        layers, cin = [conv_bn(3, c(16), 3, 2, act=nn.Hardswish)], c(16)
        for k, exp, out, se, hs, s in self.CONFIG:
            layers.append(InvertedResidualV3(cin, k, c(exp), c(out), se, hs, s))
            cin = c(out)
        layers.append(conv_bn(cin, 6 * cin, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(6 * cin, 256), nn.Hardswish(), nn.Dropout(0.2),
                                        nn.Linear(256, classes))

    def forward(self, x):
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


# --- EfficientNet-B0 (MBConv, SiLU, SE), width 0.4, fewer repeats -----------------------
class MBConv(nn.Module):
    def __init__(self, cin, cout, k, stride, expand):
        super().__init__()
        exp = cin * expand
        layers = [conv_bn(cin, exp, 1, act=nn.SiLU)] if expand != 1 else []
        layers += [conv_bn(exp, exp, k, stride, groups=exp, act=nn.SiLU),
                   SqueezeExcitation(exp, max(1, cin // 4), act=nn.SiLU),
                   conv_bn(exp, cout, 1, act=None)]
        self.block, self.residual = nn.Sequential(*layers), stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class EfficientNetB0(nn.Module):
    # (expand, kernel, stride, out, repeats) at width 1.0; repeats reduced from (1,2,2,3,3,4,1)
    CONFIG = [(1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 1), (6, 3, 2, 80, 2), (6, 5, 1, 112, 1),
              (6, 5, 2, 192, 2), (6, 3, 1, 320, 1)]

    def __init__(self, width=0.4, classes=100):
        super().__init__()
        c = lambda v: make_divisible(v * width)  # noqa: E731
        layers, cin = [conv_bn(3, c(32), 3, 2, act=nn.SiLU)], c(32)
        for expand, k, s, out, repeats in self.CONFIG:
            for i in range(repeats):
                layers.append(MBConv(cin, c(out), k, s if i == 0 else 1, expand))
                cin = c(out)
        layers.append(conv_bn(cin, c(1280), 1, act=nn.SiLU))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(c(1280), classes))

    def forward(self, x):
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))


# --- RegNetY (grouped bottleneck, SE), RegNetY-200MF's layout at reduced width and depth -----------------------
class RegNetBlock(nn.Module):
    def __init__(self, cin, cout, stride, group_width):
        super().__init__()
        self.f = nn.Sequential(conv_bn(cin, cout, 1), conv_bn(cout, cout, 3, stride, cout // group_width),
                               SqueezeExcitation(cout, max(1, cin // 4)), conv_bn(cout, cout, 1, act=None))
        self.proj = conv_bn(cin, cout, 1, stride, act=None) if stride != 1 or cin != cout else None
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act((x if self.proj is None else self.proj(x)) + self.f(x))


class RegNetY(nn.Module):
    def __init__(self, widths=(16, 32, 80, 160), depths=(1, 1, 2, 2), group_width=8, classes=100):
        super().__init__()
        layers, cin = [conv_bn(3, 32, 3, 2)], 32
        for w, d in zip(widths, depths):
            for i in range(d):
                layers.append(RegNetBlock(cin, w, 2 if i == 0 else 1, group_width))
                cin = w
        self.trunk, self.fc = nn.Sequential(*layers), nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.trunk(x), 1), 1))


# --- ConvNeXt-T (7x7 depthwise, LayerNorm, GELU, layer scale), reduced width/depth ------------
class LayerNorm2d(nn.LayerNorm):
    """torchvision's: LayerNorm over channels of an NCHW tensor, by permuting to NHWC and back."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class CNBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm, self.pw1, self.pw2 = nn.LayerNorm(dim, eps=1e-6), nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)
        self.layer_scale = nn.Parameter(torch.empty(dim, 1, 1).uniform_(0.1, 0.5))   # trained-like, not 1e-6

    def forward(self, x):
        y = self.norm(self.dwconv(x).permute(0, 2, 3, 1))
        y = self.pw2(F.gelu(self.pw1(y))).permute(0, 3, 1, 2)
        return x + self.layer_scale * y


class ConvNeXtTiny(nn.Module):
    def __init__(self, dims=(16, 32, 64, 128), depths=(1, 1, 3, 1), classes=100):
        super().__init__()
        layers = [nn.Sequential(nn.Conv2d(3, dims[0], 4, 4), LayerNorm2d(dims[0], eps=1e-6))]
        for i, (dim, depth) in enumerate(zip(dims, depths)):
            if i:
                layers.append(nn.Sequential(LayerNorm2d(dims[i - 1], eps=1e-6), nn.Conv2d(dims[i - 1], dim, 2, 2)))
            layers += [CNBlock(dim) for _ in range(depth)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(LayerNorm2d(dims[-1], eps=1e-6), nn.Flatten(1), nn.Linear(dims[-1], classes))

    def forward(self, x):
        return self.head[2](self.head[1](self.head[0](F.adaptive_avg_pool2d(self.features(x), 1))))


# --- ShuffleNetV2 x0.5 (channel split, concat, channel shuffle) -------------------------------
def channel_shuffle(x, groups):
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleUnit(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        half = cout // 2
        self.stride = stride
        if stride > 1:
            self.branch1 = nn.Sequential(conv_bn(cin, cin, 3, stride, cin, act=None), conv_bn(cin, half, 1))
        self.branch2 = nn.Sequential(conv_bn(cin if stride > 1 else half, half, 1),
                                     conv_bn(half, half, 3, stride, half, act=None), conv_bn(half, half, 1))

    def forward(self, x):
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            out = torch.cat((a, self.branch2(b)), 1)
        else:
            out = torch.cat((self.branch1(x), self.branch2(x)), 1)
        return channel_shuffle(out, 2)


class ShuffleNetV2(nn.Module):
    def __init__(self, channels=(24, 48, 96, 192, 1024), repeats=(2, 3, 2), classes=100):
        super().__init__()
        layers, cin = [conv_bn(3, channels[0], 3, 2), nn.MaxPool2d(3, 2, 1)], channels[0]
        for cout, r in zip(channels[1:4], repeats):
            layers += [ShuffleUnit(cin, cout, 2)] + [ShuffleUnit(cout, cout, 1) for _ in range(r - 1)]
            cin = cout
        layers.append(conv_bn(cin, channels[4], 1))
        self.features, self.fc = nn.Sequential(*layers), nn.Linear(channels[4], classes)

    def forward(self, x):
        return self.fc(self.features(x).mean([2, 3]))


# --- DenseNet-121 (BN-ReLU-Conv pre-activation, dense concat, transitions), growth 8 ----------
class DenseLayer(nn.Module):
    def __init__(self, cin, growth, bn_size):
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, bn_size * growth, 1, bias=False),
                                  nn.BatchNorm2d(bn_size * growth), nn.ReLU(),
                                  nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False))

    def forward(self, features):
        return self.body(torch.cat(features, 1))


class DenseNet121(nn.Module):
    def __init__(self, growth=8, blocks=(6, 12, 24, 16), init=16, bn_size=4, classes=100):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, init, 7, 2, 3, bias=False), nn.BatchNorm2d(init), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        self.blocks, self.transitions, c = nn.ModuleList(), nn.ModuleList(), init
        for i, n in enumerate(blocks):
            self.blocks.append(nn.ModuleList(DenseLayer(c + j * growth, growth, bn_size) for j in range(n)))
            c += n * growth
            if i < len(blocks) - 1:
                self.transitions.append(nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(), nn.Conv2d(c, c // 2, 1, bias=False),
                                                      nn.AvgPool2d(2, 2)))
                c //= 2
        self.norm, self.fc = nn.BatchNorm2d(c), nn.Linear(c, classes)

    def forward(self, x):
        x = self.stem(x)
        for i, block in enumerate(self.blocks):
            features = [x]
            for layer in block:
                features.append(layer(features))
            x = torch.cat(features, 1)
            if i < len(self.transitions):
                x = self.transitions[i](x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(F.relu(self.norm(x)), 1), 1))


# --- Inception-v3 (factorized 1x7/7x1 and 1x3/3x1 convs, pool branches), widths / 4 to / 6 -----------
def bc(cin, cout, k, stride=1, padding=0):
    """torchvision's BasicConv2d: conv (no bias), BatchNorm eps 1e-3, ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, padding, bias=False), nn.BatchNorm2d(cout, eps=1e-3), nn.ReLU())


class InceptionA(nn.Module):
    def __init__(self, cin, pool):
        super().__init__()
        self.b1, self.b5 = bc(cin, 16, 1), nn.Sequential(bc(cin, 12, 1), bc(12, 16, 5, padding=2))
        self.b3 = nn.Sequential(bc(cin, 16, 1), bc(16, 24, 3, padding=1), bc(24, 24, 3, padding=1))
        self.bp = bc(cin, pool, 1)

    def forward(self, x):
        pool = F.avg_pool2d(x, 3, 1, 1)
        return torch.cat([self.b1(x), self.b5(x), self.b3(x), self.bp(pool)], 1)


class InceptionB(nn.Module):   # grid reduction
    def __init__(self, cin):
        super().__init__()
        self.b3 = bc(cin, 96, 3, 2)
        self.bd = nn.Sequential(bc(cin, 16, 1), bc(16, 24, 3, padding=1), bc(24, 24, 3, 2))

    def forward(self, x):
        return torch.cat([self.b3(x), self.bd(x), F.max_pool2d(x, 3, 2)], 1)


class InceptionC(nn.Module):   # factorized 7x7
    def __init__(self, cin, c7):
        super().__init__()
        self.b1 = bc(cin, 48, 1)
        self.b7 = nn.Sequential(bc(cin, c7, 1), bc(c7, c7, (1, 7), padding=(0, 3)), bc(c7, 48, (7, 1), padding=(3, 0)))
        self.b7d = nn.Sequential(bc(cin, c7, 1), bc(c7, c7, (7, 1), padding=(3, 0)), bc(c7, c7, (1, 7), padding=(0, 3)),
                                 bc(c7, c7, (7, 1), padding=(3, 0)), bc(c7, 48, (1, 7), padding=(0, 3)))
        self.bp = bc(cin, 48, 1)

    def forward(self, x):
        return torch.cat([self.b1(x), self.b7(x), self.b7d(x), self.bp(F.avg_pool2d(x, 3, 1, 1))], 1)


class InceptionD(nn.Module):   # grid reduction
    def __init__(self, cin):
        super().__init__()
        self.b3 = nn.Sequential(bc(cin, 48, 1), bc(48, 80, 3, 2))
        self.b7 = nn.Sequential(bc(cin, 48, 1), bc(48, 48, (1, 7), padding=(0, 3)), bc(48, 48, (7, 1), padding=(3, 0)),
                                bc(48, 48, 3, 2))

    def forward(self, x):
        return torch.cat([self.b3(x), self.b7(x), F.max_pool2d(x, 3, 2)], 1)


class InceptionE(nn.Module):   # expanded filter bank: 1x3 and 3x1 side by side
    def __init__(self, cin):
        super().__init__()
        self.b1 = bc(cin, 64, 1)
        self.b3, self.b3a, self.b3b = bc(cin, 64, 1), bc(64, 64, (1, 3), padding=(0, 1)), bc(64, 64, (3, 1), padding=(1, 0))
        self.bd = nn.Sequential(bc(cin, 80, 1), bc(80, 64, 3, padding=1))
        self.bda, self.bdb = bc(64, 64, (1, 3), padding=(0, 1)), bc(64, 64, (3, 1), padding=(1, 0))
        self.bp = bc(cin, 48, 1)

    def forward(self, x):
        a, d = self.b3(x), self.bd(x)
        return torch.cat([self.b1(x), self.b3a(a), self.b3b(a), self.bda(d), self.bdb(d),
                          self.bp(F.avg_pool2d(x, 3, 1, 1))], 1)


class InceptionV3(nn.Module):
    def __init__(self, classes=100):
        super().__init__()
        self.stem = nn.Sequential(bc(3, 8, 3, 2), bc(8, 8, 3), bc(8, 16, 3, padding=1), nn.MaxPool2d(3, 2),
                                  bc(16, 20, 1), bc(20, 48, 3), nn.MaxPool2d(3, 2))
        self.mixed = nn.Sequential(InceptionA(48, 8), InceptionA(64, 16), InceptionB(72), InceptionC(192, 32),
                                   InceptionD(192), InceptionE(320))
        self.fc = nn.Linear(368, classes)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.mixed(self.stem(x)), 1), 1))
