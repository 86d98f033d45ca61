// esda_modules.hpp: the sparse dataflow module library as C++ templates (tcc backends/sparse).
//
// One template per module kind; a generated top (tcc's emit_cpp) instantiates one per layer with
// its shapes, kernel, stride, parallelism and ROM contents, and connects them with streams in an
// HLS dataflow region.  Each stream carries tokens: an active site (row, column, end-of-frame
// flag) with its C int8 features (in hardware C/P beats of P channels; one vector per token here).
// Without __SYNTHESIS__ a stream is a FIFO in memory, so the top also runs as a C++ program,
// module after module over each frame, and gives the same integers as tcc's token simulator.
// This is a C model of the modules in HLS style, not a synthesis-ready design: the Frame index
// (std::vector) stands in for the K-row line buffer and its validity bitmap.
// Requantization follows tcc.ir.numerics exactly: (x - in_zp) << pre_shift, times a Q31
// multiplier, one rounding right shift (mode per layer), plus the zero point, clamped.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <deque>
#include <vector>

namespace esda {

template <int C>
struct Tok {
  int16_t y = 0, x = 0;
  bool eof = false;
  std::array<int8_t, C> f{};
};

#ifdef __SYNTHESIS__
}  // namespace esda
#include <hls_stream.h>
namespace esda {
template <int C>
using Stream = hls::stream<Tok<C>>;
#else
template <int C>
class Stream {  // hls::stream<Tok<C>> stand-in: an unbounded FIFO
 public:
  void write(const Tok<C>& t) { q_.push_back(t); }
  Tok<C> read() { Tok<C> t = q_.front(); q_.pop_front(); return t; }
  bool empty() const { return q_.empty(); }
 private:
  std::deque<Tok<C>> q_;
};
#endif

enum Rounding { HALF_EVEN, HALF_UP, HALF_AWAY, FLOOR };

struct Requant {
  const int32_t* mult; const int32_t* shift; int n;  // n == 1: per tensor
  int32_t zp, qmin, qmax; int pre_shift; Rounding mode;
  const int32_t* in_zp; int n_in_zp;
};

// round(x / 2**s) in the mode, exactly (tcc.ir.numerics.rounding_right_shift)
inline int64_t round_shift(int64_t x, int s, Rounding mode) {
  if (s <= 0) return x;
  __int128 den = (__int128)1 << s, q = x >> s, rem = (__int128)x - q * den, half = den / 2;
  bool above = rem > half, tie = rem == half, inc = false;
  if (mode == HALF_UP) inc = above || tie;
  else if (mode == HALF_AWAY) inc = above || (tie && x >= 0);
  else if (mode == HALF_EVEN) inc = above || (tie && (q & 1));
  return (int64_t)(q + (inc ? 1 : 0));
}

// round(num / den), den > 0 (tcc.ir.numerics.rounding_divide)
inline int64_t round_divide(int64_t num, int64_t den, Rounding mode) {
  int64_t q = num / den, r = num % den;
  if (r < 0) { q -= 1; r += den; }
  if (mode == FLOOR) return q;
  __int128 twice = (__int128)2 * r;
  bool above = twice > den, tie = twice == den, inc;
  if (mode == HALF_UP) inc = above || tie;
  else if (mode == HALF_AWAY) inc = above || (tie && num >= 0);
  else inc = above || (tie && (q & 1));
  return q + (inc ? 1 : 0);
}

inline int64_t requant(int64_t v, const Requant& r, int c) {
  v -= r.in_zp[r.n_in_zp > 1 ? c : 0];
  v *= (int64_t)1 << r.pre_shift;
  int k = r.n > 1 ? c : 0;
  int64_t q = round_shift(v * (int64_t)r.mult[k], std::min<int>(r.shift[k], 63), r.mode) + r.zp;
  return std::max<int64_t>(r.qmin, std::min<int64_t>(r.qmax, q));
}

template <int C>
void end_frame(Stream<C>& out) { Tok<C> t; t.eof = true; out.write(t); }

// The frame's tokens in an H x W index (the line buffer holds K rows of it in hardware).
template <int C, int H, int W>
struct Frame {
  std::vector<int> idx = std::vector<int>(H * W, -1);
  std::vector<std::array<int8_t, C>> f;
  void read(Stream<C>& in) {
    for (Tok<C> t = in.read(); !t.eof; t = in.read()) { idx[t.y * W + t.x] = (int)f.size(); f.push_back(t.f); }
  }
  int at(int y, int x) const { return (y < 0 || x < 0 || y >= H || x >= W) ? -2 : idx[y * W + x]; }
};

// Whether output site (oy, ox) is active: submanifold: any input of its S x S cell; exact: any
// input in its window, or its window reaches the padding when PAD_ACTIVE (background != zp).
template <int C, int H, int W, int K, int S, int PAD, bool SUBMANIFOLD, bool PAD_ACTIVE>
bool site_active(const Frame<C, H, W>& fr, int oy, int ox) {
  if (SUBMANIFOLD) {
    for (int dy = 0; dy < S; ++dy)
      for (int dx = 0; dx < S; ++dx)
        if (fr.at(oy * S + dy, ox * S + dx) >= 0) return true;
    return false;
  }
  for (int ky = 0; ky < K; ++ky)
    for (int kx = 0; kx < K; ++kx) {
      int i = fr.at(oy * S - PAD + ky, ox * S - PAD + kx);
      if (i >= 0 || (PAD_ACTIVE && i == -2)) return true;
    }
  return false;
}

// conv (group 1, K x K, all taps in parallel), pointwise (K = 1) and depthwise (DW) modules:
// accumulate over the window (inactive neighbours hold the background, padding the zero point),
// add the bias, requantize (+ReLU through qmin).  PI/PO: channels per beat (unrolled in HLS).
template <int CIN, int COUT, int H, int W, int HO, int WO, int K, int S, int PAD, bool DW, bool SUBMANIFOLD,
          bool PAD_ACTIVE, int PI, int PO>
void conv_module(Stream<CIN>& in, Stream<COUT>& out, const int8_t* w, const int32_t* w_zp, int n_wzp,
                 const int32_t* bias, int32_t in_zp, const int32_t* bg_in, const Requant& rq) {
  Frame<CIN, H, W> fr;
  fr.read(in);
  for (int oy = 0; oy < HO; ++oy)
    for (int ox = 0; ox < WO; ++ox) {
      if (!site_active<CIN, H, W, K, S, PAD, SUBMANIFOLD, PAD_ACTIVE>(fr, oy, ox)) continue;
      Tok<COUT> t; t.y = oy; t.x = ox;
      for (int m = 0; m < COUT; ++m) {
#pragma HLS unroll factor = PO
        int64_t acc = bias ? bias[m] : 0;
        int32_t wz = w_zp[n_wzp > 1 ? m : 0];
        for (int ky = 0; ky < K; ++ky)
          for (int kx = 0; kx < K; ++kx) {
            int i = fr.at(oy * S - PAD + ky, ox * S - PAD + kx);
            if (i == -2) continue;  // padding: the zero point, centred 0
            for (int c = DW ? m : 0; c < (DW ? m + 1 : CIN); ++c) {
#pragma HLS unroll factor = PI
              int64_t v = (i >= 0 ? fr.f[i][c] : bg_in[c]) - in_zp;
              int wi = DW ? (m * K + ky) * K + kx : ((m * CIN + c) * K + ky) * K + kx;
              acc += v * (w[wi] - wz);
            }
          }
        t.f[m] = (int8_t)requant(acc, rq, m);
      }
      out.write(t);
    }
  end_frame(out);
}

// max over each K x K window (inactive sites hold the background, padding never wins)
template <int C, int H, int W, int HO, int WO, int K, int S, int PAD, bool SUBMANIFOLD, int P>
void maxpool_module(Stream<C>& in, Stream<C>& out, const int32_t* bg) {
  Frame<C, H, W> fr;
  fr.read(in);
  for (int oy = 0; oy < HO; ++oy)
    for (int ox = 0; ox < WO; ++ox) {
      if (!site_active<C, H, W, K, S, PAD, SUBMANIFOLD, false>(fr, oy, ox)) continue;
      Tok<C> t; t.y = oy; t.x = ox;
      for (int c = 0; c < C; ++c) {
#pragma HLS unroll factor = P
        int best = -1000;
        for (int ky = 0; ky < K; ++ky)
          for (int kx = 0; kx < K; ++kx) {
            int i = fr.at(oy * S - PAD + ky, ox * S - PAD + kx);
            if (i != -2) best = std::max<int>(best, i >= 0 ? fr.f[i][c] : bg[c]);
          }
        t.f[c] = (int8_t)best;
      }
      out.write(t);
    }
  end_frame(out);
}

// average over each K x K window (inactive sites hold the background), divided by the window's
// taps inside the map, onto the output scale with qavg_pool's one exact rounding
template <int C, int H, int W, int HO, int WO, int K, int S, int PAD, bool SUBMANIFOLD, int P>
void avgpool_module(Stream<C>& in, Stream<C>& out, const int32_t* bg, int32_t in_zp, int64_t mult, int shift,
                    int32_t zp, int32_t qmin, int32_t qmax) {
  Frame<C, H, W> fr;
  fr.read(in);
  for (int oy = 0; oy < HO; ++oy)
    for (int ox = 0; ox < WO; ++ox) {
      if (!site_active<C, H, W, K, S, PAD, SUBMANIFOLD, false>(fr, oy, ox)) continue;
      Tok<C> t; t.y = oy; t.x = ox;
      for (int c = 0; c < C; ++c) {
#pragma HLS unroll factor = P
        int64_t total = 0;
        int n = 0;
        for (int ky = 0; ky < K; ++ky)
          for (int kx = 0; kx < K; ++kx) {
            int i = fr.at(oy * S - PAD + ky, ox * S - PAD + kx);
            if (i == -2) continue;  // padding is not counted
            total += (i >= 0 ? fr.f[i][c] : bg[c]) - in_zp;
            ++n;
          }
        int64_t mean = round_divide(total * mult, (int64_t)n << shift, HALF_EVEN) + zp;
        t.f[c] = (int8_t)std::max<int64_t>(qmin, std::min<int64_t>(qmax, mean));
      }
      out.write(t);
    }
  end_frame(out);
}

// residual add: merge two raster-ordered streams (a missing token holds that branch's background),
// rescale each branch to int32, add, requantize
template <int C, int W, int P>
void add_module(Stream<C>& a, Stream<C>& b, Stream<C>& out, const int32_t* bg_a, const int32_t* bg_b,
                const Requant& ra, const Requant& rb, const Requant& ro) {
  Tok<C> ta = a.read(), tb = b.read();
  while (!ta.eof || !tb.eof) {
    int pa = ta.eof ? 1 << 30 : ta.y * W + ta.x, pb = tb.eof ? 1 << 30 : tb.y * W + tb.x;
    int p = std::min(pa, pb);
    Tok<C> t; t.y = p / W; t.x = p % W;
    for (int c = 0; c < C; ++c) {
#pragma HLS unroll factor = P
      int64_t va = requant(pa == p ? ta.f[c] : bg_a[c], ra, c), vb = requant(pb == p ? tb.f[c] : bg_b[c], rb, c);
      t.f[c] = (int8_t)requant(va + vb, ro, c);
    }
    out.write(t);
    if (pa == p) ta = a.read();
    if (pb == p) tb = b.read();
  }
  end_frame(out);
}

// channel concat of two branches: merge the raster-ordered streams (a missing token holds that
// branch's background), rescale a branch when it has a Requant, join the vectors
template <int CA, int CB, int W, int P>
void concat_module(Stream<CA>& a, Stream<CB>& b, Stream<CA + CB>& out, const int32_t* bg_a, const int32_t* bg_b,
                   const Requant* ra, const Requant* rb) {
  Tok<CA> ta = a.read();
  Tok<CB> tb = b.read();
  while (!ta.eof || !tb.eof) {
    int pa = ta.eof ? 1 << 30 : ta.y * W + ta.x, pb = tb.eof ? 1 << 30 : tb.y * W + tb.x;
    int p = std::min(pa, pb);
    Tok<CA + CB> t; t.y = p / W; t.x = p % W;
    for (int c = 0; c < CA; ++c) {
      int v = pa == p ? ta.f[c] : bg_a[c];
      t.f[c] = (int8_t)(ra ? requant(v, *ra, c) : v);
    }
    for (int c = 0; c < CB; ++c) {
      int v = pb == p ? tb.f[c] : bg_b[c];
      t.f[CA + c] = (int8_t)(rb ? requant(v, *rb, c) : v);
    }
    out.write(t);
    if (pa == p) ta = a.read();
    if (pb == p) tb = b.read();
  }
  end_frame(out);
}

// global average pool over all H*W sites (inactive ones hold the background): one exact rounding
template <int C, int H, int W, int P>
void gpool_module(Stream<C>& in, Stream<C>& out, const int32_t* bg, int32_t in_zp, int64_t mult, int shift,
                  int32_t zp, int32_t qmin, int32_t qmax) {
  int64_t total[C] = {};
  int n = 0;
  for (Tok<C> t = in.read(); !t.eof; t = in.read(), ++n)
    for (int c = 0; c < C; ++c) total[c] += t.f[c] - in_zp;
  Tok<C> o;
  for (int c = 0; c < C; ++c) {
#pragma HLS unroll factor = P
    int64_t sum = total[c] + (int64_t)(H * W - n) * (bg[c] - in_zp);
    int64_t mean = round_divide(sum * mult, (int64_t)(H * W) << shift, HALF_EVEN) + zp;
    o.f[c] = (int8_t)std::max<int64_t>(qmin, std::min<int64_t>(qmax, mean));
  }
  out.write(o);
  end_frame(out);
}

// fully connected layer on a C x H x W map flattened in C, H, W order (the global pool's one site,
// or a whole map: inactive sites hold the background)
template <int C, int H, int W, int COUT, int PI, int PO>
void fc_module(Stream<C>& in, Stream<COUT>& out, const int8_t* w, const int32_t* w_zp, int n_wzp,
               const int32_t* bias, int32_t in_zp, const int32_t* bg, const Requant& rq) {
  static int32_t x[C * H * W];
  for (int c = 0; c < C; ++c)
    for (int s = 0; s < H * W; ++s) x[c * H * W + s] = bg[c];
  for (Tok<C> t = in.read(); !t.eof; t = in.read())
    for (int c = 0; c < C; ++c) x[c * H * W + t.y * W + t.x] = t.f[c];
  Tok<COUT> o;
  for (int m = 0; m < COUT; ++m) {
#pragma HLS unroll factor = PO
    int64_t acc = bias ? bias[m] : 0;
    for (int i = 0; i < C * H * W; ++i) acc += (int64_t)(x[i] - in_zp) * (w[m * C * H * W + i] - w_zp[n_wzp > 1 ? m : 0]);
    o.f[m] = (int8_t)requant(acc, rq, m);
  }
  out.write(o);
  end_frame(out);
}

// stream duplication for a stream read by two modules (e.g. a residual's identity branch)
template <int C>
void dup_module(Stream<C>& in, Stream<C>& a, Stream<C>& b) {
  for (;;) {
    Tok<C> t = in.read();
    a.write(t);
    b.write(t);
    if (t.eof) break;
  }
}

}  // namespace esda
