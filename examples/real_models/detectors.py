"""Detection and OCR networks in their usual block structure, reduced: a YOLOv8-style detector
(C2f, SPPF, nearest Resize, DFL decode head), a DBNet-style text detector (FPN, ConvTranspose
head, probability map as DBNet infers) and a CRNN (VGG conv stack, bidirectional LSTMs, CTC head)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Conv(nn.Module):
    """Ultralytics' Conv: conv (no bias), BatchNorm, SiLU."""

    def __init__(self, cin, cout, k=1, stride=1):
        super().__init__()
        self.conv, self.bn, self.act = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c, shortcut):
        super().__init__()
        self.cv1, self.cv2, self.add = Conv(c, c, 3), Conv(c, c, 3), shortcut

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """Split the 1x1 conv's output in two, chain bottlenecks on one half, concat every stage."""

    def __init__(self, cin, cout, n=1, shortcut=False):
        super().__init__()
        self.c = cout // 2
        self.cv1, self.cv2 = Conv(cin, 2 * self.c, 1), Conv((2 + n) * self.c, cout, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, shortcut) for _ in range(n))

    def forward(self, x):
        y = list(self.cv1(x).split((self.c, self.c), 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.cv1, self.cv2 = Conv(cin, cin // 2, 1), Conv(cin * 2, cout, 1)

    def forward(self, x):
        y = [self.cv1(x)]
        y.extend(F.max_pool2d(y[-1], 5, 1, 2) for _ in range(3))
        return self.cv2(torch.cat(y, 1))


class Detect(nn.Module):
    """Anchor-free head: per level a box branch (4 x reg_max bins) and a class branch; decoded with
    the distribution focal loss integral (Softmax over bins, 1x1 conv with weights 0..reg_max-1),
    distances to boxes around the anchor points, times the stride; class scores by Sigmoid."""

    def __init__(self, classes, channels, strides, sizes, reg_max=16):
        super().__init__()
        c2, c3 = max(16, channels[0] // 4, reg_max * 4), max(channels[0], min(classes, 100))
        self.classes, self.reg_max = classes, reg_max
        self.box = nn.ModuleList(nn.Sequential(Conv(c, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1)) for c in channels)
        self.cls = nn.ModuleList(nn.Sequential(Conv(c, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, classes, 1)) for c in channels)
        self.dfl = nn.Conv2d(reg_max, 1, 1, bias=False).requires_grad_(False)
        self.dfl.weight.data[:] = torch.arange(reg_max, dtype=torch.float32).view(1, reg_max, 1, 1)
        points, stride_of = [], []
        for s, (h, w) in zip(strides, sizes):
            sy, sx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
            points.append(torch.stack((sx, sy), -1).view(-1, 2))
            stride_of.append(torch.full((h * w, 1), float(s)))
        self.register_buffer("anchors", torch.cat(points).T.unsqueeze(0))
        self.register_buffer("strides", torch.cat(stride_of).T.unsqueeze(0))

    def forward(self, features):
        x = torch.cat([torch.cat((b(f), c(f)), 1).flatten(2) for f, b, c in zip(features, self.box, self.cls)], 2)
        box, cls = x.split((4 * self.reg_max, self.classes), 1)
        n, _, a = box.shape
        dist = self.dfl(box.view(n, 4, self.reg_max, a).transpose(2, 1).softmax(1)).view(n, 4, a)
        lt, rb = dist.chunk(2, 1)
        x1y1, x2y2 = self.anchors - lt, self.anchors + rb
        xywh = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * self.strides
        return torch.cat((xywh, cls.sigmoid()), 1)


class YOLOv8(nn.Module):
    """YOLOv8-n layout at half its width (8..96 channels; n has 16..256)."""

    def __init__(self, size=128, classes=20, w=(8, 16, 32, 64, 96)):
        super().__init__()
        self.b1 = nn.Sequential(Conv(3, w[0], 3, 2), Conv(w[0], w[1], 3, 2), C2f(w[1], w[1], 1, True),
                                Conv(w[1], w[2], 3, 2), C2f(w[2], w[2], 2, True))
        self.b2 = nn.Sequential(Conv(w[2], w[3], 3, 2), C2f(w[3], w[3], 2, True))
        self.b3 = nn.Sequential(Conv(w[3], w[4], 3, 2), C2f(w[4], w[4], 1, True), SPPF(w[4], w[4]))
        self.up4, self.up3 = C2f(w[4] + w[3], w[3]), C2f(w[3] + w[2], w[2])
        self.down3, self.down4 = Conv(w[2], w[2], 3, 2), Conv(w[3], w[3], 3, 2)
        self.pan4, self.pan5 = C2f(w[2] + w[3], w[3]), C2f(w[3] + w[4], w[4])
        self.detect = Detect(classes, (w[2], w[3], w[4]), (8, 16, 32), [(size // s, size // s) for s in (8, 16, 32)])

    def forward(self, x):
        p3 = self.b1(x)
        p4 = self.b2(p3)
        p5 = self.b3(p4)
        h4 = self.up4(torch.cat((F.interpolate(p5, scale_factor=2.0, mode="nearest"), p4), 1))
        n3 = self.up3(torch.cat((F.interpolate(h4, scale_factor=2.0, mode="nearest"), p3), 1))
        n4 = self.pan4(torch.cat((self.down3(n3), h4), 1))
        n5 = self.pan5(torch.cat((self.down4(n4), p5), 1))
        return self.detect([n3, n4, n5])


# --- DBNet (ResNet-18-style backbone, FPN, binarization head) ---------------------------------
class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
        return F.relu(self.down(x) + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


def head(cin, mid):
    """DBNet's map head: 3x3 conv, then two stride-2 ConvTransposes back to full resolution."""
    return nn.Sequential(nn.Conv2d(cin, mid, 3, padding=1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
                         nn.ConvTranspose2d(mid, mid, 2, 2), nn.BatchNorm2d(mid), nn.ReLU(),
                         nn.ConvTranspose2d(mid, 1, 2, 2), nn.Sigmoid())


class DBNet(nn.Module):
    """DBNet at inference: the probability map only (the threshold map and the differentiable
    binarization 1/(1+exp(-k(P-T))) are training-time branches, absent from deployed exports)."""

    def __init__(self, widths=(16, 24, 48, 96), inner=48):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        stages, cin = [], widths[0]
        for i, w in enumerate(widths):
            stages.append(nn.Sequential(BasicBlock(cin, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)))
            cin = w
        self.stages = nn.ModuleList(stages)
        self.lateral = nn.ModuleList(nn.Conv2d(w, inner, 1, bias=False) for w in widths)
        self.smooth = nn.ModuleList(nn.Conv2d(inner, inner // 4, 3, padding=1, bias=False) for _ in widths)
        self.prob = head(inner, inner // 4)

    def forward(self, x):
        features, x = [], self.stem(x)
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        inner = [lat(f) for lat, f in zip(self.lateral, features)]
        for i in range(len(inner) - 1, 0, -1):   # top-down pathway
            inner[i - 1] = inner[i - 1] + F.interpolate(inner[i], scale_factor=2.0, mode="nearest")
        outs = [sm(f) for sm, f in zip(self.smooth, inner)]
        fuse = torch.cat([outs[0]] + [F.interpolate(o, scale_factor=2.0 ** i, mode="bilinear", align_corners=False)
                                      for i, o in enumerate(outs[1:], 1)], 1)
        return self.prob(fuse)


# --- CRNN (conv stack, two bidirectional LSTMs, per-step class scores for CTC) ----------------
class BidirectionalLSTM(nn.Module):
    def __init__(self, cin, hidden, cout):
        super().__init__()
        self.rnn, self.embedding = nn.LSTM(cin, hidden, bidirectional=True), nn.Linear(2 * hidden, cout)

    def forward(self, x):
        return self.embedding(self.rnn(x)[0])


class CRNN(nn.Module):
    def __init__(self, classes=37, hidden=48):
        super().__init__()

        def block(cin, cout, bn, k=3, pad=1):
            return [nn.Conv2d(cin, cout, k, 1, pad)] + ([nn.BatchNorm2d(cout)] if bn else []) + [nn.ReLU()]

        self.cnn = nn.Sequential(*block(1, 16, False), nn.MaxPool2d(2, 2), *block(16, 32, False), nn.MaxPool2d(2, 2),
                                 *block(32, 64, True), *block(64, 64, False), nn.MaxPool2d((2, 1), (2, 1)),
                                 *block(64, 96, True), *block(96, 96, False), nn.MaxPool2d((2, 1), (2, 1)),
                                 *block(96, 96, True, 2, 0))
        self.rnn = nn.Sequential(BidirectionalLSTM(96, hidden, hidden), BidirectionalLSTM(hidden, hidden, classes))

    def forward(self, x):
        features = self.cnn(x).squeeze(2).permute(2, 0, 1)      # [width, batch, channels]
        return F.log_softmax(self.rnn(features), dim=2)
